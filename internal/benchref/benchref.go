// Package benchref is the yardstick for the throughput benchmarks: the least
// a durable group commit can do. Writers copy into a shared buffer; one
// flusher writes it with one write, calls fdatasync and wakes every writer of
// that batch. No framing, no checksums, no rotation. Benchmarks run it in the
// same process and run as the code they measure, so that the ratio between
// the two is not distorted by a noisy disk.
package benchref

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Loop is a minimal group-commit loop over one file.
type Loop struct {
	f      *os.File
	mu     sync.Mutex
	cond   *sync.Cond
	buf    []byte
	done   chan struct{}
	err    error
	off    int64
	closed bool
	exited chan struct{}
}

// New starts a loop appending to f.
func New(f *os.File) *Loop {
	r := &Loop{f: f, done: make(chan struct{}), exited: make(chan struct{})}
	r.cond = sync.NewCond(&r.mu)
	go r.flush()
	return r
}

// Append copies p into the shared buffer and returns once it is durable.
func (r *Loop) Append(p []byte) error {
	r.mu.Lock()
	r.buf = append(r.buf, p...)
	done := r.done
	r.cond.Signal()
	r.mu.Unlock()
	<-done
	r.mu.Lock()
	err := r.err
	r.mu.Unlock()
	return err
}

func (r *Loop) flush() {
	defer close(r.exited)
	var spare []byte
	for {
		r.mu.Lock()
		for len(r.buf) == 0 && !r.closed {
			r.cond.Wait()
		}
		if len(r.buf) == 0 {
			r.mu.Unlock()
			return
		}
		buf, done := r.buf, r.done
		r.buf, r.done = spare[:0], make(chan struct{})
		r.mu.Unlock()
		_, err := r.f.WriteAt(buf, r.off)
		r.off += int64(len(buf))
		if err == nil {
			err = datasync(r.f)
		}
		if err != nil {
			r.mu.Lock()
			r.err = fmt.Errorf("reference loop: %w", err)
			r.mu.Unlock()
		}
		close(done)
		spare = buf
	}
}

// Close stops the flusher after the pending batch.
func (r *Loop) Close() {
	r.mu.Lock()
	r.closed = true
	r.cond.Signal()
	r.mu.Unlock()
	<-r.exited
}

// Writers is the concurrency levels every throughput benchmark runs.
var Writers = []int{1, 16, 64, 256}

// Run splits b.N calls of fn across n goroutines and reports events/s.
func Run(b *testing.B, n int, fn func() error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := fn(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// Bench runs the reference loop with n writers of size-byte records in dir.
func Bench(b *testing.B, dir string, n, size int) {
	f, err := os.Create(dir + "/reference")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	loop := New(f)
	defer loop.Close()
	p := make([]byte, size)
	Run(b, n, func() error { return loop.Append(p) })
}
