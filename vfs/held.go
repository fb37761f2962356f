package vfs

import "strings"

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

// LockHeld asks the wrapped filesystem (false if it cannot tell).
func (f *FaultFS) LockHeld(name string) (bool, error) {
	held, _, err := LockHeld(f.inner, name)
	return held, err
}

// LockHeld asks the primary copy, which Lock locks first (false if it
// cannot tell).
func (m *Mirror) LockHeld(name string) (bool, error) {
	held, _, err := LockHeld(m.reps[0].FS, name)
	return held, err
}
