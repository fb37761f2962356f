package protect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/willibrandon/mtlog-audit/event"
)

// The plaintext of an encrypted or pseudonymised value is its type tag and
// bytes: a string as it is, []byte as it is, and any other value as the
// canonical event encoding (docs/event-encoding.md) of a one-property
// event, so that it reads back as event.Decode would give it.
const (
	valInt    = 'i' // int and int64, as a varint; reads back as int64
	valFloat  = 'f' // float64, 8 bytes little-endian
	valString = 's'
	valBytes  = 'b'
	valEvent  = 'e'
	valProp   = "v"
)

// appendValue appends the plaintext of v to dst.
func appendValue(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return append(append(dst, valString), x...), nil
	case int:
		return binary.AppendVarint(append(dst, valInt), int64(x)), nil
	case int64:
		return binary.AppendVarint(append(dst, valInt), x), nil
	case float64:
		return binary.LittleEndian.AppendUint64(append(dst, valFloat), math.Float64bits(x)), nil
	case []byte:
		if x != nil { // nil reads back as nil, as the event encoding gives it
			return append(append(dst, valBytes), x...), nil
		}
	}
	dst = append(dst, valEvent)
	return event.AppendEncode(dst, &event.Event{Properties: map[string]any{valProp: v}})
}

// decodeValue is the inverse of appendValue.
func decodeValue(p []byte) (any, error) {
	if len(p) == 0 {
		return nil, errors.New("empty plaintext")
	}
	switch p[0] {
	case valInt:
		n, k := binary.Varint(p[1:])
		if k <= 0 || k != len(p)-1 {
			return nil, errors.New("malformed integer")
		}
		return n, nil
	case valFloat:
		if len(p) != 9 {
			return nil, errors.New("malformed float")
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(p[1:])), nil
	case valString:
		return string(p[1:]), nil
	case valBytes:
		return append([]byte{}, p[1:]...), nil
	case valEvent:
		ev, err := event.Decode(p[1:])
		if err != nil {
			return nil, err
		}
		return ev.Properties[valProp], nil
	}
	return nil, fmt.Errorf("unknown value tag %q", p[0])
}
