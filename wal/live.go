package wal

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// A reader may read the last segment while a writer, in this or another
// process, appends to it. The crash rules (classifyTail) assume that
// nothing writes the file while it is read: applied to a live log they can
// take the zeros ahead of the records, or a batch half copied into the
// page cache, for damage, and then see the batch whole. Every reader
// therefore applies one rule at the first batch of the last segment that
// does not verify (offset x): x is judged only from bytes read after an
// intact batch header beyond x was read (batches are written in order, one
// write each, so the write at x had ended), or, with no such header, only
// when no process holds the log's lock (nothing writes it). Follow waits at
// x; the one-shot readers (Records, Between, Check) stop there and report
// it (settleTail). docs/wal-format.md, "Reading a live log", states it.

// rescan reads seg on from seg.end, where the last scan stopped, up to the
// file's current size, visiting the records of every batch that verifies.
func rescan(f vfs.File, seg *segment, fromSeq uint64, visit func(Record) error) error {
	size, err := f.Size()
	if err != nil {
		return fmt.Errorf("wal: stat segment %s: %w", seg.path, err)
	}
	seg.size = size
	return scanOn(f, seg, fromSeq, visit)
}

// rereadTail applies the rule to seg.bad, the first batch of the last
// segment that does not verify (offset x). When no intact batch header lies
// after x it returns later=false and reads nothing more: x may be a write in
// progress. Otherwise it reads x again (rescan: the write at x had ended)
// and returns a damage (isDamage) saying why x is corruption, or nil when x
// now verifies (the scan went on past it) or is a torn write (a crash in a
// weaker sync mode can leave whole batches after a torn one). Any other
// error is a failure to read, or visit's.
func rereadTail(f vfs.File, seg *segment, fromSeq uint64, visit func(Record) error) (later bool, err error) {
	x := seg.bad.off
	if later, err = intactAfter(f, seg, x); err != nil || !later {
		return false, err
	}
	if err := rescan(f, seg, fromSeq, visit); err != nil {
		return true, err
	}
	if seg.bad == nil || seg.bad.off != x {
		return true, nil
	}
	if torn, err := classifyTail(f, seg); !torn {
		return true, err
	}
	return true, nil
}

// intactAfter reports whether an intact batch header of seg lies after
// offset x in f as it is now.
func intactAfter(f vfs.File, seg *segment, x int64) (bool, error) {
	end, err := nonZeroEndNow(f, seg, x+SectorSize)
	if err != nil || end <= x+SectorSize {
		return false, err
	}
	cr := &chunkReader{f: f, size: end}
	for p := x + SectorSize; p+batchHeaderSize <= end; p += SectorSize {
		head, err := cr.at(p, batchHeaderSize)
		if err != nil {
			return false, err
		}
		if _, err := parseBatchHeader(head, seg.hdr.Salt, p); err == nil {
			return true, nil
		}
	}
	return false, nil
}

// nonZeroEndNow is NonZeroEnd from offset from to the end of f as it is
// now. The writer cuts the zeros after a seal while a reader may be
// reading them: when the file shrank under the read, it looks again.
func nonZeroEndNow(f vfs.File, seg *segment, from int64) (int64, error) {
	for {
		size, err := f.Size()
		if err != nil {
			return 0, fmt.Errorf("wal: stat segment %s: %w", seg.path, err)
		}
		end, err := NonZeroEnd(f, from, size)
		if !errors.Is(err, io.EOF) {
			return end, err
		}
		if now, serr := f.Size(); serr != nil || now >= size {
			return 0, err // not cut meanwhile: a real short read
		}
	}
}

// settleTail decides where a one-shot read of the last segment ends, once
// the scan stopped at seg.bad. It reads on past every spot that verifies
// when read again, and returns a *CorruptError only for a spot that the
// rule judges damage; otherwise seg.bad (if still set) is where the read
// ends: zeros written ahead, a torn tail, or, when live is true, bytes it
// did not judge because a process holds the log open for writing (a write
// in progress).
//
// Spots beyond the file's size when the scan began were written after the
// read reached the end of the segment; they are not chased with rereadTail
// (a writer faster than the reader would keep it reading), only judged
// when nothing writes the log.
func (r *Reader) settleTail(f vfs.File, seg *segment, fromSeq uint64, visit func(Record) error) (live bool, err error) {
	bound := seg.size
	for seg.bad != nil {
		x := seg.bad.off
		if x < bound {
			later, err := rereadTail(f, seg, fromSeq, visit)
			switch {
			case isDamage(err):
				return false, corruptAt(seg, x, fmt.Errorf("%w; it was read again after a later batch was written, so it is not a write in progress", err))
			case err != nil:
				return false, err
			case later && (seg.bad == nil || seg.bad.off != x):
				continue // x verifies now: judge where the scan stopped next
			case later:
				return false, nil // a torn write that later batches survived
			}
		}
		// No intact batch lies after x: x is the end of what was
		// written, and may be a write in progress.
		if torn, err := classifyTail(f, seg); torn || !isDamage(err) {
			return false, err
		}
		if live, err := r.live(); err != nil || live {
			return live, err
		}
		// Nothing writes the log now. Read x again, in case a writer
		// finished it and closed the log since the scan read it.
		if err := rescan(f, seg, fromSeq, visit); err != nil {
			return false, err
		}
		if seg.bad == nil || seg.bad.off != x {
			continue
		}
		torn, bad := classifyTail(f, seg)
		if torn || !isDamage(bad) {
			return false, bad
		}
		// A writer that opened the log meanwhile may be writing at x.
		if live, err := r.live(); err != nil || live {
			return live, err
		}
		return false, corruptAt(seg, x, bad)
	}
	return false, nil
}

// live reports whether a process holds the log's lock, so that its last
// segment may be being written. A filesystem that cannot tell
// (vfs.LockProber) counts as not live: its reader applies the crash rules,
// as to a copy of a log or a view of one that nothing writes.
func (r *Reader) live() (bool, error) {
	held, _, err := vfs.LockHeld(r.fs, filepath.Join(r.dir, LockName))
	if err != nil {
		return false, fmt.Errorf("wal: is %s open for writing: %w", r.dir, err)
	}
	return held, nil
}
