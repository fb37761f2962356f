package protect

import (
	"context"
	"errors"
	"fmt"

	"github.com/willibrandon/mtlog-audit/event"
)

// Reveal returns ev as a reader should see it: each field the encryption
// stage encrypted is decrypted with the keyring kr, and the message is
// rendered again with the decrypted values. It never modifies ev.
//
//   - Without a keyring (kr nil), each encrypted field reads as
//     Encrypted{KeyID}, shown as "<encrypted key=ID>", and the error is nil.
//   - A field whose key was shredded reads as Shredded{KeyID}; that is not
//     an error.
//   - A field whose key is not in kr, or that does not decrypt (altered,
//     or moved from another event or field), keeps its Encrypted
//     placeholder and adds a *FieldError (matching ErrKeyNotFound or
//     ErrDecrypt) to the error returned, which joins one per field. The
//     event is returned in every case, so a replay can go on.
//   - An envelope (EnvelopeProperty) that cannot be read is an error
//     matching ErrDecrypt; the event is returned as it is.
//
// Pseudonyms are one-way: they are returned as they are stored. An event
// without EnvelopeProperty is returned as it is; the envelope stays in the
// event returned. Events of the stage's earlier formats (each value in its
// property: bytes, or an "enc:" string with the envelope a map) read the
// same way.
func Reveal(ctx context.Context, ev *event.Event, kr *Keyring) (*event.Event, error) {
	if ev == nil {
		return nil, nil
	}
	var (
		fields []string
		inline [][]byte // the sealed values an envelope of version 3 holds
		again  bool
		open   func(name string, raw any) (any, error)
	)
	switch env := ev.Properties[EnvelopeProperty].(type) {
	case []byte:
		e, err := parseEnvelope(env)
		if err != nil {
			return ev, err
		}
		fields, inline, again = e.names, e.sealed, e.rendered
		open = func(name string, raw any) (any, error) {
			sealed, ok := raw.([]byte)
			if !ok {
				return raw, &FieldError{Field: name, KeyID: e.keyID, Err: fmt.Errorf("%w: the stored value is a %T, not a ciphertext", ErrDecrypt, raw)}
			}
			return openField(ctx, kr, e.keyID, name, sealed, func(dst []byte) []byte { return appendAD(dst, e.version, e.eid, name, e.keyID) })
		}
	case map[string]any: // the first format
		eid, _ := env["id"].(string)
		list, _ := env["encrypted"].([]any)
		for _, f := range list {
			name, _ := f.(string)
			fields = append(fields, name)
		}
		again, _ = env["message"].(bool)
		open = func(name string, raw any) (any, error) {
			s, _ := raw.(string)
			id, sealed, ok := parseToken(s, encPrefix)
			if !ok {
				return raw, &FieldError{Field: name, Err: fmt.Errorf("%w: the stored value is not an encryption token", ErrDecrypt)}
			}
			return openField(ctx, kr, id, name, sealed, func(dst []byte) []byte { return appendAD1(dst, eid, name, id) })
		}
	default:
		return ev, nil
	}
	out := *ev
	out.Properties = make(map[string]any, len(ev.Properties)+len(inline))
	for n, v := range ev.Properties {
		out.Properties[n] = v
	}
	for i, sealed := range inline {
		out.Properties[fields[i]] = sealed
	}
	var errs []error
	revealed := map[string]bool{}
	for _, name := range fields {
		raw, ok := out.Properties[name]
		if !ok {
			continue
		}
		v, err := open(name, raw)
		if err != nil {
			errs = append(errs, err)
		}
		out.Properties[name] = v
		revealed[name] = true
	}
	if again {
		if msg, ok := rerender(out.MessageTemplate, out.Properties, func(n string) bool { return revealed[n] }, showPlain); ok {
			out.Message = msg
		}
	}
	return &out, errors.Join(errs...)
}

// openField decrypts one field's sealed value (nonce | ciphertext | tag)
// under the key id, with the additional data ad appends.
func openField(ctx context.Context, kr *Keyring, id, name string, sealed []byte, ad func([]byte) []byte) (any, error) {
	if kr == nil {
		return Encrypted{KeyID: id}, nil
	}
	e, err := kr.key(id)
	switch {
	case errors.Is(err, ErrShredded):
		return Shredded{KeyID: id}, nil
	case err != nil:
		return Encrypted{KeyID: id}, &FieldError{Field: name, KeyID: id, Err: err}
	}
	_, aead, err := kr.unwrap(ctx, e)
	if err != nil {
		if kr.Shredded(id) { // shredded while we read
			return Shredded{KeyID: id}, nil
		}
		return Encrypted{KeyID: id}, &FieldError{Field: name, KeyID: id, Err: err}
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return Encrypted{KeyID: id}, &FieldError{Field: name, KeyID: id, Err: fmt.Errorf("%w: the ciphertext is too short", ErrDecrypt)}
	}
	n := aead.NonceSize()
	pt, err := aead.Open(nil, sealed[:n], sealed[n:], ad(nil))
	if err != nil {
		return Encrypted{KeyID: id}, &FieldError{Field: name, KeyID: id, Err: fmt.Errorf("%w: it was altered, or moved from another event or field", ErrDecrypt)}
	}
	v, err := decodeValue(pt)
	clear(pt)
	if err != nil {
		return Encrypted{KeyID: id}, &FieldError{Field: name, KeyID: id, Err: fmt.Errorf("%w: %w", ErrDecrypt, err)}
	}
	return v, nil
}
