package protect

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/willibrandon/mtlog-audit/event"
)

// EnvelopeProperty is the property the encryption stage adds to each event
// it encrypts a field of. It holds, as bytes (see docs/protection.md,
// "Field encryption"), the event's random ID, the ID of the data key, the
// names of the encrypted properties and whether the message was rendered
// again. The hash chain covers it like any property. It is reserved: an
// event that already has it is refused.
const EnvelopeProperty = "mtlog-audit.protection"

// eventIDSize is the size of an event's random ID: 128 bits, so that two
// events never share one.
const eventIDSize = 16

// Encryptor is the stage of WithEncryption: each chosen property is
// replaced by its AES-256-GCM encryption under the subject's current data
// key, stored as bytes: nonce | ciphertext | tag. Every value gets a nonce
// never used before (see fieldNonce). The additional data binds the event's
// random ID, the property's name and the key ID (all three in
// EnvelopeProperty), so a ciphertext moved to another event or another
// property does not decrypt.
type Encryptor struct {
	opts   KeyOptions
	fields []string // nil: every property
}

// NewEncryptor returns the stage that encrypts the named properties
// (matched case-insensitively, at the top level; each value is encrypted
// whole, nested maps included), or every property when none is named. The
// subject property is encrypted too, unless it holds a pseudonym already.
func NewEncryptor(opts KeyOptions, fields ...string) (*Encryptor, error) {
	if opts.Keyring == nil {
		return nil, errors.New("protect: NewEncryptor: no keyring; open one with OpenKeyring")
	}
	e := &Encryptor{opts: opts}
	if len(fields) > 0 {
		e.fields = slices.Clone(fields)
	}
	return e, nil
}

// wants reports whether the property name is encrypted.
func (e *Encryptor) wants(name, sp string) bool {
	if e.fields == nil || name == sp {
		return true
	}
	for _, f := range e.fields {
		if strings.EqualFold(f, name) {
			return true
		}
	}
	return false
}

// encrypts reports whether the property name of an event is encrypted: it
// is wanted, and is not the subject property holding a pseudonym (tok).
func (e *Encryptor) encrypts(name, sp, tok string) bool {
	return e.wants(name, sp) && (name != sp || tok == "")
}

