package protect

import (
	"errors"
	"fmt"

	"github.com/willibrandon/mtlog-audit/event"
)

// The plaintext of an encrypted or pseudonymised value is its type tag and
// bytes: a string as it is, []byte as it is, and any other value as the
// canonical event encoding (docs/event-encoding.md) of a one-property
// event, so that it reads back as event.Decode would give it.
const (
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
