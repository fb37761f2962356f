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

	// errVersion is returned by decodeSegHeader for a header that is intact
	// but of a format version this build does not read.
	errVersion = errors.New("version")
)

// damage is why bytes of a segment cannot be trusted: a header, checksum,
// size or sequence number that does not verify. The decoders return every
// such reason as a damage, and callers add context by wrapping it with %w;
// isDamage tells it from a failure to read the bytes. Whether the damage is
// a torn, never-acknowledged write or corruption is for classifyTail to
// decide; corruption reaches callers as a *CorruptError whose Reason is the
// damage's text. (A string type: a constant reason costs no allocation,
// which matters to scans that try a header at every sector.)
type damage string

func (d damage) Error() string { return string(d) }

// damagef returns a damage with the formatted reason.
func damagef(format string, args ...any) error {
	return damage(fmt.Sprintf(format, args...))
}

// isDamage reports whether err says that bytes of a segment do not verify,
// as opposed to an I/O failure or an error from a visit function. It is
// the one test callers make; nothing compares reason strings.
func isDamage(err error) bool {
	var d damage
	return errors.As(err, &d)
}

// corruptAt reports err, found at offset off of seg: damage becomes a
// *CorruptError naming the segment, its path and the offset; any other
// error (an I/O failure) is returned as it is.
func corruptAt(seg *segment, off int64, err error) error {
	if !isDamage(err) {
		return err
	}
	return &CorruptError{Segment: seg.num, Path: seg.path, Offset: off, Reason: err.Error()}
}

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

// newerVersion is the error for a segment at path whose intact header
// carries a format version newer than this build's; verb says what the
// caller meant to do with it ("read", "salvage").
func newerVersion(path string, version uint16, verb string) error {
	return fmt.Errorf("%w: %s was written by segment format version %d, and this build reads version %d; upgrade mtlog-audit to %s it", ErrUnknownVersion, path, version, FormatVersion, verb)
}
