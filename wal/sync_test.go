package wal

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// TestSyncAfterFailedFdatasync: in the weak modes, once an fdatasync failed,
// neither a later Sync nor the interval timer (armed by the write, firing
// after the failure) declares the unsynced record durable, even when the
// disk's fdatasync works again (the kernel may have dropped the pages that
// failed to sync).
func TestSyncAfterFailedFdatasync(t *testing.T) {
	for _, mode := range []SyncMode{SyncInterval, SyncNone} {
		t.Run(mode.String(), func(t *testing.T) {
			ffs := vfs.NewFaultFS(vfs.NewCrashFS())
			w, err := Open(ffs, testDir, Options{Sync: mode, SyncInterval: 40 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			p := testPayload(0, 0, rand.New(rand.NewPCG(2, 2)))
			if _, err := w.Append(context.Background(), RecordEvent, 1, p); err != nil {
				t.Fatal(err)
			}
			ffs.FailSyncs(syscall.EIO)
			if err := w.Sync(context.Background()); !errors.Is(err, syscall.EIO) {
				t.Fatalf("Sync with failing fdatasync: %v, want EIO", err)
			}
			ffs.FailSyncs(nil)
			time.Sleep(200 * time.Millisecond) // the interval timer fires
			if err := w.Sync(context.Background()); !errors.Is(err, ErrFailed) {
				t.Fatalf("Sync after the failure: %v, want ErrFailed", err)
			}
			if d := w.DurableSeq(); d != 0 {
				t.Fatalf("DurableSeq %d after a failed fdatasync, want 0", d)
			}
		})
	}
}

// TestSyncAnsweredUnderLoad: Sync returns, with everything written before
// it durable, while appenders keep the committer busy. The commit hook
// holds each batch until the next one has a record, so the committer is
// never idle: a Sync answered only when the log falls idle would never be.
func TestSyncAnsweredUnderLoad(t *testing.T) {
	for _, mode := range []SyncMode{SyncDurable, SyncInterval} {
		t.Run(mode.String(), func(t *testing.T) {
			var stop atomic.Bool
			var w *WAL
			opts := Options{Sync: mode, SyncInterval: time.Hour, MaxBatchRecords: 1}
			opts.OnCommit = func([]Committed) error {
				for !stop.Load() {
					w.mu.Lock()
					next := w.cur.count
					w.mu.Unlock()
					if next > 0 {
						break
					}
					time.Sleep(50 * time.Microsecond)
				}
				return nil
			}
			var err error
			w, err = Open(vfs.NewCrashFS(), testDir, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; !stop.Load(); i++ {
						if _, err := w.Append(context.Background(), RecordEvent, 1, payloadFor(g*1_000_000+i)); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			defer func() {
				stop.Store(true)
				wg.Wait()
			}()
			for range 20 {
				before := w.LastSeq()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := w.Sync(ctx)
				cancel()
				if err != nil {
					t.Fatalf("Sync under load: %v", err)
				}
				if d := w.DurableSeq(); d < before {
					t.Fatalf("DurableSeq %d after Sync, want ≥ %d", d, before)
				}
			}
		})
	}
}
