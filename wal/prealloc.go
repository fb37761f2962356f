package wal

import (
	"fmt"
	"math"
	"path/filepath"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// extension is one background zero fill of [from, to) of a segment, ahead
// of the records. The committer never writes into [from, to) before
// written is closed, and the zeroFiller writes nothing after closing it.
type extension struct {
	path     string
	from, to int64
	ok       bool          // the zeros were written; set before written is closed
	written  chan struct{} // closed when the zeroFiller is done writing
}

// spare is the next segment's file, made ahead of its use by the
// zeroFiller: SegmentName(num)+tempSuffix with its first size bytes
// written as zeros and fdatasync'd. Starting segment num then costs a
// header write and an fdatasync of data only, instead of a new file's
// allocation in the committer's path (docs/wal-format.md, "Directory").
// The committer touches nothing of it before ready is closed; then f, the
// handle the zeroFiller created the file with, is the committer's.
type spare struct {
	num   uint64
	path  string
	size  int64
	f     vfs.File      // open when the file holds size durable zeros; set before ready is closed
	ready chan struct{} // closed when the zeroFiller is done with the file
}

// zeroFiller is the goroutine that writes the zeros the committer asks for
// (Options.Prealloc): one extension of the active segment and one spare
// next segment at most in flight, in the order asked. Only the committer
// calls offer and offerSpare; close is called once, after the committer
// has exited.
type zeroFiller struct {
	fs    vfs.FS
	req   chan any          // *extension or *spare
	done  chan struct{}     // closed when run returns
	fail  func(error) error // puts the log into its failed state
	zeros []byte
}

// startZeroFiller starts the goroutine.
func startZeroFiller(fsys vfs.FS, fail func(error) error) *zeroFiller {
	// Room for an extension and a spare, the most the committer has in
	// flight, so that offering one never waits for the other.
	z := &zeroFiller{fs: fsys, req: make(chan any, 2), done: make(chan struct{}), fail: fail}
	go z.run()
	return z
}

// offer hands e to the goroutine unless the queue is full, and reports
// whether it took it.
func (z *zeroFiller) offer(e *extension) bool {
	select {
	case z.req <- e:
		return true
	default:
		return false
	}
}

// offerSpare hands sp to the goroutine unless the queue is full, and
// reports whether it took it.
func (z *zeroFiller) offerSpare(sp *spare) bool {
	select {
	case z.req <- sp:
		return true
	default:
		return false
	}
}

// close stops the goroutine once it has written what it took, and waits
// for it.
func (z *zeroFiller) close() {
	close(z.req)
	<-z.done
}

// zeroBuf returns n zero bytes, reused between jobs.
func (z *zeroFiller) zeroBuf(n int) []byte {
	if len(z.zeros) < n {
		z.zeros = make([]byte, n)
	}
	return z.zeros[:n]
}

// run does the jobs the committer hands over.
func (z *zeroFiller) run() {
	defer close(z.done)
	for job := range z.req {
		switch j := job.(type) {
		case *extension:
			z.extend(j)
		case *spare:
			z.makeSpare(j)
		}
	}
}

// extend writes one extension's zeros. It uses a file descriptor of its
// own, so that a failed writeback is still reported to the committer's
// fdatasync (Linux reports it once per open file); its own fdatasync only
// gets the allocation durable early, and its errors are left to the
// committer's.
func (z *zeroFiller) extend(e *extension) {
	f, err := z.fs.OpenReadWrite(e.path)
	if err != nil {
		close(e.written)
		return
	}
	_, err = f.WriteAt(z.zeroBuf(int(e.to-e.from)), e.from)
	e.ok = err == nil
	close(e.written)
	if e.ok {
		if err := f.Datasync(); err != nil {
			// The kernel reports a failed writeback to one fdatasync
			// per open file; this one may have taken it from a later
			// process's view. Fail the log rather than go on.
			z.fail(fmt.Errorf("fdatasync the zeros filled ahead in %s: %w", e.path, err))
		}
	}
	_ = f.Close()
}

// makeSpare creates a spare segment file, makes its zeros durable and
// keeps it open for the committer, which writes the header through this
// handle rather than through the name (another file may have been put
// there since). A spare that cannot be made is removed and left unused:
// the committer then creates the segment as it would without one, and
// meets the same trouble (a full disk, a missing directory) on its own
// path, where it is reported. Nothing acknowledged depends on a spare, so
// a failed fdatasync here concerns only this file, which no one else has
// open.
func (z *zeroFiller) makeSpare(sp *spare) {
	defer close(sp.ready)
	f, err := z.fs.Create(sp.path)
	if err != nil {
		return
	}
	_, err = f.WriteAt(z.zeroBuf(int(sp.size)), 0)
	if err == nil {
		err = f.Datasync()
	}
	if err != nil {
		_ = f.Close()
		_ = z.fs.Remove(sp.path)
		return
	}
	sp.f = f
}

// askSpare asks the zeroFiller for the file of segment num, unless a spare
// is already asked for.
func (w *WAL) askSpare(num uint64) {
	if w.committer.filler == nil || w.committer.spare != nil {
		return
	}
	size := min(segHeaderSize+w.opts.Prealloc, w.opts.SegmentSize)
	sp := &spare{num: num, path: filepath.Join(w.dir, segmentName(num)+tempSuffix), size: size, ready: make(chan struct{})}
	if w.committer.filler.offerSpare(sp) {
		w.committer.spare = sp
	}
}

// takeSpare returns the spare made for segment num, waiting for it if it
// is still being made, or nil when there is none to use. A spare for
// another number is removed.
func (w *WAL) takeSpare(num uint64) *spare {
	sp := w.committer.spare
	if sp == nil {
		return nil
	}
	w.committer.spare = nil
	<-sp.ready
	if sp.f != nil && sp.num != num {
		discard(w.fs, sp)
		return nil
	}
	if sp.f == nil {
		return nil
	}
	return sp
}

// discard closes and removes a spare that will not be used.
func discard(fsys vfs.FS, sp *spare) {
	_ = sp.f.Close()
	_ = fsys.Remove(sp.path)
}

// dropSpare removes an unused spare once the zeroFiller has stopped, so
// that a closed log leaves no temporary file (Open would remove it).
func (w *WAL) dropSpare() {
	if sp := w.committer.spare; sp != nil {
		w.committer.spare = nil
		if sp.f != nil {
			discard(w.fs, sp)
		}
	}
}

// settleExt folds a finished zero fill into the active segment's alloc.
// If the next write, ending at need, reaches into a fill still in flight,
// it waits for the fill first.
func (w *WAL) settleExt(need int64) {
	s := w.committer.seg
	e := s.ext
	if e == nil {
		return
	}
	if need > e.from {
		<-e.written
	} else {
		select {
		case <-e.written:
		default:
			return
		}
	}
	if e.ok {
		s.alloc = max(s.alloc, e.to)
	}
	s.ext = nil
}

// extendIfLow asks the zeroFiller for the next stretch of zeros when less than
// half of Prealloc is left ahead of the active segment's end.
func (w *WAL) extendIfLow() {
	s := w.committer.seg
	if w.committer.filler == nil || s == nil || s.f == nil || s.sealed || s.ext != nil {
		return
	}
	limit := w.opts.SegmentSize
	if s.alloc >= limit || s.alloc-s.off >= w.opts.Prealloc/2 {
		return
	}
	e := &extension{path: s.path, from: s.alloc, to: min(s.alloc+w.opts.Prealloc, limit), written: make(chan struct{})}
	if w.committer.filler.offer(e) {
		s.ext = e
	}
}

// stopExtending waits for the zero fill in flight, if any, and stops
// the zeroFiller. The committer must have exited.
func (w *WAL) stopExtending() {
	if w.committer.filler == nil {
		return
	}
	if w.committer.seg != nil {
		w.settleExt(math.MaxInt64) // so that Close knows what to cut
	}
	w.committer.filler.close()
	w.committer.filler = nil
	w.dropSpare()
}
