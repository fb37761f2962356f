package wal

import (
	"context"
	"maps"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/internal/testutil"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// TestPreallocFillsAheadAndCloseCuts: the active segment is filled with
// zeros ahead of its records (so batches overwrite allocated blocks), a
// closed log's segments end with their last record, and the log reads back.
func TestPreallocFillsAheadAndCloseCuts(t *testing.T) {
	fsys := vfs.NewCrashFS()
	opts := Options{SegmentSize: 32 << 10, Prealloc: 8 << 10}
	w, err := Open(fsys, testDir, opts)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	acked := map[uint64][]byte{}
	ahead := false
	for i := 0; i < 400; i++ {
		p := testPayload(0, i, rng)
		seq, err := w.Append(context.Background(), RecordEvent, int64(i), p)
		if err != nil {
			t.Fatal(err)
		}
		acked[seq] = p
		files := segmentFiles(t, fsys)
		last := files[len(files)-1]
		ahead = ahead || testutil.FileSize(t, fsys, last) > dataEnd(t, fsys, last)
	}
	if !ahead {
		t.Fatal("the active segment was never filled ahead of its records")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files := segmentFiles(t, fsys)
	if len(files) < 2 {
		t.Fatalf("want a rotation, got %d segment(s)", len(files))
	}
	for _, name := range files {
		if size, end := testutil.FileSize(t, fsys, name), dataEnd(t, fsys, name); size != end {
			t.Fatalf("closed log: %s holds %d bytes, its records end at %d", name, size, end)
		}
	}
	checkRecovered(t, 7, fsys, acked, opts)
}

// TestPreallocTailAfterCrash: a crash leaves the zeros filled ahead; Check
// does not call them a torn tail, Open cuts them, nothing acknowledged is
// lost, and appends continue.
func TestPreallocTailAfterCrash(t *testing.T) {
	fsys := vfs.NewCrashFS()
	opts := Options{SegmentSize: 1 << 20, Prealloc: 64 << 10}
	w, err := Open(fsys, testDir, opts)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(8, 8))
	acked := map[uint64][]byte{}
	for i := 0; i < 50; i++ {
		p := testPayload(0, i, rng)
		seq, err := w.Append(context.Background(), RecordEvent, int64(i), p)
		if err != nil {
			t.Fatal(err)
		}
		acked[seq] = p
	}
	name := segmentFiles(t, fsys)[0]
	// Wait for the fill in flight to be durable, so that the crash keeps it.
	deadline := time.Now().Add(10 * time.Second)
	var crashed *vfs.CrashFS
	for crashed == nil || testutil.FileSize(t, crashed, name) <= dataEnd(t, crashed, name) {
		if time.Now().After(deadline) {
			t.Fatal("no zeros ahead of the records survived the crash")
		}
		time.Sleep(time.Millisecond)
		crashed = fsys.CrashClone(vfs.CrashOptions{})
	}
	w.Close()
	rep, err := Check(context.Background(), crashed, testDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.TornTail != nil {
		t.Fatalf("zeros filled ahead reported as a torn tail: %+v", rep.TornTail)
	}
	checkRecovered(t, 8, crashed, acked, opts)
}

// TestSealCutLost: power is lost after a seal was written but before the
// cut of the zeros behind it was durable. The sealed segment is then the
// last one, with zeros after its seal; Open must cut them, or the segment
// would read as damaged once a later segment follows it.
func TestSealCutLost(t *testing.T) {
	fsys := vfs.NewCrashFS()
	opts := Options{SegmentSize: 8 << 10, Prealloc: 8 << 10}
	type shot struct {
		fs    *vfs.CrashFS
		acked map[uint64][]byte
	}
	var (
		mu    sync.Mutex
		shots []shot
		acked = map[uint64][]byte{}
	)
	fsys.SetHook(func(op vfs.Op) {
		if op.Kind == vfs.OpTruncate && strings.Contains(op.Name, ".wal") {
			// Keep every unsynced sector (the seal) but not the cut,
			// which is about to be applied.
			mu.Lock()
			shots = append(shots, shot{fsys.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1}), maps.Clone(acked)})
			mu.Unlock()
		}
	})
	w, err := Open(fsys, testDir, opts)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for i := 0; i < 200; i++ {
		p := testPayload(0, i, rng)
		seq, err := w.Append(context.Background(), RecordEvent, int64(i), p)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		acked[seq] = p
		mu.Unlock()
	}
	w.Close()
	fsys.SetHook(nil)
	// The first seal that had zeros behind it to cut.
	var clone *vfs.CrashFS
	var at map[uint64][]byte
	for _, s := range shots {
		files := segmentFiles(t, s.fs)
		last := files[len(files)-1]
		if testutil.FileSize(t, s.fs, last) > dataEnd(t, s.fs, last) {
			clone, at = s.fs, s.acked
			break
		}
	}
	if clone == nil {
		t.Fatalf("none of %d seals had zeros behind it to cut", len(shots))
	}
	// Recover, append (after the seal, or in a new segment when the
	// sealed one is full), and recover again.
	w, err = Open(clone, testDir, opts)
	if err != nil {
		t.Fatalf("open after the lost cut: %v", err)
	}
	for i := 0; i < 20; i++ {
		p := testPayload(1, i, rng)
		seq, err := w.Append(context.Background(), RecordEvent, int64(1000+i), p)
		if err != nil {
			t.Fatal(err)
		}
		at[seq] = p
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	checkRecovered(t, 9, clone, at, opts)
}

// TestCloseCutsFillInFlight: Close cuts the zeros of a fill that was still
// in flight when it was called (held back here by a slow disk) from the
// segment it seals.
func TestCloseCutsFillInFlight(t *testing.T) {
	crash := vfs.NewCrashFS()
	fsys := vfs.NewFaultFS(crash)
	opts := Options{SegmentSize: 1 << 20, Prealloc: 1024}
	w, err := Open(fsys, testDir, opts)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(11, 3))
	acked := map[uint64][]byte{}
	for i := range 3 {
		if i == 2 {
			// The last commit asks for a fill that is still being
			// written when Close is called.
			fsys.SetLatency(20 * time.Millisecond)
		}
		p := testPayload(0, i, rng)
		seq, err := w.Append(context.Background(), RecordEvent, int64(i), p)
		if err != nil {
			t.Fatal(err)
		}
		acked[seq] = p
	}
	w.Close()
	fsys.SetLatency(0)
	for _, name := range segmentFiles(t, crash) {
		if size, end := testutil.FileSize(t, crash, name), dataEnd(t, crash, name); size != end {
			t.Fatalf("after Close %s holds %d bytes, its records end at %d", name, size, end)
		}
	}
	checkRecovered(t, 11, crash, acked, opts)
}

