//go:build unix

package vfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
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
	return osFile{f}, nil
}

// CreatePrivate is Create with permission 0o600 (owner only).
func (OSFS) CreatePrivate(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// Open opens an existing file read-only.
func (OSFS) Open(name string) (File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// OpenReadWrite opens an existing file for reading and writing.
func (OSFS) OpenReadWrite(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
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

// SyncDir opens dir and fsyncs it, making its entries durable.
func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}

// Lock takes an exclusive flock(2) on name, creating it if needed, and
// writes owner into it. The lock is held until the returned io.Closer is
// closed. Because flock locks belong to the open file description, a second
// Lock of the same path conflicts even within one process.
func (OSFS) Lock(name, owner string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	err = control(f, func(fd int) error {
		return ignoringEINTR(func() error { return syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB) })
	})
	if errors.Is(err, syscall.EWOULDBLOCK) {
		contents, _ := io.ReadAll(f)
		f.Close()
		return nil, lockedError(name, string(contents))
	}
	if err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "flock", Path: name, Err: err}
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.WriteAt([]byte(owner), 0); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// osFile is a File backed by an *os.File, which already provides ReadAt,
// WriteAt, Close, Sync, Truncate and Name.
type osFile struct{ *os.File }

// Datasync makes the file's data and size durable (fdatasync on Linux).
func (f osFile) Datasync() error {
	if err := datasync(f.File); err != nil {
		return &fs.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
	}
	return nil
}

// Size returns the file's current size.
func (f osFile) Size() (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Preallocate reserves [off, off+n) without changing the size. Filesystems
// that cannot reserve space make it a no-op.
func (f osFile) Preallocate(off, n int64) error {
	if err := preallocate(f.File, off, n); err != nil {
		return &fs.PathError{Op: "fallocate", Path: f.Name(), Err: err}
	}
	return nil
}

// control runs fn on f's file descriptor, keeping f open meanwhile.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) { opErr = fn(int(fd)) }); err != nil {
		return fs.ErrClosed // Control fails only if f is closed
	}
	return opErr
}

// ignoringEINTR retries fn while it fails with EINTR.
func ignoringEINTR(fn func() error) error {
	for {
		err := fn()
		if err != syscall.EINTR {
			return err
		}
	}
}
