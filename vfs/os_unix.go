//go:build unix

package vfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// CreatePrivate is Create with permission 0o600 (owner only).
func (OSFS) CreatePrivate(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	return newOSFile(f), nil
}

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

// fileID identifies a file on the operating system: its device and inode.
type fileID struct{ dev, ino uint64 }

// CheckLinked stats the file's path (one stat(2), which follows the whole
// path, so that a removed or replaced directory on it is noticed too) and
// compares the device and inode found there with those of the open file
// (read with fstat(2) on the first call).
func (f *osFile) CheckLinked() error {
	f.idOnce.Do(func() {
		var st syscall.Stat_t
		f.idErr = control(f.File, func(fd int) error {
			return ignoringEINTR(func() error { return syscall.Fstat(fd, &st) })
		})
		f.id = fileID{uint64(st.Dev), uint64(st.Ino)} // Dev is int32 on some systems
	})
	if f.idErr != nil {
		return &fs.PathError{Op: "fstat", Path: f.Name(), Err: f.idErr}
	}
	var st syscall.Stat_t
	if err := ignoringEINTR(func() error { return syscall.Stat(f.abs, &st) }); err != nil {
		if errors.Is(err, fs.ErrNotExist) || err == syscall.ENOTDIR {
			return unlinked(f.Name(), err)
		}
		return &fs.PathError{Op: "stat", Path: f.Name(), Err: err}
	}
	if (fileID{uint64(st.Dev), uint64(st.Ino)}) != f.id {
		return unlinked(f.Name(), nil)
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
