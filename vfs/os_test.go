//go:build unix

package vfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestOS(t *testing.T) {
	testFS(t, OS(), t.TempDir())
}

func TestOSCreatePermAndExcl(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	if err := os.WriteFile(name, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OS().Create(name); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create over existing file: err = %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(name); string(b) != "keep" {
		t.Errorf("existing file was changed to %q", b)
	}
	f, err := OS().Create(filepath.Join(dir, "g"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := os.Stat(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if want := fs.FileMode(0o640) &^ umask(); fi.Mode().Perm() != want {
		t.Errorf("Create mode = %v, want %v", fi.Mode().Perm(), want)
	}
}

func umask() fs.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return fs.FileMode(m)
}

// Two Locks in one process conflict: flock belongs to the open file
// description, not to the process.
func TestOSLockSameProcess(t *testing.T) {
	name := filepath.Join(t.TempDir(), "LOCK")
	l, err := OS().Lock(name, "writer-1\n")
	if err != nil {
		t.Fatal(err)
	}
	_, err = OS().Lock(name, "writer-2")
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock: err = %v, want ErrLocked", err)
	}
	if want := name + " is held by writer-1"; !strings.HasSuffix(err.Error(), want) {
		t.Errorf("error %q does not end with %q", err, want)
	}
	// The loser must not have clobbered the owner string.
	if b, _ := os.ReadFile(name); string(b) != "writer-1\n" {
		t.Errorf("lock file = %q", b)
	}
	l.Close()
}

func TestOSErrorsKeepErrno(t *testing.T) {
	dir := t.TempDir()
	if err := OS().SyncDir(filepath.Join(dir, "missing")); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("SyncDir missing: err = %v, want ENOENT", err)
	}
	if err := OS().MkdirAll(filepath.Join(dir, "d", "e"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := OS().Remove(filepath.Join(dir, "d")); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Errorf("Remove non-empty: err = %v, want ENOTEMPTY", err)
	}
	f, err := OS().Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := f.Datasync(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Datasync after Close: err = %v, want fs.ErrClosed", err)
	}
}

// BenchmarkCheckLinked measures the check the log makes before each
// acknowledgement: one stat(2) of a segment-like path, compared with the
// open file's identity.
func BenchmarkCheckLinked(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "audit-wal")
	if err := os.Mkdir(dir, 0o750); err != nil {
		b.Fatal(err)
	}
	f, err := OS().Create(filepath.Join(dir, "00000000000000000001.wal"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.Run("check", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := f.CheckLinked(); err != nil {
				b.Fatal(err)
			}
		}
	})
	// For scale: an fstat of the open file, the cheapest syscall there is
	// on it (which alone would not notice a renamed directory).
	b.Run("fstat", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.Size(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
