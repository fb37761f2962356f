package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/internal/testutil"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// followAll runs Follow in a goroutine and gathers what it yields.
type followAll struct {
	mu   sync.Mutex
	recs []Record
	err  error
	done chan struct{}
}

func startFollow(ctx context.Context, dir string, fromSeq uint64) *followAll {
	return startFollowOpts(ctx, dir, fromSeq, FollowOptions{Poll: time.Millisecond})
}

func startFollowOpts(ctx context.Context, dir string, fromSeq uint64, opts FollowOptions) *followAll {
	fa := &followAll{done: make(chan struct{})}
	go func() {
		defer close(fa.done)
		for rec, err := range NewReader(vfs.OS(), dir).Follow(ctx, fromSeq, opts) {
			fa.mu.Lock()
			if err != nil {
				fa.err = err
				fa.mu.Unlock()
				return
			}
			rec.Payload = bytes.Clone(rec.Payload)
			fa.recs = append(fa.recs, rec)
			fa.mu.Unlock()
		}
	}()
	return fa
}

func (fa *followAll) has(seq uint64) bool {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	return len(fa.recs) > 0 && fa.recs[len(fa.recs)-1].Seq >= seq || fa.err != nil
}

// TestFollowLive: Follow, reading a log that is being written from
// several goroutines and rotated often, yields every record exactly once,
// in order, with the payload written, and no error until canceled; in
// every sync mode, with and without zeros filled ahead.
func TestFollowLive(t *testing.T) {
	for _, opts := range []Options{
		{SegmentSize: 8 << 10},
		{SegmentSize: 8 << 10, Sync: SyncNone, Prealloc: -1},
		{SegmentSize: 16 << 10, Sync: SyncInterval, SyncInterval: time.Millisecond},
	} {
		t.Run(fmt.Sprintf("%v-prealloc%d", opts.Sync, opts.Prealloc), func(t *testing.T) {
			dir := t.TempDir()
			w, err := Open(vfs.OS(), dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			fa := startFollow(ctx, dir, 0)
			var mu sync.Mutex
			want := map[uint64][]byte{}
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 150 {
						p := payloadFor(g*1000 + i)
						seq, err := w.Append(ctx, RecordEvent, int64(i), p)
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						want[seq] = p
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			last := w.LastSeq()
			testutil.WaitFor(t, fmt.Sprintf("record %d", last), func() bool { return fa.has(last) })
			cancel()
			<-fa.done
			if !errors.Is(fa.err, context.Canceled) {
				t.Fatalf("Follow ended with %v", fa.err)
			}
			segs := 0
			for i, rec := range fa.recs {
				if rec.Seq != uint64(i+1) {
					t.Fatalf("record %d has seq %d", i, rec.Seq)
				}
				switch rec.Type {
				case RecordSeal:
					segs++
				case RecordEvent:
					if !bytes.Equal(rec.Payload, want[rec.Seq]) {
						t.Fatalf("seq %d: payload %q, want %q", rec.Seq, rec.Payload, want[rec.Seq])
					}
					delete(want, rec.Seq)
				}
			}
			if len(want) != 0 || segs < 2 {
				t.Errorf("%d acknowledged records not followed; %d seals", len(want), segs)
			}
		})
	}
}

// TestFollowFromSeqAndDamage: Follow starts at fromSeq (skipping whole
// sealed segments), waits at a sealed last segment until the next one
// exists, and reports damage in a segment that another follows.
func TestFollowFromSeqAndDamage(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(vfs.OS(), dir, Options{SegmentSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		if _, err := w.Append(t.Context(), RecordEvent, int64(i), payloadFor(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	last := w.LastSeq()
	ctx, cancel := context.WithCancel(t.Context())
	fa := startFollow(ctx, dir, 40)
	testutil.WaitFor(t, "the last record", func() bool { return fa.has(last) })
	// More records after a reopen: after the last segment's seal, or in a
	// new segment when that one is full.
	w, err = Open(vfs.OS(), dir, Options{SegmentSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := w.Append(t.Context(), RecordEvent, 1, []byte("after reopen"))
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the record after reopen", func() bool { return fa.has(seq) })
	cancel()
	<-fa.done
	if !errors.Is(fa.err, context.Canceled) || fa.recs[0].Seq != 40 || fa.recs[len(fa.recs)-1].Seq != seq {
		t.Fatalf("err %v, %d records from %d", fa.err, len(fa.recs), fa.recs[0].Seq)
	}
	w.Close()

	// Damage in the first segment, which others follow.
	names, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	data, err := os.ReadFile(names[0])
	if err != nil {
		t.Fatal(err)
	}
	data[SectorSize+SectorSize+60] ^= 1
	if err := os.WriteFile(names[0], data, 0o644); err != nil {
		t.Fatal(err)
	}
	fa = startFollow(t.Context(), dir, 0)
	<-fa.done
	var ce *CorruptError
	if !errors.As(fa.err, &ce) || ce.Segment != 1 || len(fa.recs) == 0 {
		t.Fatalf("damage: %v after %d records", fa.err, len(fa.recs))
	}
	// SkipBefore: the damaged first segment, whose events all lie before
	// it, is skipped by its seal, not read.
	ctx, cancel = context.WithCancel(t.Context())
	fa = startFollowOpts(ctx, dir, 0, FollowOptions{Poll: time.Millisecond, SkipBefore: 55})
	testutil.WaitFor(t, "the record after reopen", func() bool { return fa.has(seq) })
	cancel()
	<-fa.done
	if !errors.Is(fa.err, context.Canceled) || fa.recs[0].Segment == 1 {
		t.Fatalf("SkipBefore: %v, first record in segment %d", fa.err, fa.recs[0].Segment)
	}
	// Not a log.
	fa = startFollow(t.Context(), t.TempDir(), 0)
	<-fa.done
	if !errors.Is(fa.err, ErrNotWAL) {
		t.Fatalf("empty directory: %v", fa.err)
	}
}
