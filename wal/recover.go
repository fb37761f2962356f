package wal

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// recover scans the directory, truncates a torn tail and opens the last
// segment for appending.
func (w *WAL) recover() error {
	st, err := listDir(w.fs, w.dir, w.opts.adopts)
	if err != nil {
		return err
	}
	for _, t := range st.tmps {
		if err := w.fs.Remove(t); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("wal: remove leftover %s: %w", t, err)
		}
	}
	if len(st.tmps) > 0 {
		if err := w.fs.SyncDir(w.dir); err != nil {
			return fmt.Errorf("wal: sync %s: %w", w.dir, err)
		}
	}
	w.firstSeq = 1
	if len(st.segs) == 0 {
		w.committer.nextSeq = 1
		return w.createSegment(1, 1, [32]byte{})
	}
	var prev *segment
	for i, seg := range st.segs {
		last := i == len(st.segs)-1
		// A sealed segment (every one but the last, and the last after a
		// clean Close) is checked by its header and its seal, not read in
		// full: damage inside its batches is found by every reader that
		// reaches it (see docs/architecture.md, "Open checks sealed
		// segments by their seals"). When the quick check fails, the full
		// scan below names the damage and its offset.
		ok, err := quickSealed(w.fs, seg)
		if err != nil {
			return err
		}
		if ok {
			if prev != nil {
				if err := checkChain(prev, seg); err != nil {
					return err
				}
			}
			prev = seg
			continue
		}
		f, err := loadSegment(w.fs, seg, -1, ^uint64(0), nil)
		if err != nil {
			return err
		}
		if seg.bad != nil {
			bad := seg.bad.err
			if last {
				var torn bool
				if torn, bad = classifyTail(f, seg); torn {
					bad = nil
					// Zeros filled ahead are not a torn tail (see Reader.tail).
					if nz, err := nonZeroEndNow(f, seg, seg.end); err == nil && nz > seg.end {
						w.torn = &TailInfo{Segment: seg.num, Offset: seg.end, Bytes: nz - seg.end}
					}
				}
			}
			if bad != nil {
				f.Close()
				return corruptAt(seg, seg.bad.off, bad)
			}
		}
		f.Close()
		if prev != nil {
			if err := checkChain(prev, seg); err != nil {
				return err
			}
		}
		prev = seg
	}
	last := prev
	w.firstSeq = st.segs[0].hdr.FirstSeq
	w.committer.nextSeq = last.nextSeq
	w.lastSeal = sealMark(last)
	f, err := w.fs.OpenReadWrite(last.path)
	if err != nil {
		return fmt.Errorf("wal: open %s for appending: %w", last.path, err)
	}
	// A torn, never-acknowledged tail, or zeros filled ahead of the
	// records (also after a seal whose cut was not yet durable): cut it
	// off durably, so that a later batch can never be read after stale
	// bytes and a sealed segment ends with its seal. Cut even when the
	// file seems to end there: under vfs.Mirror the size is the primary's,
	// and a crash can leave more zeros in another copy.
	if err := f.Truncate(last.end); err != nil {
		f.Close()
		return fmt.Errorf("wal: truncate torn tail of %s at %d: %w", last.path, last.end, err)
	}
	// What was read may have come from the page cache of a process that
	// was killed before its fdatasync: make it durable (or learn that it
	// cannot be) before a later batch vouches for it.
	if err := f.Datasync(); err != nil {
		f.Close()
		return fmt.Errorf("wal: sync %s on open: %w", last.path, err)
	}
	if last.sealed && !w.reopenable(last) {
		// The next append starts a new segment.
		f.Close()
		w.committer.seg = &active{num: last.num, sealed: true, last: last.last, off: last.end}
		w.segStart.Store(last.hdr.FirstSeq)
		return nil
	}
	w.committer.seg = &active{
		num: last.num, path: last.path, f: f, salt: last.hdr.Salt, version: last.hdr.Version, firstSeq: last.hdr.FirstSeq,
		off: last.end, synced: last.end, alloc: last.end, count: last.count,
		minTime: last.minTime, maxTime: last.maxTime, last: last.last,
		// A sealed segment reopened after a clean Close: the next batch
		// follows its seal (an interior seal from then on).
		sealed: last.sealed, reopened: last.sealed,
	}
	if !last.hasLast {
		w.committer.seg.last = last.hdr.PrevHash
	}
	w.segStart.Store(last.hdr.FirstSeq)
	return nil
}

// reopenable reports whether the sealed last segment seg is continued
// rather than followed by a new one: it is of the current format version
// and has room below Options.SegmentSize for a batch and another seal.
// Without this every restart would add a segment (docs/wal-format.md,
// "Seal record").
func (w *WAL) reopenable(seg *segment) bool {
	return seg.hdr.Version == FormatVersion && seg.end+2*SectorSize <= w.opts.SegmentSize
}

// quickSealed checks a segment that another follows by its header sector
// and its seal (its last sector, see readSealSector) alone, and on success
// fills in what a full scan would have learned about it. It reports false
// when the last sector is not a valid seal; the caller then scans the
// segment in full.
func quickSealed(fsys vfs.FS, seg *segment) (bool, error) {
	f, err := fsys.Open(seg.path)
	if err != nil {
		return false, fmt.Errorf("wal: open segment %s: %w", seg.path, err)
	}
	defer f.Close()
	s, hdr, _, frame, ok := readSealSector(f, seg)
	if !ok {
		return false, nil
	}
	seg.hdr = hdr
	seg.end = seg.size
	seg.sealed, seg.seal = true, s
	seg.count = s.Count
	seg.nextSeq = s.FirstSeq + s.Count
	seg.minTime, seg.maxTime = s.MinTime, s.MaxTime
	seg.last, seg.hasLast = frame, true
	seg.sealOff = seg.size - SectorSize
	return true, nil
}

// TornTail returns the torn tail that Open cut off the last segment: bytes
// of a write that was never acknowledged, left by a crash (nil if none;
// zeros filled ahead are not counted).
func (w *WAL) TornTail() *TailInfo { return w.torn }
