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
//
// Pseudonyms are one-way: they are returned as they are stored. An event
// without EnvelopeProperty is returned as it is.
func Reveal(ctx context.Context, ev *event.Event, kr *Keyring) (*event.Event, error) {
	if ev == nil {
		return nil, nil
	}
	env, ok := ev.Properties[EnvelopeProperty].(map[string]any)
	if !ok {
		return ev, nil
	}
	eid, _ := env["id"].(string)
	fields, _ := env["encrypted"].([]any)
	out := *ev
	out.Properties = make(map[string]any, len(ev.Properties))
	for n, v := range ev.Properties {
		out.Properties[n] = v
	}
	var errs []error
	revealed := map[string]bool{}
	for _, f := range fields {
		name, _ := f.(string)
		raw, ok := out.Properties[name]
		if !ok {
			continue
		}
		v, err := revealField(ctx, kr, eid, name, raw)
		if err != nil {
			errs = append(errs, err)
		}
		out.Properties[name] = v
		revealed[name] = true
	}
	if again, _ := env["message"].(bool); again {
		if msg, ok := rerender(out.MessageTemplate, out.Properties, func(n string) bool { return revealed[n] }, showPlain); ok {
			out.Message = msg
		}
	}
	return &out, errors.Join(errs...)
}

// revealField decrypts one stored field value.
func revealField(ctx context.Context, kr *Keyring, eid, name string, raw any) (any, error) {
	s, _ := raw.(string)
	id, sealed, ok := parseToken(s, encPrefix)
	if !ok {
		return raw, &FieldError{Field: name, Err: fmt.Errorf("%w: the stored value is not an encryption token", ErrDecrypt)}
	}
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
	pt, err := aead.Open(nil, sealed[:n], sealed[n:], appendAD(nil, eid, name, id))
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
