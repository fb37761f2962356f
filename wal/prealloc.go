package wal

import (
	"fmt"
	"math"

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

// zeroFiller is the goroutine that writes the zeros the committer asks for
// (Options.Prealloc), one extension at a time. Only the committer calls
// offer; close is called once, after the committer has exited.
type zeroFiller struct {
	fs   vfs.FS
	req  chan *extension
	done chan struct{}     // closed when run returns
	fail func(error) error // puts the log into its failed state
}

// startZeroFiller starts the goroutine.
func startZeroFiller(fsys vfs.FS, fail func(error) error) *zeroFiller {
	z := &zeroFiller{fs: fsys, req: make(chan *extension, 1), done: make(chan struct{}), fail: fail}
	go z.run()
	return z
}

// offer hands e to the goroutine unless a fill is already queued, and
// reports whether it took it.
func (z *zeroFiller) offer(e *extension) bool {
	select {
	case z.req <- e:
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

// run writes the zeros the committer asks for. It uses a file
// descriptor of its own, so that a failed writeback is still reported to
// the committer's fdatasync (Linux reports it once per open file); its own
// fdatasync only gets the allocation durable early, and its errors are
// left to the committer's.
func (z *zeroFiller) run() {
	defer close(z.done)
	var zeros []byte
	for e := range z.req {
		f, err := z.fs.OpenReadWrite(e.path)
		if err != nil {
			close(e.written)
			continue
		}
		n := int(e.to - e.from)
		if len(zeros) < n {
			zeros = make([]byte, n)
		}
		_, err = f.WriteAt(zeros[:n], e.from)
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
}