// TestPartialFillThenSeal: a full disk stops a zero fill part-way; once
// space is back, the segment is sealed and a new one follows. The sealed
// segment must end with its seal (the partial zeros cut), or the next Open
// would read them as damage in a segment that is no longer the last.
func TestPartialFillThenSeal(t *testing.T) {
	crash := vfs.NewCrashFS()
	fsys := vfs.NewFaultFS(crash)
	opts := Options{SegmentSize: 32 << 10, Prealloc: 4096}
	w, err := Open(fsys, testDir, opts)
	if err != nil {
		t.Fatal(err)
	}
	acked := map[uint64][]byte{}
	rng := rand.New(rand.NewPCG(12, 12))
	appendP := func(p []byte) {
		t.Helper()
		seq, err := w.Append(context.Background(), RecordEvent, 1, p)
		if err != nil {
			t.Fatal(err)
		}
		acked[seq] = p
	}
	for i := range 3 {
		appendP(testPayload(0, i, rng))
	}
	big := sizedPayload(0, 3, 8000, rng)
	// Room for the batch and 2,000 bytes of the fill that follows it.
	fsys.SetWriteBudget(batchSpan(recHeaderSize+len(big)) + 2000)
	appendP(big)
	// Wait until the fill has run into the full disk.
	for deadline := time.Now().Add(10 * time.Second); testutil.FileSize(t, crash, segmentFiles(t, crash)[0]) <= dataEnd(t, crash, segmentFiles(t, crash)[0]); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the fill wrote nothing before the disk was full")
		}
	}
	fsys.SetWriteBudget(-1)                 // space freed
	appendP(sizedPayload(0, 4, 30000, rng)) // rotates
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	first := segmentFiles(t, crash)[0]
	if size, end := testutil.FileSize(t, crash, first), dataEnd(t, crash, first); size != end {
		t.Fatalf("sealed segment %s holds %d bytes, its records end at %d", first, size, end)
	}
	w, err = Open(crash, testDir, opts)
	if err != nil {
		t.Fatalf("open after a partial fill: %v", err)
	}
	w.Close()
	checkRecovered(t, 12, crash, acked, opts)
}

