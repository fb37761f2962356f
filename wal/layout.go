package wal

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// The WAL's names in a log directory (docs/wal-format.md, "Directory").
// Layers above the WAL keep their own files beside these; each of them
// names its files, and tells Open about them through Options.Owned.
const (
	// LockName is the lock file that Open holds (vfs.FS.Lock) while the
	// log is open; it names the process that holds it.
	LockName = "LOCK"

	// tempSuffix makes the name of a segment being created: a file named
	// SegmentName(n) + tempSuffix is renamed into place once its header is
	// durable, and a leftover one is removed by Open.
	tempSuffix = ".tmp"
)

// Owns reports whether a file name is the WAL's own: a segment, a segment
// being created, or the lock file. Every other name in a log directory
// belongs to a layer above (see Options.Owned), or to no one.
func Owns(name string) bool {
	if _, ok := parseSegmentName(name); ok {
		return true
	}
	return name == LockName || isSegmentTemp(name)
}

// isSegmentTemp reports whether name is a segment being created.
func isSegmentTemp(name string) bool {
	base, ok := strings.CutSuffix(name, tempSuffix)
	if !ok {
		return false
	}
	_, ok = parseSegmentName(base)
	return ok
}

// adopts is Options.Owned, false for every name when it is nil.
func (o *Options) adopts(name string) bool { return o.Owned != nil && o.Owned(name) }

// segmentName is the file name of segment number n.
func segmentName(n uint64) string { return fmt.Sprintf("%020d.wal", n) }

// SegmentName is the file name of segment number n: 20 decimal digits and
// ".wal" (see ParseSegmentName).
func SegmentName(n uint64) string { return segmentName(n) }

// ParseSegmentName returns the segment number in a segment file name
// (20 decimal digits and ".wal"), and false for any other name. Packages
// that look for segments call it rather than parse names themselves.
func ParseSegmentName(name string) (uint64, bool) { return parseSegmentName(name) }

// parseSegmentName returns the number in a segment file name.
func parseSegmentName(name string) (uint64, bool) {
	if len(name) != 24 || name[20:] != ".wal" {
		return 0, false
	}
	var n uint64
	for _, c := range name[:20] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// SegmentHeader is the first sector of a segment file, as
// docs/wal-format.md lays it out.
type SegmentHeader struct {
	// Version is the segment's format version (see FormatVersion).
	Version uint16
	// Number is the segment's number, the one in its file name.
	Number uint64
	// FirstSeq is the sequence number of the segment's first record.
	FirstSeq uint64
	// Salt is the segment's random salt, repeated in every batch header.
	Salt uint64
	// PrevHash is the SHA-256 of the previous segment's last record frame
	// (zero in the first segment).
	PrevHash [32]byte
	// Created is when the segment was created, in Unix nanoseconds, by
	// the clock of the writer (Options.Now).
	Created int64
}

// ReadSegmentHeader reads and checks the header of the segment file at path
// (magic, checksum, reserved bytes, version): the header of any segment,
// sealed or not. It never modifies the file. It returns an error matching
// ErrUnknownVersion for a segment written by a newer format, a
// *CorruptError (ErrCorrupt) for a damaged header or one whose number is
// not the one in the file's name, and the filesystem's error for a file
// that cannot be read.
func ReadSegmentHeader(fsys vfs.FS, path string) (SegmentHeader, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return SegmentHeader{}, fmt.Errorf("wal: open segment %s: %w", path, err)
	}
	defer f.Close()
	buf := make([]byte, segHeaderSize)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return SegmentHeader{}, fmt.Errorf("wal: read segment header %s: %w", path, err)
	}
	num, named := parseSegmentName(filepath.Base(path))
	hdr, err := decodeSegHeader(buf[:n])
	switch {
	case errors.Is(err, errVersion):
		return SegmentHeader{}, newerVersion(path, hdr.Version, "read")
	case err != nil:
		return SegmentHeader{}, corruptAt(&segment{num: num, path: path}, 0, err)
	case named && hdr.Number != num:
		return SegmentHeader{}, &CorruptError{Segment: num, Path: path, Reason: fmt.Sprintf("file is named for segment %d but its header says segment %d (a stale or misplaced file)", num, hdr.Number)}
	}
	return SegmentHeader(hdr), nil
}
