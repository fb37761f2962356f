// Package vfs is the filesystem interface that the write-ahead log writes
// through. Durability code is written against FS so that tests can crash it
// (see NewCrashFS), tear its writes and fill its disk (see NewFaultFS), while
// production uses the operating system (see OS).
//
// The interface is deliberately small: it names exactly the operations whose
// durability the log reasons about. A write is durable only after Sync or
// Datasync on its file returned nil; a directory entry (create, rename,
// remove) is durable only after SyncDir on its parent directory returned nil.
// A durable write can be found again only while its file is still at its
// path, which CheckLinked checks.
package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// ErrLocked is returned (wrapped) by FS.Lock when another holder owns the lock.
var ErrLocked = errors.New("vfs: lock is held by another owner")

// ErrUnlinked is matched (errors.Is) by the error of File.CheckLinked when
// the file's path no longer leads to it: the file was removed, or it or a
// directory on its path was renamed away or replaced.
var ErrUnlinked = errors.New("vfs: file is no longer at its path")

// File is an open file. Offsets are explicit (ReadAt/WriteAt) so that a file
// can be shared by a writer and readers without a shared cursor.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Sync makes the file's data and metadata durable (fsync).
	Sync() error
	// Datasync makes the file's data and the metadata needed to read it
	// (such as its size) durable (fdatasync).
	Datasync() error
	// Truncate changes the file's size. It is not durable until Sync or
	// Datasync returns.
	Truncate(size int64) error
	// Size returns the file's current size in bytes.
	Size() (int64, error)
	// CheckLinked returns nil if the path the file was opened with (Name)
	// still leads to this file. Otherwise it returns an error matching
	// ErrUnlinked (and fs.ErrNotExist when the path is gone), or the error
	// that kept it from finding out. Data written to a file that is no
	// longer at its path cannot be found again by that path, however
	// durable it is; the answer holds only at the instant of the check.
	CheckLinked() error
	// Name returns the path the file was opened with.
	Name() string
}

// FS is a filesystem. Paths use the host's separator conventions; the
// in-memory implementations accept any slash-separated path.
type FS interface {
	// Create creates a new file for reading and writing. It fails if the
	// file exists (O_EXCL), so that no file is ever silently overwritten.
	Create(name string) (File, error)
	// Open opens an existing file read-only.
	Open(name string) (File, error)
	// OpenReadWrite opens an existing file for reading and writing.
	OpenReadWrite(name string) (File, error)
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// Rename atomically renames oldname to newname, replacing newname.
	Rename(oldname, newname string) error
	// MkdirAll creates a directory and any missing parents.
	MkdirAll(dir string, perm fs.FileMode) error
	// List returns the names (not paths) of the entries of dir, sorted.
	List(dir string) ([]string, error)
	// Stat describes the named file.
	Stat(name string) (fs.FileInfo, error)
	// SyncDir makes the entries of dir (creates, renames, removes) durable.
	SyncDir(dir string) error
	// Lock takes an exclusive advisory lock on the named file, creating it
	// if needed, and writes owner into it so that a second would-be owner
	// can be told who holds the lock. When the lock is held elsewhere Lock
	// returns an error wrapping ErrLocked whose text includes the holder's
	// owner string. Closing the returned io.Closer releases the lock.
	Lock(name, owner string) (io.Closer, error)
}

// PrivateCreator is implemented by filesystems that can create a file that
// only its owner may read and write (mode 0600 on the operating system),
// for secrets such as a forward-security private key.
type PrivateCreator interface {
	// CreatePrivate is Create with owner-only permissions.
	CreatePrivate(name string) (File, error)
}

// CreatePrivate creates name as Create does, with owner-only permissions
// when fsys implements PrivateCreator (every filesystem of this package
// does); otherwise it is Create.
func CreatePrivate(fsys FS, name string) (File, error) {
	if pc, ok := fsys.(PrivateCreator); ok {
		return pc.CreatePrivate(name)
	}
	return fsys.Create(name)
}

// unlinked returns the error of CheckLinked for a file whose path name no
// longer leads to it: gone is why the path leads nowhere (matching
// fs.ErrNotExist), or nil when another file is there now.
func unlinked(name string, gone error) error {
	if gone == nil {
		return &fs.PathError{Op: "check", Path: name, Err: fmt.Errorf("%w: another file is there now", ErrUnlinked)}
	}
	return &fs.PathError{Op: "check", Path: name, Err: fmt.Errorf("%w: %w", ErrUnlinked, gone)}
}
