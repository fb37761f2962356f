package wal

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// ReadSeal returns the last seal record of the segment file at path whose
// sequence number is at most maxSeq (pass math.MaxUint64 for any): the
// complete segment that the bytes [0, Seal.End) of the file hold. ok is
// false when the file holds no such seal (a segment being written, or one
// damaged before its first seal).
//
// A segment that ends in its seal (every sealed segment but the last of a
// log) is read from its last sector alone; any other is scanned from the
// start up to its last intact batch, or to the first seal after maxSeq.
// ReadSeal never modifies the file and is safe on the last segment of a log
// that a sink is writing: a writer only appends to it, and a seal the scan
// finds was complete when found. Whether it is durable is the writer's to
// say (WAL.DurableSeq): pass it as maxSeq. ReadSeal does not verify the
// records (use Check): a copy made of the bytes is checked by its reader.
func ReadSeal(fsys vfs.FS, path string, maxSeq uint64) (s Seal, ok bool, err error) {
	num, named := parseSegmentName(filepath.Base(path))
	if !named {
		return Seal{}, false, fmt.Errorf("wal: %s is not a segment file name", path)
	}
	f, err := fsys.Open(path)
	if err != nil {
		return Seal{}, false, fmt.Errorf("wal: open segment %s: %w", path, err)
	}
	defer f.Close()
	seg := &segment{num: num, path: path}
	if seg.size, err = f.Size(); err != nil {
		return Seal{}, false, fmt.Errorf("wal: stat segment %s: %w", path, err)
	}
	if si, hdr, _, _, found := readSealSector(f, seg); found && hdr.Number == num {
		last := si.FirstSeq + si.Count - 1
		if last <= maxSeq {
			return Seal{Segment: num, FirstSeq: hdr.FirstSeq, LastSeq: last, End: seg.size}, true, nil
		}
	}
	buf := make([]byte, segHeaderSize)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return Seal{}, false, fmt.Errorf("wal: read segment header %s: %w", path, err)
	}
	hdr, err := decodeSegHeader(buf[:n])
	switch {
	case errors.Is(err, errVersion):
		return Seal{}, false, newerVersion(path, hdr.Version, "read")
	case err != nil:
		return Seal{}, false, corruptAt(seg, 0, err)
	case hdr.Number != num:
		return Seal{}, false, &CorruptError{Segment: num, Path: path, Reason: fmt.Sprintf("file is named for segment %d but its header says segment %d (a stale or misplaced file)", num, hdr.Number)}
	}
	seg.hdr = hdr
	err = scanSegment(f, seg, 0, func(rec Record) error {
		if rec.Type != RecordSeal || !rec.BatchEnd {
			return nil
		}
		if rec.Seq > maxSeq {
			return errStop
		}
		stored := recHeaderSize + len(rec.Payload)
		if rec.Tagged {
			stored += tagTrailerSize
		}
		s, ok = Seal{Segment: num, FirstSeq: hdr.FirstSeq, LastSeq: rec.Seq, End: rec.Offset + batchSpan(stored)}, true
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return Seal{}, false, err
	}
	return s, ok, nil
}
