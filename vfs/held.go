//go:build unix

package vfs

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// LockProber is implemented by filesystems that can tell whether a lock
// taken with FS.Lock is held, without taking it and without disturbing a
// holder. A reader uses it to tell a log that a process has open for
// writing (whose last bytes may be a write in progress) from one that
// nothing writes.
type LockProber interface {
	// LockHeld reports whether an owner holds the lock on name. A file
	// that does not exist is not held.
	LockHeld(name string) (bool, error)
}

// LockHeld reports whether a lock taken by fsys.Lock on name is held. known
// is false when fsys cannot tell (it does not implement LockProber).
func LockHeld(fsys FS, name string) (held, known bool, err error) {
	p, ok := fsys.(LockProber)
	if !ok {
		return false, false, nil
	}
	held, err = p.LockHeld(name)
	return held, true, err
}

// LockHeld reports whether a process holds the flock(2) that Lock takes on
// name. On Linux it first looks in /proc/locks, which disturbs nobody. When
// that does not show the lock (another PID namespace hides its holder, or
// /proc is missing), it tries a shared lock without waiting and releases it
// at once: that conflicts with a holder's exclusive lock, and only a Lock
// attempted in those few microseconds fails (with ErrLocked).
func (OSFS) LockHeld(name string) (bool, error) {
	fi, err := os.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if procLocksHeld(fi) {
		return true, nil
	}
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	err = control(f, func(fd int) error {
		return ignoringEINTR(func() error { return syscall.Flock(fd, syscall.LOCK_SH|syscall.LOCK_NB) })
	})
	switch {
	case errors.Is(err, syscall.EWOULDBLOCK):
		return true, nil
	case err != nil:
		return false, &fs.PathError{Op: "flock", Path: name, Err: err}
	}
	return false, nil // closing f releases the shared lock
}

// LockHeld reports whether a Lock of name is held and not yet released.
func (c *CrashFS) LockHeld(name string) (bool, error) {
	parts, err := splitPath(name)
	if err != nil {
		return false, pathErr("open", name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, held := c.locks[strings.Join(parts, "/")]
	return held, nil
}

// LockHeld asks the wrapped filesystem.
func (f *FaultFS) LockHeld(name string) (bool, error) {
	held, known, err := LockHeld(f.inner, name)
	return held || !known, err
}

// LockHeld asks the primary copy, which Lock locks first.
func (m *Mirror) LockHeld(name string) (bool, error) {
	held, known, err := LockHeld(m.reps[0].FS, name)
	return held || !known, err
}
