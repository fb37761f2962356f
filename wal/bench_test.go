package wal

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// benchWriters are the concurrency levels every throughput benchmark runs.
var benchWriters = []int{1, 16, 64, 256}

const benchEventSize = 256

// runWriters splits b.N appends across n goroutines and reports durable
// events per second.
func runWriters(b *testing.B, n int, appendFn func([]byte) error) {
	payload := make([]byte, benchEventSize)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
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
				if err := appendFn(payload); err != nil {
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

// BenchmarkAppend measures durable appends of 256-byte records with 1, 16,
// 64 and 256 concurrent writers, in the default SyncDurable mode on the
// operating system's filesystem (TMPDIR decides which disk).
func BenchmarkAppend(b *testing.B) {
	for _, n := range benchWriters {
		b.Run(fmt.Sprintf("writers=%d", n), func(b *testing.B) {
			w, err := Open(vfs.OS(), filepath.Join(b.TempDir(), "wal"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			ctx := context.Background()
			runWriters(b, n, func(p []byte) error {
				_, err := w.Append(ctx, RecordEvent, 1, p)
				return err
			})
		})
	}
}

// BenchmarkReferenceLoop is the yardstick: the least a durable group commit
// can do. Writers copy into a shared buffer; one flusher writes it, calls
// fdatasync and wakes every writer of that batch. No framing, no checksums,
// no rotation.
func BenchmarkReferenceLoop(b *testing.B) {
	for _, n := range benchWriters {
		b.Run(fmt.Sprintf("writers=%d", n), func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "ref"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			ref := newRefLoop(f)
			defer ref.close()
			runWriters(b, n, ref.append)
		})
	}
}

type refLoop struct {
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

func newRefLoop(f *os.File) *refLoop {
	r := &refLoop{f: f, done: make(chan struct{}), exited: make(chan struct{})}
	r.cond = sync.NewCond(&r.mu)
	go r.flush()
	return r
}

func (r *refLoop) append(p []byte) error {
	r.mu.Lock()
	r.buf = append(r.buf, p...)
	done := r.done
	r.cond.Signal()
	r.mu.Unlock()
	<-done
	return nil
}

func (r *refLoop) flush() {
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
		r.f.WriteAt(buf, r.off)
		r.off += int64(len(buf))
		syscall.Fdatasync(int(r.f.Fd()))
		close(done)
		spare = buf
	}
}

func (r *refLoop) close() {
	r.mu.Lock()
	r.closed = true
	r.cond.Signal()
	r.mu.Unlock()
	<-r.exited
}
