package replica

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// cursorAt is a cursor whose backends hold segments up to n; its slot
// spans several 512-byte sectors, so that a torn write can cut it.
func cursorAt(n uint64) *Cursor {
	c := &Cursor{Version: cursorVersion, Backends: map[string]BackendCursor{}}
	for _, name := range []string{"s3:bucket", "azure:container", "gs:bucket", "file:/mnt/copy"} {
		c.Backends[name] = BackendCursor{Segment: n, SegmentLast: 10 * n, SegmentKey: fmt.Sprintf("segments/%020d-%064x", n, n), Checkpoints: n,
			CheckpointKey: fmt.Sprintf("checkpoints/%020d-%064x", n, n)}
	}
	return c
}

// TestCursorWritesInPlace: after the file is made, every cursor write is
// one write and one fdatasync of the cursor file, never a create, rename
// or directory sync (metadata operations that queue with the log's own
// syncs on the same disk, which is what the shipper must not add to the
// acknowledgement path), and reads back the newest cursor.
func TestCursorWritesInPlace(t *testing.T) {
	fsys := vfs.NewCrashFS()
	if err := fsys.MkdirAll("/audit", 0o700); err != nil {
		t.Fatal(err)
	}
	w := &cursorWriter{fs: fsys, dir: "/audit"}
	if err := w.write(cursorAt(1)); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var ops []string
	fsys.SetHook(func(op vfs.Op) {
		mu.Lock()
		ops = append(ops, op.Kind.String()+" "+op.Name)
		mu.Unlock()
	})
	for n := uint64(2); n <= 20; n++ {
		if err := w.write(cursorAt(n)); err != nil {
			t.Fatal(err)
		}
		c, err := ReadCursor(fsys, "/audit")
		if err != nil || c.Backends["s3:bucket"] != cursorAt(n).Backends["s3:bucket"] {
			t.Fatalf("after writing cursor %d, read %+v, %v", n, c.Backends, err)
		}
	}
	fsys.SetHook(nil)
	for i, op := range ops {
		want := "write /audit/" + CursorFile
		if i%2 == 1 {
			want = "datasync /audit/" + CursorFile
		}
		if op != want {
			t.Fatalf("operation %d of the in-place writes is %q, want %q (all: %q)", i, op, want, ops)
		}
	}
	if len(ops) != 2*19 {
		t.Fatalf("%d operations for 19 writes: %q", len(ops), ops)
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	// A new writer (the next shipper) continues the generations.
	w = &cursorWriter{fs: fsys, dir: "/audit"}
	if err := w.write(cursorAt(21)); err != nil {
		t.Fatal(err)
	}
	if c, err := ReadCursor(fsys, "/audit"); err != nil || c.Backends["s3:bucket"].Segment != 21 {
		t.Fatalf("the next writer's cursor reads %+v, %v", c.Backends, err)
	}
	if w.gen != 21 {
		t.Fatalf("generation %d after 21 writes", w.gen)
	}
}

// TestCursorCrashLosesAtMostTheLastWrite: a power cut at any operation
// of a run of cursor writes, keeping a random part of what was not
// synced (torn sectors included), leaves a cursor that reads without
// error and is the last one written or the one before: a crash re-ships
// at most the object in flight.
func TestCursorCrashLosesAtMostTheLastWrite(t *testing.T) {
	for seed := range int64(300) {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		fsys := vfs.NewCrashFS()
		if err := fsys.MkdirAll("/audit", 0o700); err != nil {
			t.Fatal(err)
		}
		if err := fsys.SyncDir("/"); err != nil {
			t.Fatal(err)
		}
		w := &cursorWriter{fs: fsys, dir: "/audit"}
		cut := int64(rng.IntN(60))
		var state *vfs.CrashFS
		var done uint64 // the last cursor whose write returned before the cut
		var mu sync.Mutex
		fsys.SetHook(func(vfs.Op) {
			mu.Lock()
			defer mu.Unlock()
			if state == nil && fsys.Count() >= cut {
				state = fsys.CrashClone(vfs.CrashOptions{Seed: seed, SectorSize: 512, KeepSectorProb: 0.5, KeepDirOpProb: 0.5})
			}
		})
		for n := uint64(1); n <= 25; n++ {
			if err := w.write(cursorAt(n)); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			if state == nil {
				done = n
			}
			mu.Unlock()
		}
		fsys.SetHook(nil)
		if state == nil {
			continue
		}
		c, err := ReadCursor(state, "/audit")
		if err != nil {
			t.Fatalf("seed %d, cut at operation %d: %v", seed, cut, err)
		}
		got := c.Backends["s3:bucket"].Segment
		if len(c.Backends) > 0 && len(c.Backends) != 4 {
			t.Fatalf("seed %d: the cursor reads %d backends", seed, len(c.Backends))
		}
		if done == 0 {
			if got > 1 {
				t.Fatalf("seed %d: cut before the first write returned, cursor reads %d", seed, got)
			}
			continue
		}
		if got != done && got != done+1 {
			t.Fatalf("seed %d, cut at operation %d after write %d returned: the cursor reads %d, want %d or %d", seed, cut, done, got, done, done+1)
		}
	}
}

// TestCursorDamaged: a cursor file whose slots both fail their checksum,
// or that is not a cursor at all, reads as empty and damaged; a version 1
// cursor (bare JSON) reads, and the next write replaces it.
func TestCursorDamaged(t *testing.T) {
	dir := t.TempDir()
	fsys := vfs.OS()
	w := &cursorWriter{fs: fsys, dir: dir}
	if err := w.write(cursorAt(3)); err != nil {
		t.Fatal(err)
	}
	if err := w.write(cursorAt(4)); err != nil {
		t.Fatal(err)
	}
	w.close()
	path := filepath.Join(dir, CursorFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	slot := len(data) / 2
	// The newer slot damaged: the older one is read.
	newer := int(w.gen%2) * slot
	data[newer+slotHeader+3] ^= 1
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := ReadCursor(fsys, dir); err != nil || c.Backends["s3:bucket"].Segment != 3 {
		t.Fatalf("with the newer slot damaged: %+v, %v; want the older cursor (3)", c.Backends, err)
	}
	// Both damaged.
	data[slot-newer+slotHeader+3] ^= 1
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := ReadCursor(fsys, dir); !errors.Is(err, ErrCursorDamaged) || len(c.Backends) != 0 {
		t.Fatalf("with both slots damaged: %+v, %v; want an empty cursor and ErrCursorDamaged", c.Backends, err)
	}
	// A version 1 cursor.
	v1 := `{"version":1,"backends":{"s3:bucket":{"segment":7,"segment_last":70,"checkpoints":7}}}`
	if err := os.WriteFile(path, []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := ReadCursor(fsys, dir); err != nil || c.Backends["s3:bucket"].Segment != 7 {
		t.Fatalf("version 1 cursor: %+v, %v", c.Backends, err)
	}
	w = &cursorWriter{fs: fsys, dir: dir}
	if err := w.write(cursorAt(8)); err != nil {
		t.Fatal(err)
	}
	w.close()
	if data, _ := os.ReadFile(path); string(data[:8]) != cursorMagic {
		t.Fatalf("the version 1 cursor was not replaced by a slotted one: %q", data[:20])
	}
	if c, err := ReadCursor(fsys, dir); err != nil || c.Backends["s3:bucket"].Segment != 8 {
		t.Fatalf("after replacing a version 1 cursor: %+v, %v", c.Backends, err)
	}
}

// TestCursorOutgrowsItsSlots: a cursor larger than its slot (many
// backends) replaces the file with larger slots, and later writes go in
// place again.
func TestCursorOutgrowsItsSlots(t *testing.T) {
	dir := t.TempDir()
	w := &cursorWriter{fs: vfs.OS(), dir: dir}
	defer w.close()
	if err := w.write(cursorAt(1)); err != nil {
		t.Fatal(err)
	}
	if w.slot != minCursorSlot {
		t.Fatalf("slot %d, want %d", w.slot, minCursorSlot)
	}
	big := cursorAt(2)
	for i := range 200 {
		big.Backends[fmt.Sprintf("s3:bucket-%03d", i)] = BackendCursor{Segment: 2, SegmentKey: fmt.Sprintf("segments/%064d", i)}
	}
	if err := w.write(big); err != nil {
		t.Fatal(err)
	}
	if w.slot <= minCursorSlot {
		t.Fatalf("slot %d after a cursor of 200 backends", w.slot)
	}
	if err := w.write(big); err != nil {
		t.Fatal(err)
	}
	c, err := ReadCursor(vfs.OS(), dir)
	if err != nil || len(c.Backends) != 204 {
		t.Fatalf("read %d backends, %v", len(c.Backends), err)
	}
}
