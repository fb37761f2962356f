package protect

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
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
	sc := scratchPool.Get().(*scratch)
	defer sc.release()
	if err := e.prepare(ctx, ev, sc); err != nil {
		return nil, err
	}
	if len(sc.names) == 0 {
		return ev, nil
	}
	out := *ev
	out.Properties = make(map[string]any, len(ev.Properties)-len(sc.names)+1)
	for name, v := range ev.Properties {
		if !sc.sealed(name) {
			out.Properties[name] = v
		}
	}
	msg, rendered := e.templates.message(out.MessageTemplate, ev.Properties, sc.names, sc.keyID)
	if rendered {
		out.Message = msg
	}
	out.Properties[EnvelopeProperty] = sc.appendEnvelope(make([]byte, 0, sc.size), rendered)
	return &out, nil
}

// AppendEncode appends to dst the canonical encoding (event.AppendEncode)
// of the event Protect would return for ev, without building that event:
// the sealed values are written straight into the encoding. The result
// differs from event.AppendEncode(Protect(ctx, ev)) only by the event's
// random ID. On an error nothing of ev has been appended to dst.
func (e *Encryptor) AppendEncode(ctx context.Context, dst []byte, ev *event.Event) ([]byte, error) {
	sc := scratchPool.Get().(*scratch)
	defer sc.release()
	if err := e.prepare(ctx, ev, sc); err != nil {
		return dst, err
	}
	if len(sc.names) == 0 {
		return event.AppendEncode(dst, ev)
	}
	// The properties the stage keeps, and the envelope, in byte order.
	var keepBuf [16]string
	keep := append(keepBuf[:0], EnvelopeProperty)
	if len(ev.Properties) > len(sc.names) {
		if len(ev.Properties)-len(sc.names) >= len(keepBuf) {
			out, err := e.Protect(ctx, ev)
			if err != nil {
				return dst, err
			}
			return event.AppendEncode(dst, out)
		}
		for name := range ev.Properties {
			if !sc.sealed(name) {
				keep = append(keep, name)
			}
		}
		slices.Sort(keep)
	}
	msg, rendered := e.templates.message(ev.MessageTemplate, ev.Properties, sc.names, sc.keyID)
	if !rendered {
		msg = ev.Message
	}
	pe := &sc.enc
	pe.Begin(dst, ev, msg, len(keep))
	for _, name := range keep {
		if name == EnvelopeProperty {
			pe.BytesProperty(name, sc.size, func(b []byte) []byte {
				return sc.appendEnvelope(slices.Grow(b, sc.size), rendered)
			})
		} else {
			pe.Property(name, ev.Properties[name])
		}
	}
	out, err := pe.Bytes()
	clear(keep)
	if err != nil {
		return dst, fmt.Errorf("protect: encode the encrypted event: %w", err)
	}
	return out, nil
}

// prepare does the work of one event that may fail: it checks ev, finds
// the names to encrypt (sorted; none: nothing else is done), the subject's
// data key, draws the event's ID and lays out the plaintexts, all in sc.
func (e *Encryptor) prepare(ctx context.Context, ev *event.Event, sc *scratch) error {
	if _, ok := ev.Properties[EnvelopeProperty]; ok {
		return fmt.Errorf("protect: property %q is reserved for the encryption stage; rename it", EnvelopeProperty)
	}
	sp := e.opts.subjectProperty()
	subj, tok, _ := subjectName(ev, sp)
	for name, v := range ev.Properties {
		if e.encrypts(name, sp, tok) {
			sc.names = append(sc.names, name)
			sc.vals = append(sc.vals, v)
		}
	}
	if len(sc.names) == 0 {
		return nil
	}
	sc.sort()
	kr := e.opts.Keyring
	if tok != "" {
		var err error
		if subj, err = kr.subjectOfPseudonym(ctx, tok); err != nil {
			return err
		}
	}
	var err error
	if sc.keyID, sc.aead, err = kr.dataKey(ctx, subj); err != nil {
		return err
	}
	// One draw from the CSPRNG per event: its ID, which also starts the
	// run of its nonces (fieldNonce).
	if _, err := rand.Read(sc.eid[:]); err != nil {
		return err
	}
	// The plaintexts one after another; ends[i] is where the i-th ends.
	for _, v := range sc.vals {
		if sc.pt, err = appendValue(sc.pt, v); err != nil {
			return err
		}
		sc.ends = append(sc.ends, len(sc.pt))
	}
	ns, tag := sc.aead.NonceSize(), sc.aead.Overhead()
	sc.size = envelopeSize(sc.keyID, sc.names)
	start := 0
	for _, end := range sc.ends {
		sc.size += sealedSize(end-start, ns, tag)
		start = end
	}
	return nil
}

