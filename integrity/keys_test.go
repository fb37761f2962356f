package integrity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/willibrandon/mtlog-audit/vfs"
)

func TestGenerateKey(t *testing.T) {
	skey, vkey, err := GenerateKey("example.org/log")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(skey, "PRIVATE+KEY+example.org/log+") || !strings.HasPrefix(vkey, "example.org/log+") {
		t.Fatalf("GenerateKey = %q, %q", skey, vkey)
	}
	s, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := SignCheckpoint(Checkpoint{Origin: "example.org/log", Size: 1, Root: cpRoot(1)}, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCheckpoint(msg, cpVerifiers(t, vkey)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "a b", "a+b", "a\tb", "a\nb", "a\u00a0b", "\xff"} {
		if _, _, err := GenerateKey(name); err == nil {
			t.Errorf("GenerateKey(%q) succeeded", name)
		}
	}
}

// TestSignerMatchesNote checks that this package's wipeable signer computes
// the key ID exactly as x/mod's note does and signs identically (Ed25519 is
// deterministic), so note.Open verifies it with the public key.
func TestSignerMatchesNote(t *testing.T) {
	for _, k := range [][2]string{{cpSKeyA, cpVKeyA}, {cpSKeyB, cpVKeyB}, {cpSKeyO, cpVKeyO}} {
		ours, err := NewSigner(k[0])
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := note.NewSigner(k[0])
		if err != nil {
			t.Fatal(err)
		}
		if ours.Name() != theirs.Name() || ours.KeyHash() != theirs.KeyHash() {
			t.Fatalf("ours = %s+%08x, note's = %s+%08x", ours.Name(), ours.KeyHash(), theirs.Name(), theirs.KeyHash())
		}
		if got := ours.(*keySigner).vkey; got != k[1] {
			t.Fatalf("vkey = %q, want %q", got, k[1])
		}
		n := &note.Note{Text: "hello\n"}
		m1, err := note.Sign(n, ours)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := note.Sign(n, theirs)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m1, m2) {
			t.Fatalf("signatures differ:\n%s\n%s", m1, m2)
		}
		if _, err := note.Open(m1, note.VerifierList(mustNoteVerifier(t, k[1]))); err != nil {
			t.Fatalf("note.Open of our signature: %v", err)
		}
	}
	// The key ID by its definition: SHA-256(name, "\n", 0x01, public key).
	_, pub := mustParsePub(t, cpVKeyA)
	h := sha256.Sum256(append([]byte(cpOrigin+"\n\x01"), pub...))
	if got, want := keyID(cpOrigin, pub), binary.BigEndian.Uint32(h[:]); got != want || got != 0xc0b321e4 {
		t.Fatalf("keyID = %08x, want %08x = c0b321e4", got, want)
	}
}

