package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// privateSDDL is the security descriptor of a file CreatePrivate makes: a
// protected DACL (nothing inherited from the directory) that grants full
// access to the creating user (%s, its SID), to LocalSystem and to the
// built-in Administrators, the same set that OwnerOnly accepts.
const privateSDDL = "D:P(A;;FA;;;%s)(A;;FA;;;SY)(A;;FA;;;BA)"

// CreatePrivate creates name as Create does, with a protected DACL that
// lets only the current user, LocalSystem and Administrators open it
// (Windows has no mode bits; see OwnerOnly for what is checked).
func (OSFS) CreatePrivate(name string) (File, error) {
	user, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	sd, err := windows.SecurityDescriptorFromString(fmt.Sprintf(privateSDDL, user.User.Sid.String()))
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	sa := &windows.SecurityAttributes{SecurityDescriptor: sd}
	sa.Length = uint32(unsafe.Sizeof(*sa))
	h, err := windows.CreateFile(p, windows.GENERIC_READ|windows.GENERIC_WRITE,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, sa, windows.CREATE_NEW, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return newOSFile(os.NewFile(uintptr(h), name)), nil
}

// SyncDir checks that dir is a directory and otherwise does nothing:
// Windows cannot flush a directory through a handle that an unprivileged
// process may open. NTFS journals the directory change (a create, rename
// or remove) and commits it with its log, usually within seconds, but
// nothing here waits for that: after a power loss on Windows, a file
// created or renamed just before may be missing even though its data was
// flushed. docs/deployment/on-premise.md ("Windows") says what that means
// for the log.
func (OSFS) SyncDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &fs.PathError{Op: "sync", Path: dir, Err: syscall.ENOTDIR}
	}
	return nil
}

// lockOffset is where Lock's byte-range lock sits: far beyond any owner
// string, because Windows byte-range locks are mandatory and a lock over
// the owner would keep a second would-be owner from reading who holds it.
const lockOffset = 1 << 62

// lockRange locks (or, with unlock, unlocks) the byte at lockOffset of f
// with LockFileEx / UnlockFileEx; flags are LOCKFILE_* flags.
func lockRange(f *os.File, flags uint32, unlock bool) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	err = rc.Control(func(h uintptr) {
		ol := &windows.Overlapped{Offset: uint32(lockOffset & 0xffffffff), OffsetHigh: uint32(lockOffset >> 32)}
		if unlock {
			opErr = windows.UnlockFileEx(windows.Handle(h), 0, 1, 0, ol)
			return
		}
		opErr = windows.LockFileEx(windows.Handle(h), flags, 0, 1, 0, ol)
	})
	if err != nil {
		return fs.ErrClosed // Control fails only if f is closed
	}
	return opErr
}

// lockedFile is the io.Closer of Lock: it unlocks before closing, because
// Windows releases the locks of a closed handle only eventually.
type lockedFile struct{ *os.File }

// Close releases the lock and closes the file.
func (l lockedFile) Close() error {
	uerr := lockRange(l.File, 0, true)
	if err := l.File.Close(); err != nil {
		return err
	}
	return uerr
}

// Lock takes an exclusive LockFileEx lock on one byte of name (beyond its
// contents), creating it if needed, and writes owner into it. The lock is
// held until the returned io.Closer is closed. As with flock on Unix, a
// second Lock of the same path conflicts even within one process.
func (OSFS) Lock(name, owner string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	err = lockRange(f, windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, false)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		contents, _ := io.ReadAll(io.LimitReader(f, 4096))
		f.Close()
		return nil, lockedError(name, string(contents))
	}
	if err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "LockFileEx", Path: name, Err: err}
	}
	l := lockedFile{f}
	if err := f.Truncate(0); err != nil {
		l.Close()
		return nil, err
	}
	if _, err := f.WriteAt([]byte(owner), 0); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// LockHeld reports whether a process holds the lock that Lock takes on
// name: it tries a shared lock of the same byte without waiting and
// releases it at once (only a Lock attempted in those few microseconds
// fails, with ErrLocked).
func (OSFS) LockHeld(name string) (bool, error) {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	err = lockRange(f, windows.LOCKFILE_FAIL_IMMEDIATELY, false)
	switch {
	case errors.Is(err, windows.ERROR_LOCK_VIOLATION):
		return true, nil
	case err != nil:
		return false, &fs.PathError{Op: "LockFileEx", Path: name, Err: err}
	}
	return false, lockRange(f, 0, true)
}

// datasync flushes f with FlushFileBuffers (os.File.Sync), which writes
// the file's data and metadata and asks the drive to flush its cache.
func datasync(f *os.File) error { return f.Sync() }

// fileID identifies a file on Windows: what os.SameFile compares (the
// volume serial number and the file index).
type fileID = fs.FileInfo

// CheckLinked stats the file's path and compares the file found there
// with the open file (os.SameFile: volume serial number and file index,
// of the open handle read on the first call).
func (f *osFile) CheckLinked() error {
	f.idOnce.Do(func() { f.id, f.idErr = f.File.Stat() })
	if f.idErr != nil {
		return &fs.PathError{Op: "stat", Path: f.Name(), Err: f.idErr}
	}
	fi, err := os.Stat(f.abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return unlinked(f.Name(), err)
		}
		return err
	}
	if !os.SameFile(fi, f.id) {
		return unlinked(f.Name(), nil)
	}
	return nil
}
