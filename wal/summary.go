package wal

import (
	"context"
	"fmt"
	"math"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// SegmentSummary describes one segment as Summarize found it.
type SegmentSummary struct {
	Number   uint64
	FirstSeq uint64
	// Records counts the records of every type, the seal included.
	Records uint64
	// Events counts the event records; it is known (EventsKnown) only for
	// a segment whose records were read, not for one taken from its seal.
	Events      uint64
	EventsKnown bool
	// Meta counts the RecordMeta records (key rotation statements) of a
	// segment whose records were read.
	Meta   uint64
	Size   int64 // bytes on disk
	Sealed bool
	// MinTime and MaxTime are the smallest and largest event timestamps
	// (unix nanoseconds); MinTime > MaxTime when the segment has none.
	MinTime, MaxTime int64
	Created          int64 // the header's creation time, unix nanoseconds
	// FromSeal reports that the segment was summarised from its seal
	// alone, without reading its records.
	FromSeal bool
	// Unread is the number of bytes after the last intact batch of a
	// segment whose records were read: zeros filled ahead, a batch being
	// written by a live sink, a torn tail or damage. Summarize does not
	// tell them apart (Check does).
	Unread int64
	// Problem says why a segment that is not the last could not be read
	// to its seal ("" when it could).
	Problem string
}

// Summarize describes the segments of the log in dir cheaply: a sealed
// segment that is followed by another is described by its header and its
// seal (the last sector), without reading its records, unless readAll is
// set; the last segment, and any whose seal cannot be used, are read up to
// their last intact batch. visit, if not nil, is called for every record
// read. Summarize never modifies the directory, takes no lock, and does not
// verify the log: it checks neither the chain between segments nor, for a
// segment taken from its seal, the records (use Check for that). It is safe
// on a log that a sink is writing: what lies after the last intact batch
// of the last segment is counted as Unread, never reported as damage.
func Summarize(ctx context.Context, fsys vfs.FS, dir string, readAll bool, visit func(Record) error) ([]SegmentSummary, error) {
	fi, err := fsys.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNotWAL, dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrNotWAL, dir)
	}
	st, err := listDir(fsys, dir, nil)
	if err != nil {
		return nil, err
	}
	if len(st.segs) == 0 {
		return nil, fmt.Errorf("%w: %s holds no WAL segments", ErrNotWAL, dir)
	}
	r := NewReader(fsys, dir)
	out := make([]SegmentSummary, 0, len(st.segs))
	for i, seg := range st.segs {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		last := i == len(st.segs)-1
		if !last && !readAll {
			if s, hdr, ok := r.readSeal(seg); ok {
				out = append(out, SegmentSummary{Number: seg.num, FirstSeq: hdr.FirstSeq, Records: s.Count, Size: seg.size,
					Sealed: true, MinTime: s.MinTime, MaxTime: s.MaxTime, Created: hdr.Created, FromSeal: true})
				continue
			}
		}
		var meta uint64
		f, err := loadSegment(fsys, seg, -1, 0, func(rec Record) error {
			if rec.Type == RecordMeta {
				meta++
			}
			if visit != nil {
				return visit(rec)
			}
			return nil
		})
		if err != nil {
			return out, err
		}
		f.Close()
		sum := SegmentSummary{Number: seg.num, FirstSeq: seg.hdr.FirstSeq, Records: seg.count, Events: seg.events, EventsKnown: true,
			Meta: meta, Size: seg.size, Sealed: seg.sealed, MinTime: seg.minTime, MaxTime: seg.maxTime, Created: seg.hdr.Created,
			Unread: seg.size - seg.end}
		if seg.events == 0 {
			sum.MinTime, sum.MaxTime = math.MaxInt64, math.MinInt64
		}
		if !last && seg.bad != nil {
			sum.Problem = fmt.Sprintf("offset %d: %v", seg.bad.off, seg.bad.err)
		} else if !last && !seg.sealed {
			sum.Problem = "segment is followed by another but ends without a seal"
		}
		out = append(out, sum)
	}
	return out, nil
}
