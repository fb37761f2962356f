package wal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"time"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// FollowOptions configure Reader.Follow.
type FollowOptions struct {
	// Poll is how long Follow waits before it looks at the log again once
	// it has read everything written so far. Default 200ms.
	Poll time.Duration
	// Idle, if set, is called every time Follow has yielded every record
	// written so far and is about to wait (the first call marks the end of
	// what was in the log when Follow began). A caller flushes its output
	// there. An error it returns is yielded and ends Follow.
	Idle func() error
	// SkipBefore, if not zero, lets Follow skip, by their seals, the
	// sealed segments at its start whose stored event timestamps (see
	// UnixNano; a Window's lower Bound) all lie before it: a caller that
	// wants only the events from a time on need not read the whole log.
	// Their records are not yielded.
	SkipBefore int64
}

// judgeEvery bounds how often Follow looks past a spot where it stopped
// for a write that may be in progress, for evidence that it is not.
const judgeEvery = time.Second

// Follow iterates over every record with sequence number ≥ fromSeq, like
// Records, and then over every record written after, as it is written,
// until ctx is done (it then yields ctx.Err() and stops). It is the
// reader of 'replay --follow': safe on a log that a sink in another
// process is writing, it crosses segment rotations and never reports a
// write in progress as damage. The rule:
//
//   - in the last segment it yields records up to the last batch that
//     verifies, and stops at the first one that does not (zeros filled
//     ahead, or a batch being written) without judging it: it reads again
//     from there at the next poll;
//   - it moves to the next segment only when the current one ends with a
//     valid seal and the next segment's file exists (a segment file gets
//     its name only once its header is durable, and only after the seal
//     before it is durable);
//   - it reports damage (errors.Is(err, ErrCorrupt)) only when the bytes
//     cannot be a write in progress: a segment that another follows does
//     not verify up to its seal, read again after the next one was seen;
//     or an intact batch lies after the spot where it stopped, which was
//     read again after that batch was seen (batches are written in order,
//     one write each, so the write at the spot had ended) and still does
//     not verify, by the rule verify applies to a log's tail (Check).
//
// What Follow yields was written whole and verifies; in a sync mode other
// than SyncDurable it may not be durable yet. Follow reads the directory
// as it is, whatever bound a Reader made by WAL.Reader has. It returns an
// error matching ErrNotWAL when dir is not a log.
func (r *Reader) Follow(ctx context.Context, fromSeq uint64, opts FollowOptions) iter.Seq2[Record, error] {
	if opts.Poll <= 0 {
		opts.Poll = 200 * time.Millisecond
	}
	return func(yield func(Record, error) bool) {
		fl := &follower{r: r, ctx: ctx, fromSeq: fromSeq, opts: opts, yield: yield}
		err := fl.run()
		if fl.f != nil {
			fl.f.Close()
		}
		if err != nil && !errors.Is(err, errStop) {
			yield(Record{}, err)
		}
	}
}

// follower is the state of one Follow.
type follower struct {
	r       *Reader
	ctx     context.Context
	fromSeq uint64
	opts    FollowOptions
	yield   func(Record, error) bool

	seg  *segment // the segment being read
	f    vfs.File // seg's file
	prev *segment // the segment before seg, nil if none was read

	sector    [SectorSize]byte
	stuck     int64     // offset of the batch the last poll stopped at, 0 if none
	lastJudge time.Time // when a stop at stuck was last judged
}

func (fl *follower) visit(rec Record) error {
	if err := fl.ctx.Err(); err != nil {
		return err
	}
	if !fl.yield(rec, nil) {
		return errStop
	}
	return nil
}

func (fl *follower) run() error {
	if err := fl.start(); err != nil {
		return err
	}
	for {
		if err := fl.ctx.Err(); err != nil {
			return err
		}
		moved, err := fl.poll()
		if err != nil {
			return err
		}
		if moved {
			continue
		}
		if fl.opts.Idle != nil {
			if err := fl.opts.Idle(); err != nil {
				return err
			}
		}
		t := time.NewTimer(fl.opts.Poll)
		select {
		case <-fl.ctx.Done():
			t.Stop()
			return fl.ctx.Err()
		case <-t.C:
		}
	}
}

