package event

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Decode parses an encoding produced by AppendEncode (any supported
// version; currently only version 1 exists).
//
// Decode never panics on arbitrary input, and it allocates at most a small
// multiple of len(b): every length and count is checked against the
// remaining input before anything is allocated. Input that is not a valid,
// canonical encoding (truncated, trailing bytes, unknown tags, non-minimal
// varints, unsorted or duplicate map keys, nesting deeper than 64 levels,
// …) is rejected with an error wrapping ErrMalformed that gives the offset
// of the problem. A first byte that is not a known version gives an error
// wrapping ErrUnknownVersion.
func Decode(b []byte) (*Event, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: at offset 0: empty input", ErrMalformed)
	}
	if b[0] != version1 {
		return nil, fmt.Errorf("%w: version byte %d (this build reads version %d)", ErrUnknownVersion, b[0], version1)
	}
	d := decoder{b: b, s: string(b), off: 1}
	ev := &Event{}
	var err error
	if ev.Timestamp, err = d.timePayload(); err != nil {
		return nil, err
	}
	lvl, err := d.byte()
	if err != nil {
		return nil, err
	}
	ev.Level = Level(lvl)
	if ev.MessageTemplate, err = d.str(); err != nil {
		return nil, err
	}
	if ev.Message, err = d.str(); err != nil {
		return nil, err
	}
	tag, err := d.byte()
	if err != nil {
		return nil, err
	}
	switch tag {
	case tagNil:
	case tagError:
		msg, err := d.str()
		if err != nil {
			return nil, err
		}
		ev.Exception = &ErrorValue{Message: msg}
	default:
		d.off--
		return nil, d.fail("exception must be nil or an error, found tag 0x%02x", tag)
	}
	if tag, err = d.byte(); err != nil {
		return nil, err
	}
	switch tag {
	case tagNil:
	case tagMap:
		if ev.Properties, err = d.mapBody(0); err != nil {
			return nil, err
		}
	default:
		d.off--
		return nil, d.fail("properties must be nil or a map, found tag 0x%02x", tag)
	}
	if d.off != len(b) {
		return nil, d.fail("%d trailing bytes after the event", len(b)-d.off)
	}
	return ev, nil
}

type decoder struct {
	b []byte
	// s is a string copy of b: decoded strings are substrings of it, so a
	// whole event costs one string allocation instead of one per string.
	s   string
	off int
}

func (d *decoder) fail(format string, args ...any) error {
	return fmt.Errorf("%w: at offset %d: %s", ErrMalformed, d.off, fmt.Sprintf(format, args...))
}

func (d *decoder) remaining() int { return len(d.b) - d.off }

func (d *decoder) byte() (byte, error) {
	if d.off >= len(d.b) {
		return 0, d.fail("unexpected end of input")
	}
	c := d.b[d.off]
	d.off++
	return c, nil
}

func (d *decoder) uvarint() (uint64, error) {
	if d.off < len(d.b) && d.b[d.off] < 0x80 { // one byte: most lengths and tags' values
		x := uint64(d.b[d.off])
		d.off++
		return x, nil
	}
	x, n := binary.Uvarint(d.b[d.off:])
	if n == 0 {
		return 0, d.fail("unexpected end of input in varint")
	}
	if n < 0 {
		return 0, d.fail("varint overflows 64 bits")
	}
	if n > 1 && d.b[d.off+n-1] == 0 {
		return 0, d.fail("non-minimal varint")
	}
	d.off += n
	return x, nil
}

func (d *decoder) varint() (int64, error) {
	u, err := d.uvarint()
	if err != nil {
		return 0, err
	}
	// Zigzag, as in encoding/binary.
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x, nil
}

// length reads a byte length and checks it against the remaining input.
func (d *decoder) length() (int, error) {
	start := d.off
	n, err := d.uvarint()
	if err != nil {
		return 0, err
	}
	if n > uint64(d.remaining()) {
		d.off = start
		return 0, d.fail("length %d exceeds the %d remaining bytes", n, d.remaining())
	}
	return int(n), nil
}

func (d *decoder) raw() ([]byte, error) {
	n, err := d.length()
	if err != nil {
		return nil, err
	}
	b := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return b, nil
}

func (d *decoder) str() (string, error) {
	n, err := d.length()
	if err != nil {
		return "", err
	}
	s := d.s[d.off : d.off+n]
	d.off += n
	return s, nil
}

func (d *decoder) fixed64() (uint64, error) {
	if d.remaining() < 8 {
		return 0, d.fail("unexpected end of input in 8-byte value")
	}
	x := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	return x, nil
}

