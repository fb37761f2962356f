package protect

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A damaged keyring file, or one that group or others may read, fails to
// open with an error that names the file and the problem.
func TestKeyringRefusesBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.keyring")
	kr, err := OpenKeyring(path, KeyringOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := kr.forSubject(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	kr.Close()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keyring mode %v (%v), want 0600", fi.Mode(), err)
	}
	good, _ := os.ReadFile(path)

	os.Chmod(path, 0o644)
	_, err = OpenKeyring(path, KeyringOptions{})
	if !errors.Is(err, ErrKeyring) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("mode 0644: %v", err)
	}
	os.Chmod(path, 0o600)

	damage := map[string][]byte{
		"flipped byte":  func() []byte { b := append([]byte{}, good...); b[len(b)/2] ^= 1; return b }(),
		"truncated":     good[:len(good)-10],
		"empty":         {},
		"not a keyring": []byte("hello\n{}"),
	}
	for name, b := range damage {
		os.WriteFile(path, b, 0o600)
		_, err := OpenKeyring(path, KeyringOptions{})
		if !errors.Is(err, ErrKeyring) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "damaged") {
			t.Errorf("%s: %v", name, err)
		}
	}
	os.WriteFile(path, good, 0o600)
	if _, err := OpenKeyring(path, KeyringOptions{Provider: fakeProvider{}}); !errors.Is(err, ErrKeyring) {
		t.Fatalf("another provider: %v", err)
	}
	kr, err = OpenKeyring(path, KeyringOptions{})
	if err != nil {
		t.Fatalf("the good file again: %v", err)
	}
	// A second holder is refused while the first has it open.
	if _, err := OpenKeyring(path, KeyringOptions{}); err == nil {
		t.Fatal("two holders of one keyring")
	}
	kr.Close()
}

type fakeProvider struct{}

func (fakeProvider) Name() string { return "fake" }
func (fakeProvider) WrapKey(context.Context, string, []byte) (string, error) {
	return "", errors.New("fake")
}
func (fakeProvider) UnwrapKey(context.Context, string, string) ([]byte, error) {
	return nil, errors.New("fake")
}

// Shred removes every key of the subject from the file, records the shred
// by key ID only, and a later read says Shredded; other subjects are kept.
func TestKeyringShred(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "k")
	kr, _ := OpenKeyring(path, KeyringOptions{})
	e := encryptor(t, kr)
	a, _ := e.Protect(ctx, testEvent("alice"))
	b, _ := e.Protect(ctx, testEvent("bob"))
	ids, err := kr.Shred(ctx, "alice")
	if err != nil || len(ids) != 2 {
		t.Fatalf("Shred: %v %v", ids, err)
	}
	if _, err := kr.Shred(ctx, "alice"); !errors.Is(err, ErrNoSubject) {
		t.Fatalf("second Shred: %v", err)
	}
	if p := kr.Pending(); len(p) != 1 {
		t.Fatalf("Pending %v", p)
	}
	kr.Close()
	raw, _ := os.ReadFile(path)
	if strings.Contains(string(raw), "alice") || !strings.Contains(string(raw), "bob") {
		t.Fatalf("keyring after shred: %s", raw)
	}
	kr, _ = OpenKeyring(path, KeyringOptions{})
	defer kr.Close()
	got, err := Reveal(ctx, roundTrip(t, a), kr)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Properties["Email"].(Shredded); !ok {
		t.Fatalf("shredded field reads %#v", got.Properties["Email"])
	}
	if got, err := Reveal(ctx, roundTrip(t, b), kr); err != nil || got.Properties["Email"] != "bob@example.com" {
		t.Fatalf("bob after alice's shred: %v %v", got.Properties["Email"], err)
	}
	if err := kr.MarkLogged(ids); err != nil || len(kr.Pending()) != 0 {
		t.Fatalf("MarkLogged: %v %v", err, kr.Pending())
	}
}
