//go:build linux

package cli_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	audit "github.com/willibrandon/mtlog-audit"
)

// TestExportFullDisk exports to a real 64 KiB tmpfs: the command fails
// with a clear message, status 1, and removes its partial file.
func TestExportFullDisk(t *testing.T) {
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a size-limited tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, 0) })
	dir := filepath.Join(t.TempDir(), "wal")
	s, err := audit.New(audit.WithWAL(dir))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		if _, err := s.Write(context.Background(), fixtureEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	out := filepath.Join(mnt, "big.jsonl")
	r := run(t, "", "export", "--wal", dir, "--format", "jsonl", "--output", out)
	if r.code != 1 || !strings.Contains(r.stderr, "disk is full") || !strings.Contains(r.stderr, "removed") {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("partial file left behind: %v", err)
	}
}
