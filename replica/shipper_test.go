package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/backends/fs"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// TestWaitHeldSeesSealTheTargetsMissed is the regression test of the
// ByzantineBackend torture failure of seed -3710304253121626114: after a
// reopen, WaitShipped returned while no backend held the sealed segment.
// The shipper had remembered the segment as unsealed (its seal was not
// durable yet when it first looked, and no notification followed), and
// WaitHeld measured what to wait for from that memory: it waited for
// nothing. Here the memory is made stale on purpose: the log's durable
// sequence number reads 0 the first time the shipper looks.
func TestWaitHeldSeesSealTheTargetsMissed(t *testing.T) {
	ctx := context.Background()
	dir, w := closedLog(t)
	last := w.LastSeq() - 1 // before the seal
	seal, ok, err := wal.ReadSeal(vfs.OS(), dir+"/"+wal.SegmentName(1), ^uint64(0))
	if err != nil || !ok {
		t.Fatalf("the closed log's segment has no seal: %v", err)
	}

	b, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var durable atomic.Uint64 // 0 at first: the seal is not durable yet
	sh, err := NewShipper(ShipperOptions{
		FS: vfs.OS(), Dir: dir, Backends: []backends.Backend{b}, Quorum: 1,
		Durable: durable.Load, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	sh.Start()
	defer sh.Close()
	// After its first check, the target looks for work and takes segment
	// 1 for the active, unsealed one.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		sh.mu.Lock()
		none := sh.noSeal[1]
		sh.mu.Unlock()
		if none {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the shipper never looked at segment 1")
		}
	}
	durable.Store(last + 1) // the seal is durable now; nobody says so
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := sh.WaitHeld(wctx, 1); err != nil {
		t.Fatalf("WaitHeld: %v", err)
	}
	infos, err := b.List(ctx, SegmentsPrefix)
	if err != nil {
		t.Fatal(err)
	}
	want := SegmentObject{Segment: 1, FirstSeq: seal.FirstSeq, LastSeq: seal.LastSeq}
	for _, info := range infos {
		if o, err := ParseSegmentKey(info.Key); err == nil && o.Segment == want.Segment && o.LastSeq == want.LastSeq {
			return
		}
	}
	t.Fatalf("WaitHeld returned, but the backend holds %v, not sealed segment 1 (records %d-%d)", infos, want.FirstSeq, want.LastSeq)
}

// TestWaitHeldSeesCheckpointTheTargetsMissed is the regression test of the
// NetworkPartition torture failure of seed -1983303817412837017: after
// healing, WaitShipped returned while every backend lacked the newest
// checkpoint. A checkpoint notified while the shipper was loading the
// checkpoints file was dropped (the load had read the file before it was
// stored), and WaitHeld counted the checkpoints to wait for in memory.
// Here the notification is left out on purpose.
func TestWaitHeldSeesCheckpointTheTargetsMissed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cpl, err := integrity.OpenCheckpointLog(vfs.OS(), filepath.Join(dir, integrity.CheckpointsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer cpl.Close()
	signed := func(size uint64) []byte {
		cp := integrity.Checkpoint{Origin: "test", Size: size, Time: time.Date(2026, 12, 2, 0, 0, int(size), 0, time.UTC)}
		return []byte(cp.Body() + "\n— test c2lnbmF0dXJl\n")
	}
	if err := cpl.Append(signed(1)); err != nil {
		t.Fatal(err)
	}
	b, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sh, err := NewShipper(ShipperOptions{
		FS: vfs.OS(), Dir: dir, Backends: []backends.Backend{b}, Quorum: 1,
		Durable: func() uint64 { return 0 }, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	sh.Start()
	defer sh.Close()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := sh.WaitHeld(wctx, 1); err != nil {
		t.Fatalf("WaitHeld: %v", err)
	}
	// The second checkpoint is stored, and its notification is lost.
	if err := cpl.Append(signed(2)); err != nil {
		t.Fatal(err)
	}
	if err := sh.WaitHeld(wctx, 1); err != nil {
		t.Fatalf("WaitHeld: %v", err)
	}
	infos, err := b.List(ctx, CheckpointsPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 {
		t.Fatalf("WaitHeld returned, but the backend holds %d checkpoints (%v), not the 2 stored", len(infos), infos)
	}
}

// TestFinish: Finish waits until the backend holds the closed log and
// leaves the cursor claiming the sealed segment. A
// shipper whose backend never answers is stopped by Finish's context and
// says what the backend lacks (ErrUnshipped), leaving the cursor claiming
// nothing.
func TestFinish(t *testing.T) {
	ctx := context.Background()
	dir, w := closedLog(t)
	b, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	open := func(b backends.Backend) *Shipper {
		sh, err := NewShipper(ShipperOptions{
			FS: vfs.OS(), Dir: dir, Backends: []backends.Backend{b}, Quorum: 1,
			Durable: w.DurableSeq, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		return sh
	}

	dead := open(hang{b})
	dead.Start()
	fctx, cancel := context.WithCancel(ctx)
	cancel() // the bound has passed
	err = dead.Finish(fctx, 1)
	var se *ShipError
	if !errors.Is(err, ErrUnshipped) || !errors.As(err, &se) || se.Backend != b.Name() || !strings.Contains(err.Error(), "record") {
		t.Fatalf("Finish on a backend that never answers: %v, want a *ShipError matching ErrUnshipped naming %s and what it lacks", err, b.Name())
	}
	if h := dead.Health(); !errors.Is(h.Backends[0].Err, ErrUnshipped) {
		t.Fatalf("health after Finish: %+v, want the shortfall", h.Backends[0])
	}

	sh := open(b)
	sh.Start()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := sh.WaitHeld(wctx, 1); err != nil {
		t.Fatalf("WaitHeld: %v", err)
	}
	if err := sh.Finish(wctx, 1); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	cur, err := ReadCursor(vfs.OS(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if bc := cur.Backends[b.Name()]; bc.Segment != 1 || bc.SegmentLast != w.DurableSeq() {
		t.Fatalf("cursor after Finish: %+v, want segment 1 through record %d", bc, w.DurableSeq())
	}
}

// hang is a backend whose every call waits until its context ends.
type hang struct{ backends.Backend }

func (h hang) Put(ctx context.Context, _ string, _ io.ReaderAt, _ int64, _ backends.PutOptions) error {
	<-ctx.Done()
	return ctx.Err()
}

func (h hang) List(ctx context.Context, _ string) ([]backends.ObjectInfo, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// closedLog writes five events to a new log and closes it, which seals
// segment 1.
func closedLog(t *testing.T) (string, *wal.WAL) {
	t.Helper()
	dir := t.TempDir()
	w, err := wal.Open(vfs.OS(), dir, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := w.Append(context.Background(), wal.RecordEvent, int64(i+1), fmt.Appendf(nil, "event %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil { // seals segment 1
		t.Fatal(err)
	}
	return dir, w
}
