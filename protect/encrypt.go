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
// it encrypts a field of, in place of the encrypted properties. It holds,
// as bytes (see docs/protection.md, "Field encryption"), the event's random
// ID, the ID of the data key, whether the message was rendered again, and
// each encrypted property's name and sealed value. The hash chain covers
// it like any property. It is reserved: an event that already has it is
// refused.
const EnvelopeProperty = "mtlog-audit.protection"

// eventIDSize is the size of an event's random ID: 128 bits, so that two
// events never share one.
const eventIDSize = 16

// Encryptor is the stage of WithEncryption: each chosen property is
// removed from the event and its AES-256-GCM encryption under the
// subject's current data key, nonce | ciphertext | tag, is stored under its
// name in EnvelopeProperty. Every value gets a nonce never used before (see
// fieldNonce). The additional data binds the event's random ID, the
// property's name and the key ID (all three in EnvelopeProperty), so a
// ciphertext moved to another event or another property does not decrypt.
type Encryptor struct {
	opts      KeyOptions
	fields    []string // nil: every property
	templates templates
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
	keyID, aead, err := kr.dataKey(ctx, subj)
	if err != nil {
		return nil, err
	}
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
	// The envelope, holding every ciphertext, is one allocation.
	ns, tag := aead.NonceSize(), aead.Overhead()
	size := envelopeSize(keyID, names)
	start := 0
	for _, end := range sc.ends {
		size += sealedSize(end-start, ns, tag)
		start = end
	}
	env := appendEnvelope(make([]byte, 0, size), eid[:], keyID)
	start = 0
	for i, name := range names {
		n := sc.ends[i] - start
		env = binary.AppendUvarint(env, uint64(len(name)))
		env = append(env, name...)
		env = binary.AppendUvarint(env, uint64(ns+n+tag))
		off := len(env)
		env = env[:off+ns]
		fieldNonce(env[off:], eid[:], i)
		sc.ad = appendAD(sc.ad[:0], envVersion, eid[:], name, keyID)
		env = aead.Seal(env, env[off:off+ns], sc.pt[start:sc.ends[i]], sc.ad)
		start = sc.ends[i]
	}
	clear(sc.pt)
	out := *ev
	out.Properties = make(map[string]any, len(ev.Properties)-len(names)+1)
	if len(names) < len(ev.Properties) { // else every property is in env
		for name, v := range ev.Properties {
			if !e.encrypts(name, sp, tok) {
				out.Properties[name] = v
			}
		}
	}
	if msg, ok := e.templates.message(out.MessageTemplate, ev.Properties, names, keyID); ok {
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

// The envelope (EnvelopeProperty) as bytes: its version, a flags byte
// (envRendered: the message was rendered again), the event ID, the key ID
// and then, in byte order of the names, each encrypted property's name and
// sealed value (nonce | ciphertext | tag); the key ID, each name and each
// sealed value as a uvarint length and its bytes. Version 2 held only the
// names; its values stayed in their properties.
const (
	envVersion   = 3
	envNamesOnly = 2
	envRendered  = 1
	envHeader    = 2 + eventIDSize
)

// envelopeSize returns the size of the envelope of these names without
// their sealed values (see sealedSize).
func envelopeSize(keyID string, names []string) int {
	n := envHeader + uvarintLen(len(keyID)) + len(keyID)
	for _, name := range names {
		n += uvarintLen(len(name)) + len(name)
	}
	return n
}

// sealedSize returns the size in the envelope of a sealed value of n bytes
// of plaintext: its length and nonce | ciphertext | tag.
func sealedSize(n, nonce, tag int) int {
	return uvarintLen(nonce+n+tag) + nonce + n + tag
}

// uvarintLen returns the size of n as a uvarint.
func uvarintLen(n int) int {
	k := 1
	for ; n >= 0x80; n >>= 7 {
		k++
	}
	return k
}

// appendEnvelope appends the envelope's header (flags 0) and key ID to
// dst; the fields follow.
func appendEnvelope(dst, eid []byte, keyID string) []byte {
	dst = append(dst, envVersion, 0)
	dst = append(dst, eid...)
	dst = binary.AppendUvarint(dst, uint64(len(keyID)))
	return append(dst, keyID...)
}

// envelope is a parsed envelope.
type envelope struct {
	version  byte
	eid      []byte
	keyID    string
	names    []string
	sealed   [][]byte // version 3: each name's sealed value
	rendered bool
}

// parseEnvelope reads an envelope of version 2 or 3.
func parseEnvelope(b []byte) (envelope, error) {
	if len(b) < envHeader || (b[0] != envVersion && b[0] != envNamesOnly) || b[1]&^envRendered != 0 {
		return envelope{}, fmt.Errorf("%w: property %s is not an envelope of version %d or %d", ErrDecrypt, EnvelopeProperty, envNamesOnly, envVersion)
	}
	env := envelope{version: b[0], eid: b[2:envHeader], rendered: b[1]&envRendered != 0}
	rest := b[envHeader:]
	next := func() ([]byte, bool) {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return nil, false
		}
		f := rest[k : k+int(n) : k+int(n)]
		rest = rest[k+int(n):]
		return f, true
	}
	id, ok := next()
	if !ok || !validKeyID(string(id)) {
		return envelope{}, fmt.Errorf("%w: property %s holds no valid key ID", ErrDecrypt, EnvelopeProperty)
	}
	env.keyID = string(id)
	for len(rest) > 0 {
		name, ok := next()
		var sealed []byte
		if ok && env.version == envVersion {
			sealed, ok = next()
			env.sealed = append(env.sealed, sealed)
		}
		if !ok {
			return envelope{}, fmt.Errorf("%w: property %s is truncated", ErrDecrypt, EnvelopeProperty)
		}
		env.names = append(env.names, string(name))
	}
	return env, nil
}

// appendAD appends the additional data of a field in an envelope of
// version v: what binds its ciphertext to its event, its property and its
// key.
func appendAD(dst []byte, v byte, eventID []byte, field, keyID string) []byte {
	dst = append(dst, "mtlog-audit enc "...)
	dst = append(dst, '0'+v, 0)
	dst = append(dst, eventID...)
	dst = append(dst, field...)
	dst = append(dst, 0)
	return append(dst, keyID...)
}

// appendAD1 appends the additional data of a field of the first format
// (values stored as "enc:" strings), which Reveal still reads.
func appendAD1(dst []byte, eventID, field, keyID string) []byte {
	dst = append(dst, "mtlog-audit enc 1\x00"...)
	dst = append(dst, eventID...)
	dst = append(dst, 0)
	dst = append(dst, field...)
	dst = append(dst, 0)
	return append(dst, keyID...)
}
