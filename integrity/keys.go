package integrity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// Key strings are those of golang.org/x/mod/sumdb/note: a public (verifier)
// key is "<name>+<key ID, 8 hex digits>+<base64 of 0x01 and the Ed25519
// public key>", a private (signing) key is "PRIVATE+KEY+<name>+<key
// ID>+<base64 of 0x01 and the Ed25519 seed>". The key ID is the first four
// bytes, big-endian, of SHA-256(name, "\n", 0x01, public key).

const (
	privateKeyPrefix = "PRIVATE+KEY+"
	algEd25519       = 1
	maxKeyFileSize   = 4 << 10
)

// validKeyName reports whether name can name a note key: non-empty UTF-8
// with no Unicode space and no '+'.
func validKeyName(name string) bool {
	return name != "" && utf8.ValidString(name) &&
		strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

// keyID computes the note key ID of an Ed25519 public key.
func keyID(name string, pub []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', algEd25519})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// GenerateKey generates an Ed25519 key pair for the named log (the name is
// also the origin of its checkpoints, so typically "host/path"). It returns
// the private signing key, which must be kept secret, and the public
// verifier key to give to verifiers. The name must be non-empty and contain
// no whitespace and no '+'.
func GenerateKey(name string) (skey, vkey string, err error) {
	if !validKeyName(name) {
		return "", "", fmt.Errorf("integrity: invalid key name %q: it must be non-empty UTF-8 without whitespace or '+'", name)
	}
	return note.GenerateKey(rand.Reader, name)
}

// keySigner is an Ed25519 note.Signer whose private key lives in a byte
// slice that wipe zeroes. (The x/mod signer keeps its own unreachable copy.)
type keySigner struct {
	name string
	id   uint32
	vkey string

	mu  sync.RWMutex
	key ed25519.PrivateKey // nil once wiped
	raw []byte             // the backing array of key, zeroed by wipe
}

// Name returns the key's name (the log's origin).
func (s *keySigner) Name() string { return s.name }

// KeyHash returns the key ID.
func (s *keySigner) KeyHash() uint32 { return s.id }

// Sign signs msg, or fails once the key has been wiped.
func (s *keySigner) Sign(msg []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.key == nil {
		return nil, fmt.Errorf("integrity: signing key %s+%08x was wiped (its epoch has ended)", s.name, s.id)
	}
	return ed25519.Sign(s.key, msg), nil
}

// wipe zeroes the private key. Copies made inside crypto/ed25519 while
// signing are beyond reach; this removes the long-lived one.
func (s *keySigner) wipe() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.raw)
	s.key = nil
}

// seed returns a copy of the private key's seed, or nil once wiped.
func (s *keySigner) seed() []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.key == nil {
		return nil
	}
	return bytes.Clone(s.key.Seed())
}

// newKeySigner builds a signer from a seed (which it does not retain).
func newKeySigner(name string, seed []byte) (*keySigner, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, errors.New("integrity: an Ed25519 seed is 32 bytes")
	}
	key := ed25519.NewKeyFromSeed(seed)
	pub := key.Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return nil, err
	}
	return &keySigner{name: name, id: keyID(name, pub), vkey: vkey, key: key, raw: key}, nil
}

// encodeSignerKey returns the note encoding of s's private key, in a slice
// the caller should zero when done.
func (s *keySigner) encodeSignerKey() ([]byte, error) {
	seed := s.seed()
	if seed == nil {
		return nil, fmt.Errorf("integrity: signing key %s+%08x was wiped", s.name, s.id)
	}
	raw := append([]byte{algEd25519}, seed...)
	clear(seed)
	prefix := fmt.Sprintf("%s%s+%08x+", privateKeyPrefix, s.name, s.id)
	out := make([]byte, len(prefix)+base64.StdEncoding.EncodedLen(len(raw)))
	copy(out, prefix)
	base64.StdEncoding.Encode(out[len(prefix):], raw)
	clear(raw)
	return out, nil
}