// start finds the segment that holds fromSeq (skipping the sealed
// segments before it by their seals, as Records does) and opens it.
func (fl *follower) start() error {
	r := fl.r
	fi, err := r.fs.Stat(r.dir)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNotWAL, r.dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrNotWAL, r.dir)
	}
	st, err := listDir(r.fs, r.dir, nil)
	var gap *CorruptError
	if err != nil && (st == nil || !errors.As(err, &gap)) {
		return err
	}
	// A missing segment is reported when Follow reaches it.
	if len(st.segs) == 0 {
		return fmt.Errorf("%w: %s holds no WAL segments", ErrNotWAL, r.dir)
	}
	i := 0
	for ; i+1 < len(st.segs); i++ {
		next, ok := r.peekHeader(st.segs[i+1])
		if !ok {
			break
		}
		seg := st.segs[i]
		s, hdr, ok := r.readSeal(seg)
		if !ok {
			break // read it whole: its damage is found and reported there
		}
		if next.FirstSeq > fl.fromSeq && (fl.opts.SkipBefore == 0 || s.MaxTime >= fl.opts.SkipBefore) {
			break
		}
		seg.hdr, seg.sealed, seg.skipped, seg.seal = hdr, true, true, s
		seg.count, seg.nextSeq, seg.end = s.Count, s.FirstSeq+s.Count, seg.size
		if fl.prev != nil && seg.hdr.FirstSeq != fl.prev.nextSeq {
			return &CorruptError{Segment: seg.num, Path: seg.path, Reason: fmt.Sprintf("segment starts at sequence %d but the previous segment ends before %d", seg.hdr.FirstSeq, fl.prev.nextSeq)}
		}
		fl.prev = seg
	}
	return fl.open(st.segs[i])
}

// open opens seg, checks its header and its chain to fl.prev, and makes it
// the segment being read.
func (fl *follower) open(seg *segment) error {
	f, err := fl.r.fs.Open(seg.path)
	if err != nil {
		return fmt.Errorf("wal: open segment %s: %w", seg.path, err)
	}
	buf := make([]byte, segHeaderSize)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return fmt.Errorf("wal: read segment header %s: %w", seg.path, err)
	}
	// A segment file gets its name only once its header is durable: a
	// header that does not verify is damage, not a write in progress.
	hdr, err := decodeSegHeader(buf[:n])
	switch {
	case errors.Is(err, errVersion):
		f.Close()
		return newerVersion(seg.path, hdr.Version, "read")
	case err != nil:
		f.Close()
		return corruptAt(seg, 0, err)
	case hdr.Number != seg.num:
		f.Close()
		return &CorruptError{Segment: seg.num, Path: seg.path, Reason: fmt.Sprintf("file is named for segment %d but its header says segment %d (a stale or misplaced file)", seg.num, hdr.Number)}
	}
	seg.hdr = hdr
	seg.end = segHeaderSize
	seg.nextSeq = hdr.FirstSeq
	seg.minTime, seg.maxTime = 1<<63-1, -1<<63
	seg.skipped, seg.sealed, seg.count, seg.events, seg.hasLast = false, false, 0, 0, false
	if fl.prev != nil {
		if err := checkChain(fl.prev, seg); err != nil {
			f.Close()
			return err
		}
	}
	if fl.f != nil {
		fl.f.Close()
	}
	fl.seg, fl.f, fl.stuck = seg, f, 0
	return nil
}

// scan reads the current segment from where the last scan ended, yielding
// its records, and reports whether it got further.
func (fl *follower) scan() (bool, error) {
	size, err := fl.f.Size()
	if err != nil {
		return false, fmt.Errorf("wal: stat segment %s: %w", fl.seg.path, err)
	}
	seg := fl.seg
	before := seg.end
	seg.size = size
	if size-seg.end >= SectorSize {
		// Nothing new (zeros filled ahead, or after a seal not yet cut):
		// one sector tells, without reading the segment's tail.
		if n, err := fl.f.ReadAt(fl.sector[:], seg.end); n == SectorSize && allZero(fl.sector[:]) {
			seg.bad = &badSpot{seg.end, damage("zero sector where the next batch belongs (not written yet)")}
			return false, nil
		} else if err != nil && !errors.Is(err, io.EOF) {
			return false, fmt.Errorf("wal: read %s at %d: %w", seg.path, seg.end, err)
		}
	}
	if err := scanOn(fl.f, seg, fl.fromSeq, fl.visit); err != nil {
		return false, err
	}
	return seg.end > before, nil
}

