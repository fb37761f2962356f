package event

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Validate reports whether b is an encoding that Decode accepts, without
// building the Event: it walks the encoding with the same checks as Decode
// and returns the error Decode would return (nil when Decode succeeds), but
// allocates nothing on valid input except for JSON property values (checked
// as Decode checks them). Verifiers use it to prove that every stored event
// is readable at a fraction of Decode's cost.
func Validate(b []byte) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: at offset 0: empty input", ErrMalformed)
	}
	if b[0] != version1 {
		return fmt.Errorf("%w: version byte %d (this build reads version %d)", ErrUnknownVersion, b[0], version1)
	}
	d := decoder{b: b, off: 1}
	if err := d.skipTime(); err != nil {
		return err
	}
	if _, err := d.byte(); err != nil { // level
		return err
	}
	if _, err := d.skipStr(); err != nil { // message template
		return err
	}
	if _, err := d.skipStr(); err != nil { // message
		return err
	}
	tag, err := d.byte()
	if err != nil {
		return err
	}
	switch tag {
	case tagNil:
	case tagError:
		if _, err := d.skipStr(); err != nil {
			return err
		}
	default:
		d.off--
		return d.fail("exception must be nil or an error, found tag 0x%02x", tag)
	}
	if tag, err = d.byte(); err != nil {
		return err
	}
	switch tag {
	case tagNil:
	case tagMap:
		if err := d.skipMapBody(0); err != nil {
			return err
		}
	default:
		d.off--
		return d.fail("properties must be nil or a map, found tag 0x%02x", tag)
	}
	if d.off != len(b) {
		return d.fail("%d trailing bytes after the event", len(b)-d.off)
	}
	return nil
}

// skipStr checks a length-prefixed string or byte string and returns it
// (sharing the input).
func (d *decoder) skipStr() ([]byte, error) {
	n, err := d.length()
	if err != nil {
		return nil, err
	}
	s := d.b[d.off : d.off+n]
	d.off += n
	return s, nil
}

// skipTime checks a time payload as timePayload does.
func (d *decoder) skipTime() error {
	if _, err := d.varint(); err != nil { // seconds
		return err
	}
	start := d.off
	nsec, err := d.uvarint()
	if err != nil {
		return err
	}
	if nsec >= 1e9 {
		d.off = start
		return d.fail("nanoseconds %d out of range", nsec)
	}
	start = d.off
	offset, err := d.varint()
	if err != nil {
		return err
	}
	if int64(int(offset)) != offset {
		d.off = start
		return d.fail("zone offset %d out of range", offset)
	}
	_, err = d.skipStr()
	return err
}

// skipValue checks one value as value does.
func (d *decoder) skipValue(depth int) error {
	tag, err := d.byte()
	if err != nil {
		return err
	}
	switch tag {
	case tagNil, tagFalse, tagTrue:
		return nil
	case tagInt, tagDuration:
		_, err := d.varint()
		return err
	case tagUint:
		_, err := d.uvarint()
		return err
	case tagFloat:
		_, err := d.fixed64()
		return err
	case tagComplex:
		if _, err := d.fixed64(); err != nil {
			return err
		}
		_, err := d.fixed64()
		return err
	case tagString, tagBytes, tagError:
		_, err := d.skipStr()
		return err
	case tagTime:
		return d.skipTime()
	case tagJSON:
		start := d.off
		b, err := d.raw()
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if json.Compact(&buf, b) != nil || !bytes.Equal(buf.Bytes(), b) {
			d.off = start
			return d.fail("JSON value is not valid compact JSON")
		}
		return nil
	case tagUnsupported:
		if _, err := d.skipStr(); err != nil {
			return err
		}
		_, err := d.skipStr()
		return err
	case tagArray:
		if depth > maxDepth {
			d.off--
			return d.fail("nesting deeper than %d levels", maxDepth)
		}
		start := d.off
		n, err := d.uvarint()
		if err != nil {
			return err
		}
		if n > uint64(d.remaining()) {
			d.off = start
			return d.fail("array count %d exceeds the %d remaining bytes", n, d.remaining())
		}
		for range n {
			if err := d.skipValue(depth + 1); err != nil {
				return err
			}
		}
		return nil
	case tagMap:
		if depth > maxDepth {
			d.off--
			return d.fail("nesting deeper than %d levels", maxDepth)
		}
		return d.skipMapBody(depth)
	default:
		d.off--
		return d.fail("unknown tag 0x%02x", tag)
	}
}

// skipMapBody checks a map's count and entries as mapBody does.
func (d *decoder) skipMapBody(depth int) error {
	start := d.off
	n, err := d.uvarint()
	if err != nil {
		return err
	}
	if n > uint64(d.remaining()/2) {
		d.off = start
		return d.fail("map count %d exceeds what the %d remaining bytes can hold", n, d.remaining())
	}
	var prev []byte
	for i := uint64(0); i < n; i++ {
		keyStart := d.off
		k, err := d.skipStr()
		if err != nil {
			return err
		}
		if i > 0 && bytes.Compare(prev, k) >= 0 {
			d.off = keyStart
			return d.fail("map keys not in strictly ascending order")
		}
		prev = k
		if err := d.skipValue(depth + 1); err != nil {
			return err
		}
	}
	return nil
}
