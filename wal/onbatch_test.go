package wal

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// TestOnBatch: Options.OnBatch sees every appended record exactly once,
// with its bytes, before the record is acknowledged, and times the
// fdatasync of SyncDurable commits (a sync that sleeps 2ms takes at least
// 2ms); the seal records of rotations are not counted.
func TestOnBatch(t *testing.T) {
	fsys := vfs.NewFaultFS(vfs.NewCrashFS())
	var mu sync.Mutex
	var got BatchStats
	var batches int
	minSync := time.Duration(1 << 62)
	opts := Options{SegmentSize: 8 << 10, OnBatch: func(b BatchStats) {
		mu.Lock()
		defer mu.Unlock()
		batches++
		got.Records += b.Records
		got.Bytes += b.Bytes
		if !b.Synced {
			t.Errorf("batch %d: Synced is false in SyncDurable mode", batches)
		}
		minSync = min(minSync, b.Sync)
	}}
	w, err := Open(fsys, testDir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fsys.SetLatency(2 * time.Millisecond)
	const writers, each, size = 8, 25, 100
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				seq, err := w.Append(context.Background(), RecordEvent, 1, make([]byte, size))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen := got.Records
				mu.Unlock()
				if seen == 0 {
					t.Errorf("record %d acknowledged before OnBatch saw it", seq)
				}
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if got.Records != writers*each || got.Bytes != writers*each*(recHeaderSize+size) {
		t.Fatalf("OnBatch saw %d records, %d bytes; want %d, %d", got.Records, got.Bytes, writers*each, writers*each*(recHeaderSize+size))
	}
	if w.LastSeq() <= uint64(writers*each) {
		t.Fatalf("the log did not rotate (last seq %d): the test needs seal records", w.LastSeq())
	}
	if minSync < 2*time.Millisecond {
		t.Fatalf("shortest timed fdatasync %v, but every sync slept 2ms", minSync)
	}
}