// poll reads what was written since the last poll. It reports whether it
// made progress (read records or moved to the next segment).
func (fl *follower) poll() (bool, error) {
	moved, err := fl.scan()
	if err != nil {
		return false, err
	}
	seg := fl.seg
	if seg.bad == nil && !seg.sealed {
		fl.stuck = 0
		return moved, nil // everything written so far was read
	}
	next, err := fl.nextSegment()
	if err != nil {
		return false, err
	}
	if next != nil {
		// Another segment follows: this one is complete (its seal was
		// durable, and its zeros filled ahead cut, before the next was
		// created). Read it again from where the scan stopped, now.
		if _, err := fl.scan(); err != nil {
			return false, err
		}
		switch {
		case next.num != seg.num+1:
			return false, &CorruptError{Segment: seg.num + 1, Path: fl.r.dir, Reason: "segment file is missing between two existing segments"}
		case !seg.sealed && seg.bad != nil:
			return false, corruptAt(seg, seg.bad.off, fmt.Errorf("%w; another segment follows, so this is not a write in progress", seg.bad.err))
		case !seg.sealed:
			return false, &CorruptError{Segment: seg.num, Path: seg.path, Offset: seg.end, Reason: "segment is followed by another but ends without a seal (data is missing after this offset)"}
		case seg.size > seg.end:
			return false, &CorruptError{Segment: seg.num, Path: seg.path, Offset: seg.end, Reason: fmt.Sprintf("%d bytes after the segment's seal, and another segment follows", seg.size-seg.end)}
		}
		fl.prev = seg
		return true, fl.open(next)
	}
	if seg.sealed {
		fl.stuck = 0
		return moved, nil // a sealed last segment: wait for the next one
	}
	// The last segment stops at a batch that does not verify: a write in
	// progress, zeros filled ahead, a torn tail or damage.
	x := seg.bad.off
	if fl.stuck != x {
		fl.stuck, fl.lastJudge = x, time.Now()
		return moved, nil
	}
	if time.Since(fl.lastJudge) < max(judgeEvery, fl.opts.Poll) {
		return moved, nil
	}
	fl.lastJudge = time.Now()
	return fl.judge()
}

// judge decides, for the last segment stopped at seg.bad, whether the bad
// batch can still be a write in progress (rereadTail: only once an intact
// batch lies after it). It reads on when the batch has been written
// meanwhile.
func (fl *follower) judge() (bool, error) {
	seg := fl.seg
	x := seg.bad.off
	later, err := rereadTail(fl.f, seg, fl.fromSeq, fl.visit)
	if isDamage(err) {
		return false, corruptAt(seg, x, fmt.Errorf("%w; a later batch was written after it, so this is not a write in progress", err))
	}
	if err != nil || !later {
		return false, err
	}
	// Read on past x, or a torn tail that no write came back to: opening
	// the log cuts it.
	return seg.end > x, nil
}

// nextSegment returns the first segment after the current one, if its
// file exists.
func (fl *follower) nextSegment() (*segment, error) {
	st, err := listDir(fl.r.fs, fl.r.dir, nil)
	var gap *CorruptError
	if err != nil && (st == nil || !errors.As(err, &gap)) {
		return nil, err
	}
	if st == nil {
		return nil, nil
	}
	for _, s := range st.segs {
		if s.num > fl.seg.num {
			return s, nil
		}
	}
	if gap != nil && gap.Segment > fl.seg.num {
		// The segments after the gap were dropped from the listing.
		return &segment{num: gap.Segment + 1, path: gap.Path}, nil
	}
	return nil, nil
}
