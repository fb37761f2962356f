// Package testutil holds the file helpers that the tests of several
// packages share: read, size, patch, flip and cut a file on a vfs.FS. Each
// fails the test with t.Fatal on any error and calls t.Helper, so that a
// failure names the test's line. It is imported only by tests.
//
// Helpers that need a package's internals (the WAL's segment header
// decoder, for example) stay in that package's tests.
package testutil

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// ReadFile returns the whole contents of name.
func ReadFile(t testing.TB, fsys vfs.FS, name string) []byte {
	t.Helper()
	f, err := fsys.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return b
}

// FileSize returns the size of name.
func FileSize(t testing.TB, fsys vfs.FS, name string) int64 {
	t.Helper()
	fi, err := fsys.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// WriteAt writes p at offset off of the existing file name.
func WriteAt(t testing.TB, fsys vfs.FS, name string, p []byte, off int64) {
	t.Helper()
	f, err := fsys.OpenReadWrite(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(p, off); err != nil {
		t.Fatal(err)
	}
}

// XorByte flips the bits of x in the byte at offset off of name: damage of
// the kind a checksum must catch.
func XorByte(t testing.TB, fsys vfs.FS, name string, off int64, x byte) {
	t.Helper()
	f, err := fsys.OpenReadWrite(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= x
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

// Truncate cuts or extends name to size bytes.
func Truncate(t testing.TB, fsys vfs.FS, name string, size int64) {
	t.Helper()
	f, err := fsys.OpenReadWrite(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// WaitFor polls cond until it holds, and fails the test if it does not hold
// within a deadline generous enough for a loaded machine (one minute). It is
// for waiting on another process or goroutine whose progress has no
// channel to wait on, never for measuring time.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
