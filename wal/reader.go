package wal

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// Reader reads records from a log directory. A Reader made by WAL.Reader
// reads only what was durable when it was made. One made by NewReader
// reads everything written so far, also while a sink in this or another
// process writes the log: it reads a prefix of whole batches that verify,
// stops quietly at the end of what was written (a torn tail, or a batch
// being written, reported by Check as Report.TornTail), and reports damage
// only where no write in progress can explain it (docs/wal-format.md,
// "Reading a live log"). A Reader never modifies the directory.
type Reader struct {
	fs    vfs.FS
	dir   string
	limit *position
}

// NewReader returns a Reader for the log in dir.
func NewReader(fsys vfs.FS, dir string) *Reader { return &Reader{fs: fsys, dir: dir} }

// Reader returns a Reader bounded by what is durable now.
func (w *WAL) Reader() *Reader {
	w.mu.Lock()
	p := w.pos
	w.mu.Unlock()
	return &Reader{fs: w.fs, dir: w.dir, limit: &p}
}

// Report summarises a full read of a log (see Check).
type Report struct {
	Segments int
	Records  uint64 // records of every type
	Events   uint64 // records of type RecordEvent
	FirstSeq uint64
	LastSeq  uint64
	Bytes    int64 // bytes of intact batches, segment headers included
	// TornTail is set when the last segment ends in bytes that do not
	// verify and were never acknowledged: a crash left them (Open
	// truncates them), or, on a live log, a batch was being written
	// where the read stopped (TailInfo.Live). (Zeros at the very end are
	// space filled ahead of the records, not a torn tail; Open truncates
	// them too.)
	TornTail *TailInfo
	// Sealed reports whether the last segment is sealed (a clean Close).
	Sealed bool
	// LastSegmentStart is the sequence number of the first record of the
	// last segment read: every record before it lies in a sealed segment.
	LastSegmentStart uint64
	// LastInteriorSeal is the sequence number of the last seal in the
	// last segment that records follow (0 if none): a seal of a clean
	// Close that a later open continued after.
	LastInteriorSeal uint64
}

// TailInfo locates an unacknowledged torn tail: where a read of the log
// stopped, and how many bytes that are not zero lie after it.
type TailInfo struct {
	Segment uint64
	Offset  int64
	Bytes   int64
	// Live is set when a process held the log open for writing and the
	// bytes were not judged: read while a write was in progress, they
	// may not have been whole (docs/wal-format.md, "Reading a live log").
	Live bool
}

// Records iterates over every record with sequence number ≥ fromSeq. It
// yields a non-nil error (and stops) on damage: errors.Is(err, ErrCorrupt).
func (r *Reader) Records(ctx context.Context, fromSeq uint64) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		_, err := r.walk(ctx, fromSeq, nil, func(rec Record) error {
			if !yield(rec, nil) {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			yield(Record{}, err)
		}
	}
}

// Between iterates over the event records whose stored timestamps t (see
// UnixNano) satisfy from ≤ t < to, in sequence order; to == math.MaxInt64
// leaves the range open above. Sealed segments whose recorded time range
// misses [from, to) are skipped without being read, and no payload is
// decoded to decide. To select by event time, give it a Window's Bounds
// and decide the records at UnixNano's extremes by Window.Contains.
func (r *Reader) Between(ctx context.Context, from, to int64) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		skip := func(s sealInfo) bool { return s.Count == 1 || sealMisses(s, from, to) }
		_, err := r.walk(ctx, 0, skip, func(rec Record) error {
			if rec.Type != RecordEvent || !inBounds(rec.Time, from, to) {
				return nil
			}
			if !yield(rec, nil) {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			yield(Record{}, err)
		}
	}
}

var errStop = errors.New("stop")

// Check reads and verifies every record of the log in dir without modifying
// it: headers, checksums, sequence continuity and the chain between
// segments. It returns an error matching ErrCorrupt on damage. visit, if not
// nil, is called for every record.
func Check(ctx context.Context, fsys vfs.FS, dir string, visit func(Record) error) (*Report, error) {
	return NewReader(fsys, dir).Check(ctx, visit)
}

// Check is the package-level Check on what this Reader can see.
func (r *Reader) Check(ctx context.Context, visit func(Record) error) (*Report, error) {
	return r.walk(ctx, 0, nil, visit)
}

