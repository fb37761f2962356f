package wal

import (
	"fmt"
	"math"
)

// extension is one background zero fill of [from, to) of a segment, ahead
// of the records. The committer never writes into [from, to) before
// written is closed, and extendLoop writes nothing after closing it.
type extension struct {
	path     string
	from, to int64
	ok       bool          // the zeros were written; set before written is closed
	written  chan struct{} // closed when extendLoop is done writing
}

// extendLoop writes the zeros the committer asks for. It uses a file
// descriptor of its own, so that a failed writeback is still reported to
// the committer's fdatasync (Linux reports it once per open file); its own
// fdatasync only gets the allocation durable early, and its errors are
// left to the committer's.
func (w *WAL) extendLoop(req <-chan *extension) {
	defer close(w.extDone)
	var zeros []byte
	for e := range req {
		f, err := w.fs.OpenReadWrite(e.path)
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
				w.fail(fmt.Errorf("fdatasync the zeros filled ahead in %s: %w", e.path, err))
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

// extendIfLow asks extendLoop for the next stretch of zeros when less than
// half of Prealloc is left ahead of the active segment's end.
func (w *WAL) extendIfLow() {
	s := w.committer.seg
	if w.committer.extReq == nil || s == nil || s.f == nil || s.sealed || s.ext != nil {
		return
	}
	limit := w.opts.SegmentSize
	if s.alloc >= limit || s.alloc-s.off >= w.opts.Prealloc/2 {
		return
	}
	e := &extension{path: s.path, from: s.alloc, to: min(s.alloc+w.opts.Prealloc, limit), written: make(chan struct{})}
	select {
	case w.committer.extReq <- e:
		s.ext = e
	default:
	}
}

// stopExtending waits for the zero fill in flight, if any, and stops
// extendLoop. The committer must have exited.
func (w *WAL) stopExtending() {
	if w.committer.extReq == nil {
		return
	}
	if w.committer.seg != nil {
		w.settleExt(math.MaxInt64) // so that Close knows what to cut
	}
	close(w.committer.extReq)
	<-w.extDone
	w.committer.extReq = nil
}
