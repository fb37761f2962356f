package wal

import (
	"context"
	"errors"
	"path"
	"strings"
	"sync"
	"testing"

	"github.com/willibrandon/mtlog-audit/internal/testutil"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// readCounter counts the bytes read from each file opened through it.
type readCounter struct {
	vfs.FS
	mu   sync.Mutex
	read map[string]int64
}

type countedFile struct {
	vfs.File
	c    *readCounter
	name string
}

func (c *readCounter) Open(name string) (vfs.File, error) {
	f, err := c.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return &countedFile{File: f, c: c, name: name}, nil
}

func (c *readCounter) OpenReadWrite(name string) (vfs.File, error) {
	f, err := c.FS.OpenReadWrite(name)
	if err != nil {
		return nil, err
	}
	return &countedFile{File: f, c: c, name: name}, nil
}

func (f *countedFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.c.mu.Lock()
	f.c.read[f.name] += int64(n)
	f.c.mu.Unlock()
	return n, err
}

// TestOpenReadsOnlySealsOfSealedSegments: Open reads a sealed segment's
// header sector and seal sector, not its batches, so that opening a large
// log costs the last segment's scan (issue 13: open time grows with the
// log).
func TestOpenReadsOnlySealsOfSealedSegments(t *testing.T) {
	base, acked := buildLogOpts(t, 60, Options{SegmentSize: 4096}, true)
	files := segmentFiles(t, base)
	if len(files) < 4 {
		t.Fatalf("want several segments, got %d", len(files))
	}
	c := &readCounter{FS: base, read: map[string]int64{}}
	w, err := Open(c, testDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := w.LastSeq(), uint64(len(acked)+len(files)); got != want {
		t.Fatalf("LastSeq %d, want %d (events and seals)", got, want)
	}
	w.Close()
	for _, name := range files[:len(files)-1] {
		if n := c.read[name]; n > 2*SectorSize {
			t.Errorf("Open read %d bytes of sealed segment %s, want at most its header and seal sectors (%d)", n, path.Base(name), 2*SectorSize)
		}
	}
}

// TestOpenSealedSegmentDamage: damage inside a sealed segment's batches is
// left as it is by Open and reported by every reader; damage to its header
// or seal, or a sealed segment cut short, fails Open with a *CorruptError
// naming the segment and offset, as a full scan finds it.
func TestOpenSealedSegmentDamage(t *testing.T) {
	base, _ := buildLogOpts(t, 60, Options{SegmentSize: 4096}, true)
	files := segmentFiles(t, base)
	name := files[1]
	size := int64(len(testutil.ReadFile(t, base, name)))
	flipAt := func(off int64) *vfs.CrashFS {
		c := base.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
		testutil.XorByte(t, c, name, off, 0x40)
		return c
	}
	openErr := func(fsys vfs.FS) *CorruptError {
		t.Helper()
		w, err := Open(fsys, testDir, Options{})
		if err == nil {
			w.Close()
			t.Fatal("Open succeeded")
		}
		var ce *CorruptError
		if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open: %v, want a *CorruptError", err)
		}
		return ce
	}

	// Inside the batches: Open succeeds without changing the segment, and
	// the log stays usable; every full read fails at the damaged batch.
	c := flipAt(SectorSize + batchHeaderSize + recHeaderSize + 3)
	before := testutil.ReadFile(t, c, name)
	w, err := Open(c, testDir, Options{})
	if err != nil {
		t.Fatalf("Open with damage inside a sealed segment's batches: %v", err)
	}
	if _, err := w.Append(context.Background(), RecordEvent, 1, []byte("after")); err != nil {
		t.Fatal(err)
	}
	var rerr error
	for _, err := range w.Reader().Records(context.Background(), 1) {
		if err != nil {
			rerr = err
			break
		}
	}
	w.Close()
	for _, err := range []error{rerr, func() error { _, err := Check(context.Background(), c, testDir, nil); return err }()} {
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Segment != 2 || ce.Offset != SectorSize {
			t.Fatalf("a full read: %v, want a *CorruptError in segment 2 at offset %d", err, SectorSize)
		}
	}
	if string(before) != string(testutil.ReadFile(t, c, name)) {
		t.Fatal("Open changed the damaged sealed segment")
	}

	// The seal's batch header and its record: the full scan names the
	// seal's offset.
	for _, off := range []int64{size - SectorSize + 5, size - SectorSize + batchHeaderSize + recHeaderSize + 1} {
		if ce := openErr(flipAt(off)); ce.Segment != 2 || ce.Offset != size-SectorSize {
			t.Fatalf("flip at %d of the seal: %v, want segment 2 offset %d", off, ce, size-SectorSize)
		}
	}
	// The header sector.
	if ce := openErr(flipAt(20)); ce.Segment != 2 || ce.Offset != 0 {
		t.Fatalf("flip in the header: %v, want segment 2 offset 0", ce)
	}
	// Cut short: the seal is lost, the records before it are intact.
	c = base.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
	mutate(t, c, name, func(f vfs.File, size int64) { f.Truncate(size - SectorSize) })
	if ce := openErr(c); ce.Segment != 2 || ce.Offset != size-SectorSize || !strings.Contains(ce.Reason, "without a seal") {
		t.Fatalf("segment cut short: %v, want segment 2 offset %d, ends without a seal", ce, size-SectorSize)
	}
	// Zeros after the seal (the cut of a preallocated tail was lost): the
	// last sector is not a seal.
	c = base.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
	mutate(t, c, name, func(f vfs.File, size int64) { f.WriteAt(make([]byte, SectorSize), size) })
	if ce := openErr(c); ce.Segment != 2 || ce.Offset != size {
		t.Fatalf("zeros after the seal: %v, want segment 2 offset %d", ce, size)
	}
}
