package peers

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// RefLoop is the yardstick: the least a durable group commit can do.
// Writers append their bytes to one shared buffer and wait; a single
// flusher goroutine takes the whole buffer, writes it with one pwrite,
// fdatasyncs the file, and only then releases every writer whose bytes were
// in it. No framing, checksums, sequence numbers or segment rotation.
type RefLoop struct {
	f *os.File

	mu      sync.Mutex
	work    *sync.Cond // signalled when buf gains bytes or on Close
	buf     []byte     // bytes of the open batch
	open    *refBatch  // the batch buf belongs to
	closing bool

	off    int64 // flusher only
	exited chan struct{}
}

// refBatch is one group commit; done is closed after its fdatasync.
type refBatch struct {
	done chan struct{}
	err  error
}

// OpenRefLoop creates the file "reference" in dir and starts the flusher.
func OpenRefLoop(dir string) (*RefLoop, error) {
	f, err := os.OpenFile(filepath.Join(dir, "reference"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("reference loop: %w", err)
	}
	// The file's directory entry must be durable too before anything
	// written to it can be acknowledged.
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("reference loop: %w", err)
	}
	r := &RefLoop{f: f, open: &refBatch{done: make(chan struct{})}, exited: make(chan struct{})}
	r.work = sync.NewCond(&r.mu)
	go r.flusher()
	return r, nil
}

// Append adds p to the open batch and returns after the batch's fdatasync.
func (r *RefLoop) Append(p []byte) error {
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		return fmt.Errorf("reference loop: closed")
	}
	r.buf = append(r.buf, p...)
	b := r.open
	r.work.Signal()
	r.mu.Unlock()
	<-b.done
	return b.err
}

func (r *RefLoop) flusher() {
	defer close(r.exited)
	var spare []byte
	for {
		r.mu.Lock()
		for len(r.buf) == 0 && !r.closing {
			r.work.Wait()
		}
		if len(r.buf) == 0 {
			r.mu.Unlock()
			return
		}
		data, b := r.buf, r.open
		r.buf, r.open = spare[:0], &refBatch{done: make(chan struct{})}
		r.mu.Unlock()

		_, err := r.f.WriteAt(data, r.off)
		if err == nil {
			r.off += int64(len(data))
			err = fdatasync(r.f)
		}
		if err != nil {
			b.err = fmt.Errorf("reference loop: %w", err)
		}
		close(b.done)
		spare = data
	}
}

// Close flushes the last batch, stops the flusher and closes the file.
func (r *RefLoop) Close() error {
	r.mu.Lock()
	r.closing = true
	r.work.Signal()
	r.mu.Unlock()
	<-r.exited
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("reference loop: %w", err)
	}
	return nil
}

// syncDir fsyncs a directory, making the entries created in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return serr
	}
	return cerr
}

// groupCommit turns a library's batch-append call into a group commit of
// concurrent callers, the way RefLoop does for raw bytes: callers queue their
// payload in the open batch and wait; one committer goroutine hands each
// whole batch to commit (which must make it durable) and then wakes its
// callers. It is this benchmark's code, not the library's.
type groupCommit struct {
	commit func(items [][]byte) error

	mu      sync.Mutex
	work    *sync.Cond
	open    *gcBatch
	closing bool
	exited  chan struct{}
}

type gcBatch struct {
	items [][]byte
	done  chan struct{}
	err   error
}

func newGroupCommit(commit func(items [][]byte) error) *groupCommit {
	g := &groupCommit{commit: commit, open: &gcBatch{done: make(chan struct{})}, exited: make(chan struct{})}
	g.work = sync.NewCond(&g.mu)
	go g.committer()
	return g
}

// Append queues p (not copied: it must not change until Append returns)
// and returns after its batch was committed.
func (g *groupCommit) Append(p []byte) error {
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		return fmt.Errorf("group commit: closed")
	}
	g.open.items = append(g.open.items, p)
	b := g.open
	g.work.Signal()
	g.mu.Unlock()
	<-b.done
	return b.err
}

func (g *groupCommit) committer() {
	defer close(g.exited)
	var spare [][]byte
	for {
		g.mu.Lock()
		for len(g.open.items) == 0 && !g.closing {
			g.work.Wait()
		}
		if len(g.open.items) == 0 {
			g.mu.Unlock()
			return
		}
		b := g.open
		g.open = &gcBatch{items: spare[:0], done: make(chan struct{})}
		g.mu.Unlock()
		b.err = g.commit(b.items)
		close(b.done)
		spare = b.items[:0] // callers read only b.err
	}
}

// Close commits what is queued and stops the committer.
func (g *groupCommit) Close() {
	g.mu.Lock()
	g.closing = true
	g.work.Signal()
	g.mu.Unlock()
	<-g.exited
}