func (d *decoder) timePayload() (time.Time, error) {
	sec, err := d.varint()
	if err != nil {
		return time.Time{}, err
	}
	start := d.off
	nsec, err := d.uvarint()
	if err != nil {
		return time.Time{}, err
	}
	if nsec >= 1e9 {
		d.off = start
		return time.Time{}, d.fail("nanoseconds %d out of range", nsec)
	}
	start = d.off
	offset, err := d.varint()
	if err != nil {
		return time.Time{}, err
	}
	if int64(int(offset)) != offset {
		d.off = start
		return time.Time{}, d.fail("zone offset %d out of range", offset)
	}
	name, err := d.str()
	if err != nil {
		return time.Time{}, err
	}
	var loc *time.Location
	if offset == 0 && name == "UTC" {
		loc = time.UTC
	} else {
		loc = time.FixedZone(name, int(offset))
	}
	return time.Unix(sec, int64(nsec)).In(loc), nil
}

// value decodes one value at the given depth (property values are at
// depth 1).
func (d *decoder) value(depth int) (any, error) {
	tag, err := d.byte()
	if err != nil {
		return nil, err
	}
	switch tag {
	case tagNil:
		return nil, nil
	case tagFalse:
		return false, nil
	case tagTrue:
		return true, nil
	case tagInt:
		x, err := d.varint()
		if err != nil {
			return nil, err
		}
		return x, nil
	case tagUint:
		x, err := d.uvarint()
		if err != nil {
			return nil, err
		}
		return x, nil
	case tagFloat:
		x, err := d.fixed64()
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(x), nil
	case tagComplex:
		re, err := d.fixed64()
		if err != nil {
			return nil, err
		}
		im, err := d.fixed64()
		if err != nil {
			return nil, err
		}
		return complex(math.Float64frombits(re), math.Float64frombits(im)), nil
	case tagString:
		return d.str()
	case tagBytes:
		b, err := d.raw()
		if err != nil {
			return nil, err
		}
		return append([]byte{}, b...), nil
	case tagTime:
		return d.timePayload()
	case tagDuration:
		x, err := d.varint()
		if err != nil {
			return nil, err
		}
		return time.Duration(x), nil
	case tagError:
		s, err := d.str()
		if err != nil {
			return nil, err
		}
		return &ErrorValue{Message: s}, nil
	case tagJSON:
		start := d.off
		b, err := d.raw()
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if json.Compact(&buf, b) != nil || !bytes.Equal(buf.Bytes(), b) {
			d.off = start
			return nil, d.fail("JSON value is not valid compact JSON")
		}
		return json.RawMessage(append([]byte{}, b...)), nil
	case tagUnsupported:
		typ, err := d.str()
		if err != nil {
			return nil, err
		}
		reason, err := d.str()
		if err != nil {
			return nil, err
		}
		return Unsupported{Type: typ, Reason: reason}, nil
	case tagArray:
		if depth > maxDepth {
			d.off--
			return nil, d.fail("nesting deeper than %d levels", maxDepth)
		}
		start := d.off
		n, err := d.uvarint()
		if err != nil {
			return nil, err
		}
		// Every element takes at least one byte.
		if n > uint64(d.remaining()) {
			d.off = start
			return nil, d.fail("array count %d exceeds the %d remaining bytes", n, d.remaining())
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = d.value(depth + 1); err != nil {
				return nil, err
			}
		}
		return out, nil
	case tagMap:
		if depth > maxDepth {
			d.off--
			return nil, d.fail("nesting deeper than %d levels", maxDepth)
		}
		return d.mapBody(depth)
	default:
		d.off--
		return nil, d.fail("unknown tag 0x%02x", tag)
	}
}

// mapBody decodes the count and entries of a map whose tag has been read.
func (d *decoder) mapBody(depth int) (map[string]any, error) {
	start := d.off
	n, err := d.uvarint()
	if err != nil {
		return nil, err
	}
	// Every entry takes at least two bytes (key length and value tag).
	if n > uint64(d.remaining()/2) {
		d.off = start
		return nil, d.fail("map count %d exceeds what the %d remaining bytes can hold", n, d.remaining())
	}
	// The size hint is capped so that a count that the input cannot back
	// up (the entries fail to decode) costs little; real large maps grow.
	m := make(map[string]any, min(n, 1024))
	var prev string
	for i := uint64(0); i < n; i++ {
		keyStart := d.off
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		if i > 0 && prev >= k {
			d.off = keyStart
			return nil, d.fail("map keys not in strictly ascending order")
		}
		prev = k
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, nil
}
