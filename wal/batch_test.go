package wal

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// TestBatchRecycling: batches are recycled once the committer and every
// appender are done with them. Under many appenders, some of which give up
// on their context while their batch is being committed, every Ack still
// carries its own record's sequence number and digest, no sequence number is
// acknowledged twice, and the log holds every acknowledged payload.
func TestBatchRecycling(t *testing.T) {
	crash := vfs.NewCrashFS()
	fsys := vfs.NewFaultFS(crash)
	fsys.SetLatency(200 * time.Microsecond) // keep batches in flight long enough to cancel into
	opts := Options{SegmentSize: 64 << 10, OnCommit: func(recs []Committed) error {
		for i := range recs {
			r := &recs[i]
			r.Digest[0], r.Digest[1] = byte(r.Seq), byte(r.Seq>>8)
			copy(r.Digest[2:], r.Payload)
		}
		return nil
	}}
	w, err := Open(fsys, testDir, opts)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[uint64][]byte{}
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 12))
			for i := range 150 {
				p := testPayload(g, i, rng)
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if i%3 == 0 {
					ctx, cancel = context.WithTimeout(context.Background(), time.Duration(i%7)*100*time.Microsecond)
				}
				a, err := w.AppendAck(ctx, RecordEvent, 1, p)
				cancel()
				if err != nil {
					if ctx.Err() == nil {
						t.Error(err)
						return
					}
					continue
				}
				want := [32]byte{byte(a.Seq), byte(a.Seq >> 8)}
				copy(want[2:], p)
				if a.Digest != want {
					t.Errorf("ack %d carries the digest of another record", a.Seq)
					return
				}
				mu.Lock()
				if _, dup := acked[a.Seq]; dup {
					t.Errorf("sequence %d acknowledged twice", a.Seq)
				}
				acked[a.Seq] = p
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if len(acked) < 1000 {
		t.Fatalf("only %d appends were acknowledged", len(acked))
	}
	checkRecovered(t, 10, crash, acked, opts)
}
