package event

import (
	"errors"
	"fmt"
)

// PartEncoder appends the canonical encoding of one event in parts, for a
// caller that produces the event's properties as it encodes them (the
// encryption stage of package protect writes its sealed values straight
// into the buffer) instead of building a Properties map first.
//
// Begin writes everything before the properties; Property and
// BytesProperty then write exactly as many properties as Begin was told,
// in strictly ascending byte order of their names; Bytes returns the
// result. The bytes equal AppendEncode of the event with those
// properties (and that message). A misuse (a name out of order, a wrong
// count, a fill of the wrong length) is reported by Bytes and leaves the
// result unusable. The zero value is ready for Begin, and a PartEncoder
// may be reused for another event after Bytes; it does not allocate
// beyond growing the buffer.
type PartEncoder struct {
	enc  encoder
	left int    // properties still to come
	last string // the previous property's name
	n    int    // properties written
	err  error
}

// Begin starts the encoding of e appended to dst, with message in place
// of e.Message and a Properties map of properties entries (e.Properties
// is not read; at most 262,144 entries).
func (p *PartEncoder) Begin(dst []byte, e *Event, message string, properties int) {
	// Field by field: the encoder's path is large, and only its first
	// entry (the Properties map, here none) is read before it is written.
	p.left, p.last, p.n, p.err = properties, "", 0, nil
	p.enc.buf, p.enc.budget, p.enc.path[0] = dst, maxValues, pathEntry{}
	if e == nil {
		p.enc.buf, p.err = dst, errNilEvent
		return
	}
	if properties < 0 || properties > maxValues {
		p.enc.buf, p.err = dst, fmt.Errorf("event: PartEncoder.Begin with %d properties; give a count of 0 or more, at most %d (more: AppendEncode)", properties, maxValues)
		return
	}
	p.enc.head(e, message)
	p.enc.buf = append(p.enc.buf, tagMap)
	p.enc.uvarint(uint64(properties))
}

// head writes what comes before the properties: the version, e's
// timestamp, level and template, message (in place of e.Message) and
// exception.
func (enc *encoder) head(e *Event, message string) {
	enc.buf = append(enc.buf, version1)
	enc.timePayload(e.Timestamp)
	enc.buf = append(enc.buf, byte(e.Level))
	enc.str(e.MessageTemplate)
	enc.str(message)
	if e.Exception == nil {
		enc.buf = append(enc.buf, tagNil)
		return
	}
	msg, panicked := callError(e.Exception)
	if panicked != nil {
		msg = Unsupported{Type: typeName(e.Exception), Reason: panicReason("Error", panicked)}.String()
	}
	enc.buf = append(enc.buf, tagError)
	enc.str(msg)
}

// name writes the next property's name, checking its order and the count.
func (p *PartEncoder) name(name string) bool {
	switch {
	case p.err != nil:
		return false
	case p.left == 0:
		p.err = errors.New("event: PartEncoder: more properties than given to Begin")
		return false
	case p.n > 0 && name <= p.last:
		p.err = fmt.Errorf("event: PartEncoder: property %q after %q; give the names in ascending byte order, each once", name, p.last)
		return false
	}
	p.left--
	p.n++
	p.last = name
	p.enc.str(name)
	return true
}

// Property writes the next property, name and value, encoded as
// AppendEncode encodes a property value.
func (p *PartEncoder) Property(name string, v any) {
	if p.name(name) {
		p.enc.value(v, 1)
	}
}

// BytesProperty writes the next property, whose value is a []byte of n
// bytes that fill appends to the buffer it is given (and returns, as
// append does). Its encoding is that of Property(name, the n bytes).
func (p *PartEncoder) BytesProperty(name string, n int, fill func(dst []byte) []byte) {
	if !p.name(name) {
		return
	}
	if n < 0 {
		p.err = fmt.Errorf("event: PartEncoder: property %q of %d bytes", name, n)
		return
	}
	p.enc.budget--
	p.enc.buf = append(p.enc.buf, tagBytes)
	p.enc.uvarint(uint64(n))
	start := len(p.enc.buf)
	p.enc.buf = fill(p.enc.buf)
	if got := len(p.enc.buf) - start; got != n {
		p.err = fmt.Errorf("event: PartEncoder: property %q was to hold %d bytes, its fill appended %d", name, n, got)
	}
}

// Reset drops what the PartEncoder holds of the last event and buffer,
// for one kept for reuse.
func (p *PartEncoder) Reset() {
	p.enc.buf, p.last, p.err = nil, "", nil
}

// Bytes returns the encoding, or the first misuse.
func (p *PartEncoder) Bytes() ([]byte, error) {
	if p.err == nil && p.left != 0 {
		p.err = fmt.Errorf("event: PartEncoder: %d properties written, %d fewer than given to Begin", p.n, p.left)
	}
	return p.enc.buf, p.err
}