// scratch is the working memory of one event's encryption.
type scratch struct {
	names []string // the properties encrypted, sorted
	vals  []any    // their values, in the same order
	keyID string
	aead  cipher.AEAD
	eid   [eventIDSize]byte
	pt    []byte // the plaintexts, one after another
	ends  []int  // where each ends in pt
	size  int    // of the envelope
	ad    []byte
	enc   event.PartEncoder

	// The first backing arrays of the slices above: a scratch is one
	// allocation, for an event of up to 16 encrypted properties and 512
	// bytes of plaintext, when the pool makes a new one.
	namesBuf [16]string
	valsBuf  [16]any
	endsBuf  [16]int
	ptBuf    [512]byte
	adBuf    [128]byte
}

var scratchPool = sync.Pool{New: func() any {
	sc := new(scratch)
	sc.names, sc.vals, sc.ends = sc.namesBuf[:0], sc.valsBuf[:0], sc.endsBuf[:0]
	sc.pt, sc.ad = sc.ptBuf[:0], sc.adBuf[:0]
	return sc
}}

// sort sorts names, and vals with them, in byte order of the names.
func (sc *scratch) sort() {
	names, vals := sc.names, sc.vals[:len(sc.names)]
	if len(names) > 16 {
		sort.Sort(byName{names, vals})
		return
	}
	for i := 1; i < len(names); i++ { // insertion sort: most events have few properties
		for j := i; j > 0 && names[j] < names[j-1]; j-- {
			names[j], names[j-1] = names[j-1], names[j]
			vals[j], vals[j-1] = vals[j-1], vals[j]
		}
	}
}

// byName sorts names, and vals with them.
type byName struct {
	names []string
	vals  []any
}

func (b byName) Len() int           { return len(b.names) }
func (b byName) Less(i, j int) bool { return b.names[i] < b.names[j] }
func (b byName) Swap(i, j int) {
	b.names[i], b.names[j] = b.names[j], b.names[i]
	b.vals[i], b.vals[j] = b.vals[j], b.vals[i]
}

// sealed reports whether the property name is one of the encrypted ones.
func (sc *scratch) sealed(name string) bool {
	_, ok := slices.BinarySearch(sc.names, name)
	return ok
}

// appendEnvelope appends the envelope (sc.size bytes) to dst: its header,
// with the flag envRendered if rendered, and each name and sealed value.
func (sc *scratch) appendEnvelope(dst []byte, rendered bool) []byte {
	env := len(dst)
	dst = appendEnvelope(dst, sc.eid[:], sc.keyID)
	if rendered {
		dst[env+1] |= envRendered
	}
	ns, tag := sc.aead.NonceSize(), sc.aead.Overhead()
	start := 0
	for i, name := range sc.names {
		n := sc.ends[i] - start
		dst = binary.AppendUvarint(dst, uint64(len(name)))
		dst = append(dst, name...)
		dst = binary.AppendUvarint(dst, uint64(ns+n+tag))
		off := len(dst)
		dst = dst[:off+ns]
		fieldNonce(dst[off:], sc.eid[:], i)
		sc.ad = appendAD(sc.ad[:0], envVersion, sc.eid[:], name, sc.keyID)
		dst = sc.aead.Seal(dst, dst[off:off+ns], sc.pt[start:sc.ends[i]], sc.ad)
		start = sc.ends[i]
	}
	return dst
}

// release wipes the plaintexts, drops the references and puts sc back in
// the pool.
func (sc *scratch) release() {
	clear(sc.pt)
	clear(sc.names)
	clear(sc.vals)
	if cap(sc.pt) > len(sc.ptBuf) { // pt grew: what it held was copied out of ptBuf
		clear(sc.ptBuf[:])
	}
	if cap(sc.vals) > len(sc.valsBuf) || cap(sc.names) > len(sc.namesBuf) {
		clear(sc.namesBuf[:])
		clear(sc.valsBuf[:])
	}
	sc.names, sc.vals, sc.pt, sc.ends, sc.ad = sc.names[:0], sc.vals[:0], sc.pt[:0], sc.ends[:0], sc.ad[:0]
	sc.keyID, sc.aead, sc.size = "", nil, 0
	sc.enc.Reset()
	scratchPool.Put(sc)
}

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
