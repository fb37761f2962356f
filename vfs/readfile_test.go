package vfs_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/willibrandon/mtlog-audit/vfs"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	for _, want := range [][]byte{{}, []byte("audit"), bytes.Repeat([]byte{7}, 1<<20+3)} {
		name := filepath.Join(dir, "f")
		if err := os.WriteFile(name, want, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := vfs.ReadFile(vfs.OS(), name)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("ReadFile of %d bytes = %d bytes, %v", len(want), len(got), err)
		}
	}
	if _, err := vfs.ReadFile(vfs.OS(), filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadFile of a missing file: err = %v, want fs.ErrNotExist", err)
	}
}