func mustParsePub(t *testing.T, vkey string) (string, []byte) {
	t.Helper()
	name, _, key, err := vkeyParts(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return name, key[1:]
}

func TestNewSignerRejects(t *testing.T) {
	rest := strings.TrimPrefix(cpSKeyA, "PRIVATE+KEY+")
	parts := strings.SplitN(rest, "+", 3)
	raw, _ := base64.StdEncoding.DecodeString(parts[2])
	alg2 := append([]byte{2}, raw[1:]...)
	cases := map[string]string{
		"public key":     cpVKeyA,
		"empty":          "",
		"wrong prefix":   "PRIVATE+KEYS+" + rest,
		"wrong key ID":   "PRIVATE+KEY+" + parts[0] + "+c0b321e5+" + parts[2],
		"other name":     "PRIVATE+KEY+example.com/other+" + parts[1] + "+" + parts[2],
		"short ID":       "PRIVATE+KEY+" + parts[0] + "+c0b321e+" + parts[2],
		"bad base64":     "PRIVATE+KEY+" + parts[0] + "+" + parts[1] + "+" + parts[2][:len(parts[2])-1] + "!",
		"short key":      "PRIVATE+KEY+" + parts[0] + "+" + parts[1] + "+" + base64.StdEncoding.EncodeToString(raw[:32]),
		"other alg":      "PRIVATE+KEY+" + parts[0] + "+" + parts[1] + "+" + base64.StdEncoding.EncodeToString(alg2),
		"missing parts":  "PRIVATE+KEY+" + parts[0],
		"space in name":  "PRIVATE+KEY+a b+" + parts[1] + "+" + parts[2],
		"newline inside": "PRIVATE+KEY+" + parts[0] + "+" + parts[1] + "+" + parts[2][:10] + "\n" + parts[2][10:],
	}
	for name, skey := range cases {
		if s, err := NewSigner(skey); err == nil {
			t.Errorf("%s: NewSigner(%q) = %v, want an error", name, skey, s)
		}
	}
	if _, err := NewSigner(cpVKeyA); err == nil || !strings.Contains(err.Error(), "PRIVATE+KEY+") {
		t.Errorf("NewSigner(public key): err = %v, want a hint about PRIVATE+KEY+", err)
	}
	if _, err := NewSigner("PRIVATE+KEY+" + parts[0] + "+c0b321e5+" + parts[2]); err == nil || !strings.Contains(err.Error(), "key ID") {
		t.Errorf("NewSigner with a wrong key ID: err = %v", err)
	}
}

func TestNewVerifiers(t *testing.T) {
	vs, err := NewVerifiers(cpVKeyA, " "+cpVKeyA+"\n", cpVKeyB)
	if err != nil {
		t.Fatalf("repeated identical keys: %v", err)
	}
	for _, vk := range []string{cpVKeyA, cpVKeyB} {
		name, id, _, _ := vkeyParts(vk)
		if _, err := vs.Verifier(name, id); err != nil {
			t.Errorf("Verifier(%s): %v", vk, err)
		}
	}
	if _, err := vs.Verifier(cpOrigin, 1); err == nil {
		t.Error("unknown key found")
	}
	_, id, key, _ := vkeyParts(cpVKeyA)
	key[5] ^= 1
	wrongID := cpOrigin + "+" + strings.Split(cpVKeyA, "+")[1] + "+" + base64.StdEncoding.EncodeToString(key)
	_ = id
	cases := map[string]string{
		"private key": cpSKeyA,
		"garbage":     "hello",
		"wrong ID":    wrongID,
		"no key":      cpOrigin + "+c0b321e4+",
		"bad ID":      cpOrigin + "+zzzzzzzz+" + strings.Split(cpVKeyA, "+")[2],
	}
	for name, vk := range cases {
		if _, err := NewVerifiers(vk); err == nil {
			t.Errorf("%s: NewVerifiers(%q) succeeded", name, vk)
		}
	}
	if _, err := NewVerifiers(cpSKeyA); err == nil || !strings.Contains(err.Error(), "private") {
		t.Errorf("NewVerifiers(private key): err = %v, want it to say it is private", err)
	}
}

func writeTestFile(t *testing.T, fsys vfs.FS, path, content string) {
	t.Helper()
	f, err := fsys.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(content), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestLoadKeyFiles(t *testing.T) {
	fsys := vfs.NewCrashFS()
	if err := fsys.MkdirAll("k", 0o700); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, fsys, "k/priv", "\n  "+cpSKeyA+"\r\n\n")
	writeTestFile(t, fsys, "k/pub", cpVKeyA+"\n")
	writeTestFile(t, fsys, "k/garbage", "hello world\n")
	writeTestFile(t, fsys, "k/word", "hello\n")
	writeTestFile(t, fsys, "k/empty", " \n")
	writeTestFile(t, fsys, "k/big", strings.Repeat("A", maxKeyFileSize+1))
	writeTestFile(t, fsys, "k/twokeys", cpVKeyA+"\n"+cpVKeyB+"\n")

	s, err := LoadSignerFile(fsys, "k/priv")
	if err != nil {
		t.Fatal(err)
	}
	v, err := LoadVerifierFile(fsys, "k/pub")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := SignCheckpoint(cpSample(), s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCheckpoint(msg, note.VerifierList(v)); err != nil {
		t.Fatal(err)
	}

	wantErr := func(err error, substr string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), substr) {
			t.Errorf("err = %v, want it to contain %q", err, substr)
		}
	}
	_, err = LoadSignerFile(fsys, "k/pub")
	wantErr(err, "holds a public key; a signing key starts with PRIVATE+KEY+")
	_, err = LoadVerifierFile(fsys, "k/priv")
	wantErr(err, "holds a private signing key")
	_, err = LoadSignerFile(fsys, "k/garbage")
	wantErr(err, "not a key file")
	_, err = LoadVerifierFile(fsys, "k/garbage")
	wantErr(err, "not a key file")
	_, err = LoadSignerFile(fsys, "k/word")
	wantErr(err, "not a key file")
	_, err = LoadVerifierFile(fsys, "k/word")
	wantErr(err, "not a key file")
	_, err = LoadSignerFile(fsys, "k/empty")
	wantErr(err, "empty")
	_, err = LoadVerifierFile(fsys, "k/big")
	wantErr(err, "not a key file")
	_, err = LoadVerifierFile(fsys, "k/twokeys")
	wantErr(err, "not a key file")
	if _, err := LoadSignerFile(fsys, "k/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
	if _, err := LoadVerifierFile(fsys, "k/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
}

func TestSignerWipe(t *testing.T) {
	s, err := NewSigner(cpSKeyA)
	if err != nil {
		t.Fatal(err)
	}
	ks := s.(*keySigner)
	if _, err := s.Sign([]byte("x\n")); err != nil {
		t.Fatal(err)
	}
	raw := ks.raw
	if len(raw) != ed25519.PrivateKeySize || allZero(raw) {
		t.Fatalf("key bytes = %x", raw)
	}
	ks.wipe()
	if !allZero(raw) {
		t.Fatalf("after wipe the key bytes are %x", raw)
	}
	if _, err := s.Sign([]byte("x\n")); err == nil {
		t.Fatal("a wiped signer still signs")
	}
	if _, err := ks.encodeSignerKey(); err == nil {
		t.Fatal("a wiped signer still encodes its key")
	}
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// TestPublicKeyOfMatchesGenerateKey: the verifier key derived from a signing
// key is the one GenerateKey made, for many keys (their base64 often holds
// '+').
func TestPublicKeyOfMatchesGenerateKey(t *testing.T) {
	for i := 0; i < 200; i++ {
		sk, vk, err := GenerateKey("example.com/log")
		if err != nil {
			t.Fatal(err)
		}
		got, err := PublicKeyOf(sk)
		if err != nil || got != vk {
			t.Fatalf("PublicKeyOf(%q) = %q, %v; want %q", sk, got, err, vk)
		}
	}
}
