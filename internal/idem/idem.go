// Package idem is the idempotency window of the audit Sink: it remembers
// the outcome of the last N writes that carried an idempotency key, so that
// a write repeating a key is answered with the first write's result instead
// of writing the event again.
//
// A key is in one of two states. While its first write is in flight, later
// writers of the same key wait for it (Wait). Once it completed, Done either
// records its result (the key then answers every later writer until it
// falls out of the window) or, when the write certainly did not reach the
// log, forgets the key so that the next writer writes it.
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
	entries map[string]*Entry[R]
	order   []string // completed keys, oldest first: a ring of size entries
	head    int      // index in order of the oldest completed key
	n       int      // completed keys in order
}

// Entry is one key's write: in flight until Done closes done.
type Entry[R any] struct {
	key    string
	done   chan struct{}
	result R
	err    error // the write's error (nil: result holds its result)
}

// New returns a window remembering the last size completed keys (size > 0).
func New[R any](size int) *Window[R] {
	return &Window[R]{size: size, entries: make(map[string]*Entry[R])}
}

// Begin claims key. If no write of key is remembered or in flight, it
// returns a new entry and first = true: the caller must write and then call
// Done. Otherwise it returns the existing entry and first = false: the
// caller calls Wait on it.
func (w *Window[R]) Begin(key string) (e *Entry[R], first bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e, ok := w.entries[key]; ok {
		return e, false
	}
	e = &Entry[R]{key: key, done: make(chan struct{})}
	w.entries[key] = e
	return e, true
}

// Done completes e, a first entry from Begin, with the write's result and
// error. Without error, result is remembered and handed to every later
// writer of the key until the key is evicted; with one, the key is
// forgotten, so that the next Begin of it is first again, and waiting
// writers get ok = false from Wait.
func (w *Window[R]) Done(e *Entry[R], result R, err error) {
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

// Wait waits until e's write completed and returns its result, with ok =
// true if the write reached the log and false if it did not (then call
// Begin again). It returns ctx's error if ctx ends first.
func (e *Entry[R]) Wait(ctx context.Context) (result R, ok bool, err error) {
	select {
	case <-e.done:
		return e.result, e.err == nil, nil
	case <-ctx.Done():
		return result, false, ctx.Err()
	}
}

// Err returns the error of e's write, once Wait returned ok = false
// without error.
func (e *Entry[R]) Err() error { return e.err }

// Len returns the number of remembered and in-flight keys.
func (w *Window[R]) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.entries)
}
