package wal

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/willibrandon/mtlog-audit/internal/testutil"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// landFS lets a write land between a reader's scan of a segment and what
// the reader does next: after the first read of more than a sector past
// the header of the file at path (the scan's read-ahead), it calls land
// once. It reports the log's lock as held while held is set.
type landFS struct {
	vfs.FS
	path string
	land func()
	once sync.Once
	held atomic.Bool
}

func (l *landFS) Open(name string) (vfs.File, error) {
	f, err := l.FS.Open(name)
	if err != nil || name != l.path {
		return f, err
	}
	return &landFile{File: f, fs: l}, nil
}

func (l *landFS) LockHeld(string) (bool, error) { return l.held.Load(), nil }

type landFile struct {
	vfs.File
	fs *landFS
}

func (f *landFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	if off >= SectorSize && len(p) > SectorSize {
		f.fs.once.Do(f.fs.land)
	}
	return n, err
}

// openLive opens a log on a CrashFS with n records, for a reader to read
// while it is written.
func openLive(t *testing.T, n int, opts Options) (*vfs.CrashFS, *WAL) {
	t.Helper()
	fsys := vfs.NewCrashFS()
	w, err := Open(fsys, "log", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	for i := range n {
		appendN(t, w, i)
	}
	return fsys, w
}

func appendN(t *testing.T, w *WAL, i int) {
	t.Helper()
	if _, err := w.Append(context.Background(), RecordEvent, int64(i), []byte{byte(i), 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
}

// TestReadWhileWriteLands pins the mechanism of false corruption on a live
// log: the scan of the last segment reads the zeros written ahead at
// offset X; a batch is written at X (and perhaps after it) before the
// reader classifies X, which then read the file again and called X damage
// ("every sector of the batch was written", or "the intact batch at ...
// proves the segment was durable"). Now X is judged only from bytes read
// after a later batch was seen, or when nothing holds the log open.
func TestReadWhileWriteLands(t *testing.T) {
	for _, tc := range []struct {
		name    string
		batches int  // batches that land after the scan
		release bool // the writer then lets go of the log (it died)
		want    uint64
		live    bool // the read ends at bytes it did not judge
	}{
		{name: "a batch and a later one", batches: 2, want: 5 + 2},
		{name: "one batch, writer holds the log", batches: 1, want: 5, live: true},
		{name: "one batch, writer gone", batches: 1, release: true, want: 5 + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys, w := openLive(t, 5, Options{})
			lfs := &landFS{FS: fsys, path: filepath.Join("log", segmentName(1))}
			lfs.held.Store(true)
			lfs.land = func() {
				for i := range tc.batches {
					appendN(t, w, 100+i)
				}
				if tc.release {
					lfs.held.Store(false)
				}
			}
			rep, err := Check(context.Background(), lfs, "log", nil)
			if err != nil {
				t.Fatalf("Check of a log written during the read: %v", err)
			}
			if rep.Records != tc.want {
				t.Errorf("Check read %d records, want %d", rep.Records, tc.want)
			}
			if live := rep.TornTail != nil && rep.TornTail.Live; live != tc.live {
				t.Errorf("TornTail = %+v, want Live %v", rep.TornTail, tc.live)
			}
			// Records and Between read the same way.
			lfs.once = sync.Once{}
			lfs.land = func() { appendN(t, w, 200) }
			n := 0
			for _, err := range NewReader(lfs, "log").Records(context.Background(), 0) {
				if err != nil {
					t.Fatalf("Records of a log written during the read: %v", err)
				}
				n++
			}
		})
	}
}

// TestLiveDamageStillFound: on a live log, damage to a batch that later
// batches follow is still reported (it is read again after they were
// seen), and so is damage to the last batch of a log nothing holds open.
func TestLiveDamageStillFound(t *testing.T) {
	fsys, _ := openLive(t, 6, Options{})
	path := filepath.Join("log", segmentName(1))
	lfs := &landFS{FS: fsys, path: path, land: func() {}}
	lfs.held.Store(true)
	flip := func(off int64) { t.Helper(); testutil.XorByte(t, fsys, path, off, 0x10) }
	// Batches are one sector each here; the third starts at 3*512.
	flip(3*SectorSize + 60)
	_, err := Check(context.Background(), lfs, "log", nil)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Offset != 3*SectorSize {
		t.Fatalf("damage inside a live log: got %v, want corruption at offset %d", err, 3*SectorSize)
	}
	flip(3*SectorSize + 60) // undo
	// The last batch (the sixth) damaged: not judged while the log is
	// held (it may be a write in progress), damage once it is not.
	flip(6*SectorSize + 60)
	rep, err := Check(context.Background(), lfs, "log", nil)
	if err != nil || rep.TornTail == nil || !rep.TornTail.Live || rep.Records != 5 {
		t.Fatalf("damaged last batch of a held log: %v, %+v; want 5 records and an unjudged live end", err, rep)
	}
	lfs.held.Store(false)
	if _, err := Check(context.Background(), lfs, "log", nil); !errors.As(err, &ce) || ce.Offset != 6*SectorSize {
		t.Fatalf("damaged last batch of a log nothing holds: got %v, want corruption at offset %d", err, 6*SectorSize)
	}
}

// TestReadWhileSegmentRotates: the reader lists the segments, scans the
// last one (reading the zeros ahead of its records), and meanwhile the
// writer fills it, seals it, cuts the zeros after the seal and creates
// the next segment. The read ends at the seal, without error: the file it
// scanned shrank under it, and the batches written since are read again.
func TestReadWhileSegmentRotates(t *testing.T) {
	fsys, w := openLive(t, 3, Options{SegmentSize: 8 << 10})
	lfs := &landFS{FS: fsys, path: filepath.Join("log", segmentName(1))}
	lfs.held.Store(true)
	lfs.land = func() {
		for i := 0; w.Reader().limit.seg < 3; i++ {
			appendN(t, w, 100+i)
		}
	}
	rep, err := Check(context.Background(), lfs, "log", nil)
	if err != nil {
		t.Fatalf("Check while the segment it read rotated: %v", err)
	}
	if rep.Segments != 1 || !rep.Sealed || rep.TornTail != nil {
		t.Errorf("report %+v: want the one segment listed, read to its seal", rep)
	}
	if rep, err := Check(context.Background(), lfs, "log", nil); err != nil || rep.Segments != 3 {
		t.Fatalf("Check after the rotations: %v, %+v", err, rep)
	}
}
