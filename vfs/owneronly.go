package vfs

import (
	"fmt"
	"io/fs"
)

// aclChecker is implemented by filesystems whose mode bits do not decide
// who may open a file: the operating system's on Windows, where the
// file's access-control list does.
type aclChecker interface {
	ownerOnly(name string) (why, fix string)
}

// OwnerOnly tells whether users other than its owner may access the file
// at name on fsys, which fi describes (from fsys.Stat), for the checks that
// refuse a secret others could read. It returns why == "" when only the
// owner may. Otherwise why says what lets others in, to follow "has" in a
// message ("mode 0644"; on Windows, an access-control entry naming the
// account), and fix is the command that makes the file owner-only
// ("chmod 600 NAME"; on Windows, an icacls command).
//
// Where mode bits are permissions (Unix, and the in-memory filesystems of
// this package) a file is owner-only when its mode has no group or other
// bits. On Windows, OSFS reads the file's DACL instead: what it checks and
// what it does not is in docs/deployment/on-premise.md ("Windows"). A
// FaultFS asks the filesystem it wraps, a Mirror its primary copy.
func OwnerOnly(fsys FS, name string, fi fs.FileInfo) (why, fix string) {
	switch f := fsys.(type) {
	case *FaultFS:
		return OwnerOnly(f.inner, name, fi)
	case *Mirror:
		return OwnerOnly(f.reps[0].FS, name, fi)
	case aclChecker:
		return f.ownerOnly(name)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Sprintf("mode %04o", perm), "chmod 600 " + name
	}
	return "", ""
}