// walk visits the records of every segment in order. skip, if set, may skip
// a sealed segment by its seal without reading its batches.
func (r *Reader) walk(ctx context.Context, fromSeq uint64, skip func(sealInfo) bool, visit func(Record) error) (*Report, error) {
	fi, err := r.fs.Stat(r.dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNotWAL, r.dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrNotWAL, r.dir)
	}
	st, err := listDir(r.fs, r.dir, nil)
	var gap *CorruptError
	if err != nil && (st == nil || !errors.As(err, &gap)) {
		return nil, err
	}
	if len(st.segs) == 0 {
		return nil, fmt.Errorf("%w: %s holds no WAL segments", ErrNotWAL, r.dir)
	}
	rep := &Report{}
	var prev *segment
	for i, seg := range st.segs {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if r.limit != nil && seg.num > r.limit.seg {
			break
		}
		// The segment before a missing one is not the log's end: its
		// damage is damage, never a torn tail.
		last := (i == len(st.segs)-1 && gap == nil) || (r.limit != nil && seg.num == r.limit.seg)
		// Skip whole segments that end before fromSeq or that skip rejects.
		if i+1 < len(st.segs) && !last {
			if next, ok := r.peekHeader(st.segs[i+1]); ok && next.FirstSeq <= fromSeq {
				if err := r.skipSegment(seg, prev, rep); err != nil {
					return rep, err
				}
				prev = seg
				continue
			}
		}
		// A segment whose only wanted record is its seal: read the seal
		// from the last sector alone.
		if fromSeq > 0 && !last && i+1 < len(st.segs) {
			if next, ok := r.peekHeader(st.segs[i+1]); ok && next.FirstSeq == fromSeq+1 {
				if _, hdr, rec, ok := r.readSealRecord(seg); ok && rec.Seq == fromSeq {
					seg.hdr = hdr
					if err := r.skipSegment(seg, prev, rep); err != nil {
						return rep, err
					}
					if err := visit(rec); err != nil {
						return rep, err
					}
					prev = seg
					continue
				}
			}
		}
		if skip != nil && !last {
			if s, hdr, ok := r.readSeal(seg); ok && skip(s) {
				seg.hdr = hdr
				if err := r.skipSegment(seg, prev, rep); err != nil {
					return rep, err
				}
				prev = seg
				continue
			}
		}
		f, err := r.open(seg, fromSeq, visit)
		if err != nil {
			return rep, err
		}
		if seg.bad != nil {
			if err := r.tail(f, seg, last, fromSeq, visit, rep); err != nil {
				f.Close()
				return rep, err
			}
		}
		f.Close()
		if prev != nil {
			if err := checkChain(prev, seg); err != nil {
				return rep, err
			}
		}
		r.account(rep, seg)
		prev = seg
	}
	if gap != nil {
		// Every record before the missing segment was visited; the gap
		// starts right after them.
		return rep, gap
	}
	return rep, nil
}

// tail handles the first batch of seg that did not verify (seg.bad). In
// the last segment of a log read whole, settleTail decides (it may read on:
// the log may be live); what remains is reported as rep.TornTail. Anywhere
// else it is damage.
func (r *Reader) tail(f vfs.File, seg *segment, last bool, fromSeq uint64, visit func(Record) error, rep *Report) error {
	if !last || r.limit != nil {
		return corruptAt(seg, seg.bad.off, seg.bad.err)
	}
	live, err := r.settleTail(f, seg, fromSeq, visit)
	if err != nil || seg.bad == nil {
		return err
	}
	// Zeros after the last non-zero byte were filled ahead of the records
	// (Options.Prealloc), not left by a crash.
	nz, err := nonZeroEndNow(f, seg, seg.end)
	if err != nil {
		return err
	}
	if nz > seg.end {
		rep.TornTail = &TailInfo{Segment: seg.num, Offset: seg.end, Bytes: nz - seg.end, Live: live}
	}
	return nil
}

func (r *Reader) account(rep *Report, seg *segment) {
	if rep.Segments == 0 {
		rep.FirstSeq = seg.hdr.FirstSeq
	}
	rep.Segments++
	rep.Records += seg.count
	rep.Events += seg.events
	rep.Bytes += seg.end
	if seg.count > 0 {
		rep.LastSeq = seg.nextSeq - 1
	}
	rep.Sealed = seg.sealed
	rep.LastSegmentStart = seg.hdr.FirstSeq
	rep.LastInteriorSeal = seg.midSeal
}

// open loads a segment, bounding the active segment of a live log.
func (r *Reader) open(seg *segment, fromSeq uint64, visit func(Record) error) (vfs.File, error) {
	limit := int64(-1)
	if r.limit != nil && seg.num == r.limit.seg {
		limit = r.limit.off
	}
	return loadSegment(r.fs, seg, limit, fromSeq, visit)
}

