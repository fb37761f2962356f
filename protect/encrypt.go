package protect

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/willibrandon/mtlog-audit/event"
)

// EnvelopeProperty is the property the encryption stage adds to each event
// it encrypts a field of: a map holding the event's random ID ("id"), the
// names of the encrypted properties ("encrypted") and whether the message
// was re-rendered ("message"). The hash chain covers it like any property.
// It is reserved: an event that already has it is refused.
const EnvelopeProperty = "mtlog-audit.protection"

// eventIDSize is the size of an event's random ID: 128 bits, so that two
// events never share one.
const eventIDSize = 16

// Encryptor is the stage of WithEncryption: each chosen property is
// replaced by "enc:<key ID>:<base64url(nonce | ciphertext | tag)>", its
// AES-256-GCM encryption under the subject's current data key with a fresh
// random nonce. The additional data binds the event's random ID (in
// EnvelopeProperty), the property's name and the key ID, so a ciphertext
// moved to another event or another property does not decrypt.
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

// Protect implements Stage.
func (e *Encryptor) Protect(ctx context.Context, ev *event.Event) (*event.Event, error) {
	if _, ok := ev.Properties[EnvelopeProperty]; ok {
		return nil, fmt.Errorf("protect: property %q is reserved for the encryption stage; rename it", EnvelopeProperty)
	}
	sp := e.opts.subjectProperty()
	subj, tok, _ := subjectName(ev, sp)
	var names []string
	for name := range ev.Properties {
		if e.wants(name, sp) && !(name == sp && tok != "") {
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
	// One draw from the CSPRNG gives the event's ID and a fresh nonce
	// for each value.
	ns := aead.NonceSize()
	random := make([]byte, eventIDSize+ns*len(names))
	if _, err := rand.Read(random); err != nil {
		return nil, err
	}
	eid := b64.EncodeToString(random[:eventIDSize])
	out := *ev
	out.Properties = make(map[string]any, len(ev.Properties)+1)
	for name, v := range ev.Properties {
		out.Properties[name] = v
	}
	enc := make([]any, len(names))
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	head := encPrefix + dk.rec.ID + ":"
	for i, name := range names {
		if sc.pt, err = appendValue(sc.pt[:0], ev.Properties[name]); err != nil {
			return nil, err
		}
		sc.ad = appendAD(sc.ad[:0], eid, name, dk.rec.ID)
		nonce := random[eventIDSize+i*ns : eventIDSize+(i+1)*ns]
		sc.sealed = aead.Seal(append(sc.sealed[:0], nonce...), nonce, sc.pt, sc.ad)
		sc.text = b64.AppendEncode(sc.text[:0], sc.sealed)
		var tok strings.Builder
		tok.Grow(len(head) + len(sc.text))
		tok.WriteString(head)
		tok.Write(sc.text)
		out.Properties[name] = tok.String()
		enc[i] = name
	}
	clear(sc.pt)
	isEnc := func(n string) bool { _, ok := slices.BinarySearch(names, n); return ok }
	show := func(n string, v any) string {
		if isEnc(n) {
			return Encrypted{KeyID: dk.rec.ID}.String()
		}
		return showPlain(n, v)
	}
	msg, rendered := rerender(out.MessageTemplate, out.Properties, isEnc, show)
	if rendered {
		out.Message = msg
	}
	out.Properties[EnvelopeProperty] = map[string]any{"id": eid, "encrypted": enc, "message": rendered}
	return &out, nil
}

// scratch is the working memory of one Protect call.
type scratch struct{ pt, ad, sealed, text []byte }

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// appendAD appends the additional data of a field: what binds its
// ciphertext to its event, its property and its key.
func appendAD(dst []byte, eventID, field, keyID string) []byte {
	dst = append(dst, "mtlog-audit enc 1\x00"...)
	dst = append(dst, eventID...)
	dst = append(dst, 0)
	dst = append(dst, field...)
	dst = append(dst, 0)
	return append(dst, keyID...)
}
