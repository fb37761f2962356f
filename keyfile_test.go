package audit_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
)

// TestSigningKeyFromFile: a key file as `mtlog-audit keys generate` writes
// it (the key and a newline, mode 0600) works with WithSigningKey of its
// contents and with WithSigningKeyFile; a key file group or others can
// read is refused with the chmod to run.
func TestSigningKeyFromFile(t *testing.T) {
	skey, vkey, err := integrity.GenerateKey("keyfile.test/audit")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "audit.key")
	if err := os.WriteFile(keyPath, []byte(skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	open := func(t *testing.T, opt audit.Option) {
		t.Helper()
		wal := filepath.Join(t.TempDir(), "wal")
		s, err := audit.New(audit.WithWAL(wal), opt)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if _, err := s.Write(context.Background(), &audit.Event{MessageTemplate: "hello"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := audit.Verify(context.Background(), wal, audit.WithTrustedKeys(vkey)); err != nil {
			t.Fatalf("Verify with the key's public half: %v", err)
		}
	}
	t.Run("WithSigningKey of the file", func(t *testing.T) {
		data, err := os.ReadFile(keyPath)
		if err != nil {
			t.Fatal(err)
		}
		open(t, audit.WithSigningKey(string(data)))
	})
	t.Run("WithSigningKeyFile", func(t *testing.T) {
		open(t, audit.WithSigningKeyFile(keyPath))
	})
	t.Run("readable by others", func(t *testing.T) {
		loose := filepath.Join(dir, "loose.key")
		if err := os.WriteFile(loose, []byte(skey+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(loose, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := audit.New(audit.WithWAL(filepath.Join(t.TempDir(), "wal")), audit.WithSigningKeyFile(loose))
		if !errors.Is(err, audit.ErrKeyFilePermissions) || !strings.Contains(err.Error(), "chmod 600 "+loose) {
			t.Fatalf("err = %v, want ErrKeyFilePermissions naming chmod 600 %s", err, loose)
		}
	})
	t.Run("missing", func(t *testing.T) {
		_, err := audit.New(audit.WithWAL(filepath.Join(t.TempDir(), "wal")), audit.WithSigningKeyFile(filepath.Join(dir, "nope.key")))
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err = %v, want ErrNotExist", err)
		}
	})
}