// TestShortWriteIntoZeros: a full disk cuts a batch's write short inside
// its header, in zeros filled ahead, and power is lost before the failed
// write is undone. The header sector then holds part of a header and
// zeros: a write that never completed, not damage, so Open must recover
// (found by the DiskFull torture scenario, seed 3484514336430998696, which
// depends on timing and does not replay).
func TestShortWriteIntoZeros(t *testing.T) {
	for _, k := range []int64{1, 8, 20, batchHeaderSize - 1} {
		shortWriteIntoZeros(t, -1, k)
	}
}

// TestShortWriteAfterHeader: as TestShortWriteIntoZeros, with the write cut
// short after the batch header: in a record's header, its payload, between
// records or in the padding, in a one-sector and a four-sector batch (found
// by the DiskFull torture scenario, seed 2931935842362945523, at commit
// bcaf944: "batch padding is not zero; every sector of the batch was
// written, so this is damage"; it depends on timing and does not replay).
func TestShortWriteAfterHeader(t *testing.T) {
	for _, k := range []int64{48, 49, 60, 75, 76, 100, 170, 175, 176, 177, 200, 400, 512 - minShortTail} {
		shortWriteIntoZeros(t, 100, k) // batch of 176 bytes in one sector
	}
	for _, k := range []int64{48, 100, 511, 512, 600, 1023, 1024, 1500, 1575, 1576, 1577, 1600, 2048 - minShortTail} {
		shortWriteIntoZeros(t, 1500, k) // batch of 1,576 bytes in four sectors
	}
}

// shortWriteIntoZeros appends three records, waits for the zeros filled
// ahead, then lets only k bytes of the next batch (a payload of size bytes,
// or a random one for size < 0) reach the disk before it is full, and
// loses power just before the failed write is undone. Open must recover
// every acknowledged record.
func shortWriteIntoZeros(t *testing.T, size int, k int64) {
	t.Helper()
	crash := vfs.NewCrashFS()
	fsys := vfs.NewFaultFS(crash)
	opts := Options{SegmentSize: 64 << 10, Prealloc: 16 << 10}
	w, err := Open(fsys, testDir, opts)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(13, uint64(k)))
	acked := map[uint64][]byte{}
	for i := range 3 {
		p := testPayload(0, i, rng)
		seq, err := w.Append(context.Background(), RecordEvent, int64(i), p)
		if err != nil {
			t.Fatal(err)
		}
		acked[seq] = p
	}
	// Let the fill finish, so that the next batch lands in zeros.
	name := segmentFiles(t, crash)[0]
	for deadline := time.Now().Add(10 * time.Second); testutil.FileSize(t, crash, name) < 16<<10; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the fill did not run")
		}
	}
	var clone *vfs.CrashFS
	crash.SetHook(func(op vfs.Op) {
		if op.Kind == vfs.OpTruncate && clone == nil {
			// Power lost just before the undo: the short write's
			// sector reached the disk.
			clone = crash.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
		}
	})
	p := testPayload(0, 9, rng)
	if size >= 0 {
		p = sizedPayload(0, 9, size, rng)
	}
	fsys.SetWriteBudget(k)
	if _, err := w.Append(context.Background(), RecordEvent, 9, p); err == nil {
		t.Fatalf("size %d, k=%d: the append did not fail on the full disk", size, k)
	}
	crash.SetHook(nil)
	fsys.SetWriteBudget(-1)
	w.Close()
	if clone == nil {
		t.Fatalf("size %d, k=%d: the failed write was not undone", size, k)
	}
	checkRecovered(t, uint64(k), clone, acked, opts)
}
