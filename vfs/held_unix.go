//go:build unix

package vfs

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

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
