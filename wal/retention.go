package wal

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"time"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// SealedSegment describes a segment that another segment follows: it is
// complete, and only retention ever removes it (docs/retention.md).
type SealedSegment struct {
	Number   uint64
	Path     string
	Size     int64
	FirstSeq uint64 // its first record's sequence number
	LastSeq  uint64 // its seal's
	// MinTime and MaxTime bound the timestamps of its events (unix ns);
	// Events is false when it holds none (then they are meaningless).
	MinTime, MaxTime int64
	Events           bool
	// WrittenBefore is when the next segment was created: every record of
	// this one was written before then, whatever the events' timestamps
	// say.
	WrittenBefore time.Time
}

// SealedSegments lists, oldest first, the segments of the log that another
// segment follows, from their headers and seals alone (two sectors each;
// the batches are not read). The last segment, being written, is never
// listed. A segment whose seal does not read is an error: the log is
// damaged there (run verify).
func (r *Reader) SealedSegments(ctx context.Context) ([]SealedSegment, error) {
	st, err := listDir(r.fs, r.dir, nil)
	if err != nil {
		return nil, err
	}
	var out []SealedSegment
	for i := 0; i+1 < len(st.segs); i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		seg := st.segs[i]
		s, hdr, ok := r.readSeal(seg)
		next, nok := r.peekHeader(st.segs[i+1])
		if !ok || !nok || next.FirstSeq != s.FirstSeq+s.Count {
			return nil, &CorruptError{Segment: seg.num, Path: seg.path, Reason: "sealed segment's seal or the next segment's header does not read; verify the log"}
		}
		out = append(out, SealedSegment{
			Number: seg.num, Path: seg.path, Size: seg.size, FirstSeq: hdr.FirstSeq, LastSeq: s.FirstSeq + s.Count - 1,
			MinTime: s.MinTime, MaxTime: s.MaxTime, Events: s.MaxTime != math.MinInt64,
			WrittenBefore: time.Unix(0, next.Created),
		})
	}
	return out, nil
}

// FirstSeq returns the sequence number of the log's first record as Open
// found it: 1, unless retention removed its oldest segments.
func (w *WAL) FirstSeq() uint64 { return w.firstSeq }

// RemoveSegments removes the segment files numbered up to and including
// upTo, oldest first, syncing the directory after each removal, so that a
// crash at any point leaves the log's segments contiguous (a suffix of
// them), never with a hole. Missing files are skipped: a crash may have
// removed some already. It never removes the last segment of the log.
// Only retention calls it, after the retention checkpoint covering the
// removed records is durable.
func RemoveSegments(fsys vfs.FS, dir string, upTo uint64) (removed int, err error) {
	st, err := listDir(fsys, dir, nil)
	if err != nil {
		return 0, err
	}
	for i, seg := range st.segs {
		if seg.num > upTo {
			break
		}
		if i == len(st.segs)-1 {
			return removed, fmt.Errorf("wal: refusing to remove segment %d: it is the log's last", seg.num)
		}
		if err := fsys.Remove(seg.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("wal: remove %s: %w", filepath.Base(seg.path), err)
		}
		if err := fsys.SyncDir(dir); err != nil {
			return removed, fmt.Errorf("wal: sync %s after removing %s: %w", dir, filepath.Base(seg.path), err)
		}
		removed++
	}
	return removed, nil
}
