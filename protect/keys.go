package protect

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// A KeyProvider holds the key-encryption key (KEK) that wraps the
// per-subject data keys of a Keyring. The data keys themselves are kept,
// wrapped, in the keyring file; the provider only wraps and unwraps them,
// so that whoever holds the keyring file alone cannot read a field.
//
// Methods are called concurrently. An error that may pass when retried
// (the provider does not answer) matches ErrUnavailable; any other error
// is permanent for that key.
type KeyProvider interface {
	// Name identifies the provider and its KEK in the keyring file, such
	// as "vault-transit:transit/mtlog-audit". A keyring refuses to open
	// with a provider of another name.
	Name() string
	// WrapKey encrypts the data key key whose ID is id, returning the
	// wrapped form to store. It binds id: UnwrapKey with another id fails.
	WrapKey(ctx context.Context, id string, key []byte) (string, error)
	// UnwrapKey returns the data key that WrapKey wrapped under id.
	UnwrapKey(ctx context.Context, id, wrapped string) ([]byte, error)
}

// Errors of the key layer, matched with errors.Is.
var (
	// ErrKeyNotFound is matched by the error of reading a field whose key
	// is not in the keyring: the keyring is not the one the log was
	// written with, or is an old copy.
	ErrKeyNotFound = errors.New("protect: key not in the keyring")
	// ErrDecrypt is matched by the error of reading a field that does not
	// decrypt: the ciphertext was altered, moved from another event or
	// field, or the key is wrong.
	ErrDecrypt = errors.New("protect: value does not decrypt")
	// ErrKeyring is matched by the error of opening a keyring file that is
	// damaged, has permissions that let group or others read it, or was
	// made with another provider. The error names the file.
	ErrKeyring = errors.New("protect: unusable keyring file")
	// ErrShredded is matched by the error of asking for a key that was
	// shredded.
	ErrShredded = errors.New("protect: key was shredded")
)

// Encrypted is the value a field encrypted by WithEncryption reads as when
// its key is not at hand (no keyring given, or the per-field error of a
// wrong or missing key).
type Encrypted struct {
	// KeyID names the data key the value is encrypted under.
	KeyID string
}

// String returns "<encrypted key=ID>".
func (e Encrypted) String() string { return "<encrypted key=" + e.KeyID + ">" }

// MarshalText returns String, so that JSON and text exports show it.
func (e Encrypted) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// Shredded is the value a field reads as after its data key was shredded
// (Sink.Shred): the value is gone for good, and a replay goes on.
type Shredded struct {
	// KeyID names the data key that was destroyed.
	KeyID string
}

// String returns "<shredded key=ID>".
func (s Shredded) String() string { return "<shredded key=" + s.KeyID + ">" }

// MarshalText returns String, so that JSON and text exports show it.
func (s Shredded) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// FieldError is the error of one field that could not be read back: the
// field keeps its Encrypted placeholder and the other fields are read.
type FieldError struct {
	Field string
	KeyID string
	Err   error
}

// Error says which field, which key and why.
func (e *FieldError) Error() string {
	return fmt.Sprintf("protect: field %q (key %s): %v", e.Field, e.KeyID, e.Err)
}

// Unwrap returns Err.
func (e *FieldError) Unwrap() error { return e.Err }

// The token formats (docs/protection.md): what a protected value is stored
// as. Both name their key, so that a reader knows which key to ask for.
const (
	encPrefix    = "enc:"  // enc:<key ID>:<base64url(nonce | ciphertext | tag)>
	pseudoPrefix = "pseu:" // pseu:<key ID>:<base64url(HMAC-SHA256)>
	keyIDPrefix  = "k-"    // a key ID: k- and 24 hex digits, random
	keyIDLen     = len(keyIDPrefix) + 24
)

var b64 = base64.RawURLEncoding

// newKeyID returns a fresh random key ID. It is random, never derived from
// the subject, so that a tombstone naming it says nothing about whom.
func newKeyID() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return keyIDPrefix + hex.EncodeToString(b[:]), nil
}

// validKeyID reports whether id has the form newKeyID gives.
func validKeyID(id string) bool {
	if len(id) != keyIDLen || !strings.HasPrefix(id, keyIDPrefix) {
		return false
	}
	for _, c := range id[len(keyIDPrefix):] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// parseToken splits a token "prefix<key ID>:<base64url>" into the key ID
// and the decoded bytes.
func parseToken(s, prefix string) (id string, raw []byte, ok bool) {
	if !strings.HasPrefix(s, prefix) {
		return "", nil, false
	}
	rest := s[len(prefix):]
	i := strings.IndexByte(rest, ':')
	if i < 0 || !validKeyID(rest[:i]) {
		return "", nil, false
	}
	raw, err := b64.DecodeString(rest[i+1:])
	if err != nil {
		return "", nil, false
	}
	return rest[:i], raw, true
}

// unavailable wraps err so that it matches ErrUnavailable.
func unavailable(err error) error {
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