// skipSegment accounts for a sealed segment without reading its batches.
func (r *Reader) skipSegment(seg, prev *segment, rep *Report) error {
	s, hdr, ok := r.readSeal(seg)
	if !ok {
		return &CorruptError{Segment: seg.num, Path: seg.path, Reason: "segment is followed by another but its seal cannot be read"}
	}
	seg.hdr = hdr
	seg.sealed = true
	seg.skipped = true
	seg.seal = s
	seg.count = s.Count
	seg.nextSeq = s.FirstSeq + s.Count
	seg.end = seg.size
	if prev != nil && seg.hdr.FirstSeq != prev.nextSeq {
		return &CorruptError{Segment: seg.num, Path: seg.path, Reason: fmt.Sprintf("segment starts at sequence %d but the previous segment ends before %d", seg.hdr.FirstSeq, prev.nextSeq)}
	}
	r.account(rep, seg)
	return nil
}

func (r *Reader) peekHeader(seg *segment) (segHeader, bool) {
	f, err := r.fs.Open(seg.path)
	if err != nil {
		return segHeader{}, false
	}
	defer f.Close()
	buf := make([]byte, segHeaderSize)
	if _, err := f.ReadAt(buf, 0); err != nil {
		return segHeader{}, false
	}
	h, err := decodeSegHeader(buf)
	return h, err == nil && h.Number == seg.num
}

// readSeal reads a sealed segment's seal from its last sector.
func (r *Reader) readSeal(seg *segment) (sealInfo, segHeader, bool) {
	s, hdr, _, ok := r.readSealRecord(seg)
	return s, hdr, ok
}

// readSealRecord is readSeal that also returns the seal as a Record (its
// checksum verified).
func (r *Reader) readSealRecord(seg *segment) (sealInfo, segHeader, Record, bool) {
	f, err := r.fs.Open(seg.path)
	if err != nil {
		return sealInfo{}, segHeader{}, Record{}, false
	}
	defer f.Close()
	s, hdr, rec, _, ok := readSealSector(f, seg)
	return s, hdr, rec, ok
}

// readSealSector reads the header sector and the last sector of segment
// file f and reports whether the last sector is the segment's seal: an
// intact batch holding exactly one seal record whose segment number, first
// sequence number and count agree with the header and with the batch. It
// also returns the seal as a Record (copying nothing: it aliases a buffer of
// its own) and the SHA-256 of its frame, which the next segment's header
// chains to. It sets seg.size. It reads two sectors, whatever the size of
// the segment; the batches before the seal are not read.
func readSealSector(f vfs.File, seg *segment) (sealInfo, segHeader, Record, [32]byte, bool) {
	var (
		rec   Record
		frame [32]byte
	)
	size, err := f.Size()
	if err != nil || size < 2*SectorSize || size%SectorSize != 0 {
		return sealInfo{}, segHeader{}, rec, frame, false
	}
	seg.size = size
	buf := make([]byte, segHeaderSize)
	if _, err := f.ReadAt(buf, 0); err != nil {
		return sealInfo{}, segHeader{}, rec, frame, false
	}
	hdr, err := decodeSegHeader(buf)
	if err != nil || hdr.Number != seg.num {
		return sealInfo{}, segHeader{}, rec, frame, false
	}
	off := size - SectorSize
	buf = make([]byte, SectorSize)
	if _, err := f.ReadAt(buf, off); err != nil {
		return sealInfo{}, segHeader{}, rec, frame, false
	}
	h, err := parseBatchHeader(buf, hdr.Salt, off)
	if err != nil || h.Count != 1 || h.span() != SectorSize || (h.Tagged && hdr.Version < 2) {
		return sealInfo{}, segHeader{}, rec, frame, false
	}
	body := buf[batchHeaderSize:]
	whiten(body, hdr.Salt, off+batchHeaderSize)
	if !allZero(body[h.stored():]) {
		return sealInfo{}, segHeader{}, rec, frame, false
	}
	var tag [32]byte
	if h.Tagged {
		var ok bool
		if tag, ok = readTag(body[h.BodyLen:]); !ok {
			return sealInfo{}, segHeader{}, rec, frame, false
		}
	}
	recs, err := splitBatch(body[:h.BodyLen], h)
	if err != nil || RecordType(recs[0][8]) != RecordSeal {
		return sealInfo{}, segHeader{}, rec, frame, false
	}
	s, ok := decodeSeal(recs[0][recHeaderSize:])
	if !ok || s.Number != seg.num || s.FirstSeq != hdr.FirstSeq || s.Count == 0 || s.FirstSeq+s.Count-1 != h.FirstSeq {
		return sealInfo{}, segHeader{}, rec, frame, false
	}
	rec = Record{Seq: h.FirstSeq, Type: RecordSeal, Time: int64(binary.LittleEndian.Uint64(recs[0][20:])), Payload: recs[0][recHeaderSize:],
		Segment: seg.num, Offset: off, BatchEnd: true, Tagged: h.Tagged, Tag: tag, Version: hdr.Version}
	return s, hdr, rec, sha256.Sum256(recs[0]), true
}
