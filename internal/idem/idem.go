// Package idem is the idempotency window of the audit Sink: it remembers
// the outcome of the last N writes that carried an idempotency key, so that
// a write repeating a key is answered with the first write's result instead
// of writing the event again.
//
// A key is in one of two states. While its first write is in flight, later
// writers of the same key wait for its outcome. Once it completed, it either
// succeeded (the key then answers every later writer with its result until
// it falls out of the window) or failed (the key is forgotten, and the next
// writer writes).
//
// The window holds at most N completed keys, evicted oldest first; keys in
// flight are not counted and never evicted. A Window is safe for
// concurrent use.
package idem

import (
	"context"
	"sync"
)

// Window remembers the results of the last N completed keys, of type R.
type Window[R any] struct {
	size int

	mu      sync.Mutex
	entries map[string]*entry[R]
	order   []string // completed keys, oldest first: a ring of size entries
	head    int      // index in order of the oldest completed key
	n       int      // completed keys in order
	closed  bool     // Close began: writes run on their caller's goroutine
	bg      sync.WaitGroup
}

// entry is one key's write: in flight until done is closed.
type entry[R any] struct {
	key    string
	done   chan struct{}
	result R
	err    error // the write's error (nil: result holds its result)
}

// New returns a window remembering the last size completed keys (size > 0).
func New[R any](size int) *Window[R] {
	return &Window[R]{size: size, entries: make(map[string]*entry[R])}
}

// Do writes once per key. If a write of key succeeded and is still in the
// window, Do returns its result without calling write. If one is in flight,
// Do waits for it and returns its result, or, if it failed, tries again. Else
// Do calls write, and remembers its result if it returns no error.
//
// Once write was called it runs to its end even if ctx ends first (its
// context is ctx without cancellation): when ctx can end, it runs on a
// goroutine of its own, and Do returns ctx's error when ctx ends first, so
// that a later Do of key learns write's outcome. If ctx has ended before
// write was called, Do returns ctx's error and write is not called.
func (w *Window[R]) Do(ctx context.Context, key string, write func(context.Context) (R, error)) (R, error) {
	for {
		e, first := w.begin(key)
		if !first {
			r, ok, err := e.wait(ctx)
			if err != nil || ok {
				return r, err
			}
			continue // it failed: write
		}
		if err := ctx.Err(); err != nil {
			var zero R
			w.finish(e, zero, err)
			return zero, err
		}
		if ctx.Done() == nil || !w.goAsync() {
			r, err := write(ctx)
			w.finish(e, r, err)
			return r, err
		}
		go func() {
			defer w.bg.Done()
			r, err := write(context.WithoutCancel(ctx))
			w.finish(e, r, err)
		}()
		r, ok, err := e.wait(ctx)
		if err == nil && !ok {
			err = e.err
		}
		return r, err
	}
}

// Close waits for the writes that outlived their caller's context. Writes
// that begin afterwards run on their caller's goroutine.
func (w *Window[R]) Close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.bg.Wait()
}

// goAsync reports whether a write may run on a goroutine of its own, and
// counts it for Close.
func (w *Window[R]) goAsync() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	w.bg.Add(1)
	return true
}

// begin claims key. If no write of key is remembered or in flight, it
// returns a new entry and first = true: the caller writes and then calls
// finish. Otherwise it returns the existing entry, to wait on.
func (w *Window[R]) begin(key string) (e *entry[R], first bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e, ok := w.entries[key]; ok {
		return e, false
	}
	e = &entry[R]{key: key, done: make(chan struct{})}
	w.entries[key] = e
	return e, true
}

// finish completes e, a first entry from begin, with the write's result
// and error. Without error, result is remembered and handed to every later
// writer of the key until the key is evicted; with one, the key is
// forgotten, so that the next begin of it is first again.
func (w *Window[R]) finish(e *entry[R], result R, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil {
		e.result = result
		w.remember(e.key)
	} else {
		e.err = err
		delete(w.entries, e.key)
	}
	close(e.done)
}

// remember appends key to the completed keys, evicting the oldest beyond
// the window's size. w.mu is held.
func (w *Window[R]) remember(key string) {
	if w.order == nil {
		w.order = make([]string, w.size)
	}
	if w.n == w.size {
		delete(w.entries, w.order[w.head])
		w.order[w.head] = key
		w.head = (w.head + 1) % w.size
		return
	}
	w.order[(w.head+w.n)%w.size] = key
	w.n++
}

// wait waits until e's write completed and returns its result, with ok =
// true if it succeeded. It returns ctx's error if ctx ends first.
func (e *entry[R]) wait(ctx context.Context) (result R, ok bool, err error) {
	select {
	case <-e.done:
		return e.result, e.err == nil, nil
	case <-ctx.Done():
		return result, false, ctx.Err()
	}
}