// parseSignerKey parses "PRIVATE+KEY+name+id+base64" held in b, without
// turning the secret part into a string, and checks the key ID.
func parseSignerKey(b []byte) (*keySigner, error) {
	rest, ok := bytes.CutPrefix(b, []byte(privateKeyPrefix))
	if !ok {
		return nil, errors.New("integrity: not a signing key (a signing key starts with PRIVATE+KEY+)")
	}
	name, rest, ok1 := bytes.Cut(rest, []byte("+"))
	id16, b64, ok2 := bytes.Cut(rest, []byte("+"))
	if !ok1 || !ok2 || !validKeyName(string(name)) || len(id16) != 8 {
		return nil, errors.New("integrity: malformed signing key (want PRIVATE+KEY+<name>+<8 hex digits>+<base64>)")
	}
	id, err := strconv.ParseUint(string(id16), 16, 32)
	if err != nil {
		return nil, errors.New("integrity: malformed signing key: the key ID is not 8 hex digits")
	}
	if bytes.ContainsAny(b64, "\r\n") {
		return nil, errors.New("integrity: malformed signing key: line break inside the key")
	}
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
	defer clear(raw)
	n, err := base64.StdEncoding.Strict().Decode(raw, b64)
	if err != nil {
		return nil, errors.New("integrity: malformed signing key: bad base64")
	}
	if n != 1+ed25519.SeedSize || raw[0] != algEd25519 {
		return nil, errors.New("integrity: unsupported signing key (want an Ed25519 key, algorithm 1)")
	}
	s, err := newKeySigner(string(name), raw[1:n])
	if err != nil {
		return nil, err
	}
	if s.id != uint32(id) {
		s.wipe()
		return nil, fmt.Errorf("integrity: signing key for %s has key ID %08x, but its key has ID %08x: the key is damaged", name, id, s.id)
	}
	return s, nil
}

// NewSigner parses a private signing key ("PRIVATE+KEY+name+id+base64", as
// GenerateKey returns) into a note.Signer. The key ID is checked against the
// key. The returned signer holds the only long-lived copy of the private
// key that this package keeps; the caller's string cannot be wiped.
func NewSigner(skey string) (note.Signer, error) {
	b := []byte(skey)
	defer clear(b)
	return parseSignerKey(b)
}

// vkeyParts splits a verifier key into its name, key ID and key bytes.
func vkeyParts(vkey string) (name string, id uint32, key []byte, err error) {
	name, rest, ok1 := strings.Cut(vkey, "+")
	id16, b64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || !validKeyName(name) || len(id16) != 8 {
		return "", 0, nil, fmt.Errorf("integrity: malformed public key %q (want <name>+<8 hex digits>+<base64>)", vkey)
	}
	n, err1 := strconv.ParseUint(id16, 16, 32)
	key, err2 := base64.StdEncoding.Strict().DecodeString(b64)
	if err1 != nil || err2 != nil || strings.ContainsAny(b64, "\r\n") {
		return "", 0, nil, fmt.Errorf("integrity: malformed public key %q", vkey)
	}
	if len(key) != 1+ed25519.PublicKeySize || key[0] != algEd25519 {
		return "", 0, nil, fmt.Errorf("integrity: public key %q is not an Ed25519 key (algorithm 1)", vkey)
	}
	return name, uint32(n), key, nil
}

