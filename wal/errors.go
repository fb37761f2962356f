package wal

import (
	"errors"
	"fmt"
)

var (
	// ErrCorrupt is matched (errors.Is) by every error that reports damage
	// to data that was, or may have been, acknowledged. Such damage is never
	// truncated away; see CorruptError for where it is.
	ErrCorrupt = errors.New("wal: corrupt")
	// ErrFailed is matched by every error returned after a write or sync
	// failure put the log into its failed state, or after the segment
	// being written was found no longer at its path (the cause then
	// matches vfs.ErrUnlinked), and by Close's error in that state. The
	// log never retries an fsync on the same file: reopen it (a new
	// process, or Open again after Close) to continue.
	ErrFailed = errors.New("wal: failed")
	// ErrClosed is returned by Append after Close.
	ErrClosed = errors.New("wal: closed")
	// ErrUnknownVersion is matched when a segment was written by a newer
	// format version than this build reads.
	ErrUnknownVersion = errors.New("wal: unknown format version")
	// ErrTooLarge is returned by Append for a payload above MaxRecordSize.
	ErrTooLarge = errors.New("wal: record too large")
	// ErrNotWAL is matched when a directory holds files but no segments, or
	// a path is not a directory.
	ErrNotWAL = errors.New("wal: not a write-ahead log directory")

	errBad     = errors.New("bad")
	errVersion = errors.New("version")
)

// CorruptError says where damage was found: the segment, its file, the byte
// offset in that file, and why the bytes there cannot be trusted.
type CorruptError struct {
	Segment uint64
	Path    string
	Offset  int64
	Reason  string
}

// Error describes the damage and what to do about it.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: corrupt: segment %d (%s) at offset %d: %s; acknowledged data may be damaged, so nothing was truncated: keep a copy of the directory as evidence and restore from a mirror or backup",
		e.Segment, e.Path, e.Offset, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// failedError wraps the cause of the failed state.
type failedError struct{ cause error }

func (e *failedError) Error() string {
	return fmt.Sprintf("wal: failed (no further appends are accepted; reopen the log to continue): %v", e.cause)
}
func (e *failedError) Unwrap() []error { return []error{ErrFailed, e.cause} }
