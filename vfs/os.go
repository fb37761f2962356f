package vfs

import (
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// OSFS is the operating-system implementation of FS. Its zero value is
// ready to use and it holds no state; every error it returns keeps the
// underlying errno, so errors.Is(err, fs.ErrNotExist) or
// errors.Is(err, syscall.ENOSPC) work as they do with package os.
type OSFS struct{}

var _ FS = OSFS{}

// OS returns the operating-system filesystem.
func OS() FS { return OSFS{} }

// Create creates name with O_RDWR|O_CREATE|O_EXCL and permission 0o640.
func (OSFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, err
	}
	return newOSFile(f), nil
}

// Open opens an existing file read-only.
func (OSFS) Open(name string) (File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return newOSFile(f), nil
}

// OpenReadWrite opens an existing file for reading and writing.
func (OSFS) OpenReadWrite(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return newOSFile(f), nil
}

// Remove removes a file or an empty directory.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// Rename renames oldname to newname, replacing newname.
func (OSFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }

// MkdirAll creates dir and any missing parents with permission perm.
func (OSFS) MkdirAll(dir string, perm fs.FileMode) error { return os.MkdirAll(dir, perm) }

// List returns the sorted names of the entries of dir.
func (OSFS) List(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, nil
}

// Stat describes the named file.
func (OSFS) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }

// osFile is a File backed by an *os.File, which already provides ReadAt,
// WriteAt, Close, Sync, Truncate and Name.
type osFile struct {
	*os.File
	abs    string // the path made absolute at open, for CheckLinked
	idOnce sync.Once
	id     fileID // the open file's identity, read by the first CheckLinked
	idErr  error
}

// newOSFile wraps f, noting its path made absolute now, so that
// CheckLinked finds the same file after the process changes its working
// directory.
func newOSFile(f *os.File) *osFile {
	abs, err := filepath.Abs(f.Name())
	if err != nil {
		abs = f.Name()
	}
	return &osFile{File: f, abs: abs}
}

// Datasync makes the file's data and size durable (fdatasync on Linux).
func (f *osFile) Datasync() error {
	if err := datasync(f.File); err != nil {
		return &fs.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
	}
	return nil
}

// Size returns the file's current size.
func (f *osFile) Size() (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