// NewVerifiers parses public verifier keys ("name+id+base64") into a
// note.Verifiers. Repeating the same key is harmless; two different keys
// with the same name and key ID (a key-ID collision, which only an attacker
// would bring about) are refused, as is a key whose ID does not match it.
func NewVerifiers(vkeys ...string) (note.Verifiers, error) {
	type nameID struct {
		name string
		id   uint32
	}
	// Look for collisions first, so that a colliding key is reported as
	// such, whichever order the keys come in.
	seen := make(map[nameID][]byte)
	var unique []string
	for _, vk := range vkeys {
		vk = strings.TrimSpace(vk)
		if strings.HasPrefix(vk, privateKeyPrefix) {
			return nil, errors.New("integrity: a private signing key was given where a public key belongs; give the public key (name+id+base64) and keep the private key secret")
		}
		name, id, key, err := vkeyParts(vk)
		if err != nil {
			return nil, err
		}
		k := nameID{name, id}
		if prev, ok := seen[k]; ok {
			if !bytes.Equal(prev, key) {
				return nil, fmt.Errorf("integrity: key-ID collision: two different public keys are both named %s+%08x; one of them is not genuine", name, id)
			}
			continue
		}
		seen[k] = key
		unique = append(unique, vk)
	}
	var list []note.Verifier
	for _, vk := range unique {
		v, err := note.NewVerifier(vk)
		if err != nil {
			return nil, fmt.Errorf("integrity: public key %q: %v (its key ID does not match its key, or it is damaged)", vk, err)
		}
		list = append(list, v)
	}
	return note.VerifierList(list...), nil
}

// readKeyFile reads a small key file through fsys and trims whitespace.
// The caller should zero the returned slice.
func readKeyFile(fsys vfs.FS, path string) ([]byte, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return nil, fmt.Errorf("integrity: key file: %w", err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("integrity: key file %s: %w", path, err)
	}
	if size > maxKeyFileSize {
		return nil, fmt.Errorf("integrity: %s is not a key file (%d bytes; a key file holds one key string)", path, size)
	}
	b := make([]byte, size)
	if err := readFull(f, b, 0); err != nil {
		clear(b)
		return nil, fmt.Errorf("integrity: key file %s: %w", path, err)
	}
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		clear(b)
		return nil, fmt.Errorf("integrity: key file %s is empty", path)
	}
	if bytes.ContainsAny(t, " \t\r\n") {
		clear(b)
		return nil, fmt.Errorf("integrity: %s is not a key file (it holds more than one word; a key file holds one key string)", path)
	}
	out := bytes.Clone(t)
	clear(b)
	return out, nil
}

// readFull reads len(b) bytes at off, accepting io.EOF with a full read.
func readFull(f vfs.File, b []byte, off int64) error {
	n, err := f.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// LoadSignerFile reads a private signing key from a file holding one key
// string (surrounding whitespace is ignored). The file should be readable
// by its owner only; this package cannot check that through vfs.
func LoadSignerFile(fsys vfs.FS, path string) (note.Signer, error) {
	b, err := readKeyFile(fsys, path)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	if !bytes.HasPrefix(b, []byte(privateKeyPrefix)) {
		if _, _, _, err := vkeyParts(string(b)); err == nil {
			return nil, fmt.Errorf("integrity: %s holds a public key; a signing key starts with PRIVATE+KEY+", path)
		}
		return nil, fmt.Errorf("integrity: %s is not a key file (a signing key starts with PRIVATE+KEY+)", path)
	}
	s, err := parseSignerKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return s, nil
}

// LoadVerifierFile reads a public verifier key from a file holding one key
// string (surrounding whitespace is ignored).
func LoadVerifierFile(fsys vfs.FS, path string) (note.Verifier, error) {
	b, err := readKeyFile(fsys, path)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	if bytes.HasPrefix(b, []byte(privateKeyPrefix)) {
		return nil, fmt.Errorf("integrity: %s holds a private signing key; a verifier needs the public key (name+id+base64), and the private key must stay secret", path)
	}
	vk := string(b)
	if _, _, _, err := vkeyParts(vk); err != nil {
		return nil, fmt.Errorf("integrity: %s is not a key file: %v", path, err)
	}
	v, err := note.NewVerifier(vk)
	if err != nil {
		return nil, fmt.Errorf("integrity: %s: public key %v (its key ID does not match its key, or it is damaged)", path, err)
	}
	return v, nil
}