// Protect implements Stage.
func (e *Encryptor) Protect(ctx context.Context, ev *event.Event) (*event.Event, error) {
	if _, ok := ev.Properties[EnvelopeProperty]; ok {
		return nil, fmt.Errorf("protect: property %q is reserved for the encryption stage; rename it", EnvelopeProperty)
	}
	sp := e.opts.subjectProperty()
	subj, tok, _ := subjectName(ev, sp)
	var namesBuf [16]string
	names := namesBuf[:0]
	for name := range ev.Properties {
		if e.encrypts(name, sp, tok) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return ev, nil
	}
	slices.Sort(names)
	kr := e.opts.Keyring
	if tok != "" {
		var err error
		if subj, err = kr.subjectOfPseudonym(ctx, tok); err != nil {
			return nil, err
		}
	}
	dk, _, err := kr.forSubject(ctx, subj)
	if err != nil {
		return nil, err
	}
	_, aead, err := kr.unwrap(ctx, dk)
	if err != nil {
		return nil, err
	}
	keyID := dk.rec.ID
	// One draw from the CSPRNG per event: its ID, which also starts the
	// run of its nonces (fieldNonce).
	var eid [eventIDSize]byte
	if _, err := rand.Read(eid[:]); err != nil {
		return nil, err
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	// The plaintexts one after another; ends[i] is where the i-th ends.
	sc.pt, sc.ends = sc.pt[:0], sc.ends[:0]
	for _, name := range names {
		if sc.pt, err = appendValue(sc.pt, ev.Properties[name]); err != nil {
			clear(sc.pt)
			return nil, err
		}
		sc.ends = append(sc.ends, len(sc.pt))
	}
	// The ciphertexts and the envelope share one allocation.
	ns, tag := aead.NonceSize(), aead.Overhead()
	size := len(sc.pt) + len(names)*(ns+tag) + envelopeSize(keyID, names)
	buf := make([]byte, 0, size)
	out := *ev
	out.Properties = make(map[string]any, len(ev.Properties)+1)
	start := 0
	for i, name := range names {
		off := len(buf)
		buf = buf[:off+ns]
		fieldNonce(buf[off:], eid[:], i)
		sc.ad = appendAD2(sc.ad[:0], eid[:], name, keyID)
		buf = aead.Seal(buf, buf[off:off+ns], sc.pt[start:sc.ends[i]], sc.ad)
		out.Properties[name] = buf[off:len(buf):len(buf)]
		start = sc.ends[i]
	}
	clear(sc.pt)
	for name, v := range ev.Properties {
		if !e.encrypts(name, sp, tok) {
			out.Properties[name] = v
		}
	}
	off := len(buf)
	buf = appendEnvelope(buf, eid[:], keyID, names)
	env := buf[off:]
	var placeholder string
	isEnc := func(n string) bool { _, ok := slices.BinarySearch(names, n); return ok }
	show := func(n string, v any) string {
		if !isEnc(n) {
			return showPlain(n, v)
		}
		if placeholder == "" {
			placeholder = Encrypted{KeyID: keyID}.String()
		}
		return placeholder
	}
	if msg, ok := rerender(out.MessageTemplate, out.Properties, isEnc, show); ok {
		out.Message = msg
		env[1] |= envRendered
	}
	out.Properties[EnvelopeProperty] = env
	return &out, nil
}

// scratch is the working memory of one Protect call.
type scratch struct {
	pt, ad []byte
	ends   []int
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// fieldNonce writes to dst the nonce of the i-th encrypted field (in
// byte order of the names) of the event whose ID is eid: the first 12
// bytes of eid read as a big-endian 96-bit number, plus i, modulo 2^96.
// docs/protection.md shows that no nonce repeats under a key but with the
// probability of a random nonce per value, or less.
func fieldNonce(dst, eid []byte, i int) {
	hi := binary.BigEndian.Uint32(eid[0:4])
	lo := binary.BigEndian.Uint64(eid[4:12])
	n := lo + uint64(i)
	if n < lo {
		hi++
	}
	binary.BigEndian.PutUint32(dst[0:4], hi)
	binary.BigEndian.PutUint64(dst[4:12], n)
}

// The envelope (EnvelopeProperty) as bytes: envVersion, a flags byte
// (envRendered: the message was rendered again), the event ID, the key ID
// and then each encrypted property's name, in byte order; the key ID and
// each name as a uvarint length and its bytes.
const (
	envVersion  = 2
	envRendered = 1
	envHeader   = 2 + eventIDSize
)

// envelopeSize returns the size of the envelope of these names.
func envelopeSize(keyID string, names []string) int {
	n := envHeader + uvarintLen(len(keyID)) + len(keyID)
	for _, name := range names {
		n += uvarintLen(len(name)) + len(name)
	}
	return n
}

// uvarintLen returns the size of n as a uvarint.
func uvarintLen(n int) int {
	k := 1
	for ; n >= 0x80; n >>= 7 {
		k++
	}
	return k
}

// appendEnvelope appends the envelope (flags 0) to dst.
func appendEnvelope(dst, eid []byte, keyID string, names []string) []byte {
	dst = append(dst, envVersion, 0)
	dst = append(dst, eid...)
	dst = binary.AppendUvarint(dst, uint64(len(keyID)))
	dst = append(dst, keyID...)
	for _, name := range names {
		dst = binary.AppendUvarint(dst, uint64(len(name)))
		dst = append(dst, name...)
	}
	return dst
}

// envelope is a parsed envelope.
type envelope struct {
	eid      []byte
	keyID    string
	names    []string
	rendered bool
}

// parseEnvelope is the inverse of appendEnvelope.
func parseEnvelope(b []byte) (envelope, error) {
	if len(b) < envHeader || b[0] != envVersion || b[1]&^envRendered != 0 {
		return envelope{}, fmt.Errorf("%w: property %s is not an envelope of version %d", ErrDecrypt, EnvelopeProperty, envVersion)
	}
	env := envelope{eid: b[2:envHeader], rendered: b[1]&envRendered != 0}
	rest := b[envHeader:]
	str := func() (string, bool) {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return "", false
		}
		s := string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
		return s, true
	}
	id, ok := str()
	if !ok || !validKeyID(id) {
		return envelope{}, fmt.Errorf("%w: property %s holds no valid key ID", ErrDecrypt, EnvelopeProperty)
	}
	env.keyID = id
	for len(rest) > 0 {
		name, ok := str()
		if !ok {
			return envelope{}, fmt.Errorf("%w: property %s is truncated", ErrDecrypt, EnvelopeProperty)
		}
		env.names = append(env.names, name)
	}
	return env, nil
}

// appendAD2 appends the additional data of a field: what binds its
// ciphertext to its event, its property and its key.
func appendAD2(dst, eventID []byte, field, keyID string) []byte {
	dst = append(dst, "mtlog-audit enc 2\x00"...)
	dst = append(dst, eventID...)
	dst = append(dst, field...)
	dst = append(dst, 0)
	return append(dst, keyID...)
}

// appendAD appends the additional data of a field of the first format
// (values stored as "enc:" strings), which Reveal still reads.
func appendAD(dst []byte, eventID, field, keyID string) []byte {
	dst = append(dst, "mtlog-audit enc 1\x00"...)
	dst = append(dst, eventID...)
	dst = append(dst, 0)
	dst = append(dst, field...)
	dst = append(dst, 0)
	return append(dst, keyID...)
}
