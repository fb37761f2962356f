package wal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"path/filepath"
)

// Mark locates a seal record in the log: its sequence number, its segment
// and the offset of the batch that holds it alone.
type Mark struct {
	Seq     uint64
	Segment uint64
	Offset  int64
}

// sealMark returns the mark of the last seal a scan found in seg (the zero
// Mark if none, or if that seal ended a batch of several records).
func sealMark(seg *segment) Mark {
	if seg.sealOff <= 0 || seg.seal.Count == 0 {
		return Mark{}
	}
	return Mark{Seq: seg.seal.FirstSeq + seg.seal.Count - 1, Segment: seg.num, Offset: seg.sealOff}
}

// LastSeal returns the last seal record that Open found in the log's last
// segment: the seal of a clean Close, or the last interior seal of a
// segment continued after one (docs/wal-format.md, "Reopening after a clean
// Close"). Every record up to and including it was handed to
// Options.OnCommit before that seal was written or, for the seal itself,
// before Close returned. ok is false when the last segment holds no seal.
// Reader.RecordsFrom reads the log from it without scanning the segment
// before it.
func (w *WAL) LastSeal() (m Mark, ok bool) {
	return w.lastSeal, w.lastSeal.Seq > 0
}

// RecordsFrom is Records(fromSeq) started at the seal m (a Mark from
// WAL.LastSeal, m.Seq ≤ fromSeq) instead of at the start of its segment:
// the batches before m are neither read nor checked. The batch at m is
// checked as a scan would check it (magic, checksum, salt, its own offset,
// sequence number) and must hold record m.Seq, a seal; the batches after it
// are checked as usual. A Reader not bounded to m's segment (one that
// NewReader made, or that may see later segments) reads as Records does.
func (r *Reader) RecordsFrom(ctx context.Context, m Mark, fromSeq uint64) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		visit := func(rec Record) error {
			if !yield(rec, nil) {
				return errStop
			}
			return nil
		}
		var err error
		if r.limit == nil || r.limit.seg != m.Segment || m.Seq == 0 {
			_, err = r.walk(ctx, fromSeq, nil, visit)
		} else {
			err = r.walkFrom(ctx, m, fromSeq, visit)
		}
		if err != nil && !errors.Is(err, errStop) {
			yield(Record{}, err)
		}
	}
}

// walkFrom visits the records ≥ fromSeq of m's segment, which is the last
// one r sees, reading it from m on.
func (r *Reader) walkFrom(ctx context.Context, m Mark, fromSeq uint64, visit func(Record) error) error {
	if fromSeq < m.Seq {
		return fmt.Errorf("wal: records from %d cannot be read from the seal of record %d, which follows it", fromSeq, m.Seq)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	seg := &segment{num: m.Segment, path: filepath.Join(r.dir, segmentName(m.Segment))}
	f, err := r.fs.Open(seg.path)
	if err != nil {
		return fmt.Errorf("wal: open segment %s: %w", seg.path, err)
	}
	defer f.Close()
	if seg.size, err = f.Size(); err != nil {
		return fmt.Errorf("wal: stat segment %s: %w", seg.path, err)
	}
	seg.size = min(seg.size, r.limit.off)
	buf := make([]byte, segHeaderSize)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("wal: read segment header %s: %w", seg.path, err)
	}
	hdr, err := decodeSegHeader(buf[:n])
	switch {
	case errors.Is(err, errVersion):
		return newerVersion(seg.path, hdr.Version, "read")
	case err != nil:
		return corruptAt(seg, 0, err)
	case hdr.Number != seg.num:
		return &CorruptError{Segment: seg.num, Path: seg.path, Reason: fmt.Sprintf("file is named for segment %d but its header says segment %d (a stale or misplaced file)", seg.num, hdr.Number)}
	case hdr.FirstSeq > m.Seq || m.Offset < segHeaderSize || m.Offset%SectorSize != 0 || m.Offset >= seg.size:
		return &CorruptError{Segment: seg.num, Path: seg.path, Offset: m.Offset, Reason: fmt.Sprintf("no seal of record %d can start here (the segment starts at record %d and holds %d bytes)", m.Seq, hdr.FirstSeq, seg.size)}
	}
	seg.hdr = hdr
	seg.end, seg.nextSeq, seg.count = m.Offset, m.Seq, m.Seq-hdr.FirstSeq
	seg.minTime, seg.maxTime = math.MaxInt64, math.MinInt64
	first := true
	err = scanOn(f, seg, m.Seq, func(rec Record) error {
		if first && (rec.Seq != m.Seq || rec.Type != RecordSeal || !rec.BatchEnd) {
			return &CorruptError{Segment: seg.num, Path: seg.path, Offset: m.Offset, Reason: fmt.Sprintf("the batch here is not the seal of record %d that Open found", m.Seq)}
		}
		first = false
		if rec.Seq < fromSeq {
			return nil
		}
		return visit(rec)
	})
	if err != nil {
		return err
	}
	switch {
	case seg.bad != nil:
		return corruptAt(seg, seg.bad.off, seg.bad.err)
	case first:
		return &CorruptError{Segment: seg.num, Path: seg.path, Offset: m.Offset, Reason: fmt.Sprintf("the seal of record %d that Open found is missing", m.Seq)}
	}
	return nil
}
