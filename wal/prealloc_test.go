package wal

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/vfs"
)

func fileSize(t *testing.T, fsys vfs.FS, name string) int64 {
	t.Helper()
	f, err := fsys.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

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
		ahead = ahead || fileSize(t, fsys, last) > dataEnd(t, fsys, last)
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
		if size, end := fileSize(t, fsys, name), dataEnd(t, fsys, name); size != end {
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
	for crashed == nil || fileSize(t, crashed, name) <= dataEnd(t, crashed, name) {
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
	var (
		mu    sync.Mutex
		clone *vfs.CrashFS
		acked = map[uint64][]byte{}
		at    map[uint64][]byte
	)
	fsys.SetHook(func(op vfs.Op) {
		if op.Kind == vfs.OpTruncate && strings.Contains(op.Name, ".wal") && clone == nil {
			// Keep every unsynced sector (the seal) but not the cut,
			// which is about to be applied.
			clone = fsys.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
			mu.Lock()
			at = make(map[uint64][]byte, len(acked))
			for k, v := range acked {
				at[k] = v
			}
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
	if clone == nil {
		t.Fatal("no segment was sealed")
	}
	files := segmentFiles(t, clone)
	last := files[len(files)-1]
	if size, end := fileSize(t, clone, last), dataEnd(t, clone, last); size <= end {
		t.Fatalf("the crash image does not hold zeros after the seal (%d bytes, records end at %d)", size, end)
	}
	// Recover, append into a new segment, and recover again.
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
// in flight when it was called (held back here by a slow disk), both for an
// empty segment and for one it seals.
func TestCloseCutsFillInFlight(t *testing.T) {
	for _, records := range []int{0, 3} {
		crash := vfs.NewCrashFS()
		fsys := vfs.NewFaultFS(crash)
		opts := Options{SegmentSize: 1 << 20, Prealloc: 1024}
		if records == 0 {
			// The first fill is asked for as Open creates the segment.
			fsys.SetLatency(20 * time.Millisecond)
		}
		w, err := Open(fsys, testDir, opts)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(11, uint64(records)))
		acked := map[uint64][]byte{}
		for i := range records {
			if i == records-1 {
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
			if size, end := fileSize(t, crash, name), dataEnd(t, crash, name); size != end {
				t.Fatalf("%d records: after Close %s holds %d bytes, its records end at %d", records, name, size, end)
			}
		}
		checkRecovered(t, 11, crash, acked, opts)
	}
}
