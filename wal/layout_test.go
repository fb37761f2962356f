package wal

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/vfs"
)

func TestOwns(t *testing.T) {
	for name, want := range map[string]bool{
		"00000000000000000001.wal":     true,
		"00000000000000000001.wal.tmp": true,
		LockName:                       true,
		"0000000000000000001.wal":      false, // 19 digits
		"0000000000000000000x.wal":     false,
		"00000000000000000001.wal.bak": false,
		"x.wal.tmp":                    false,
		"checkpoints":                  false, // the integrity layer's
		"epoch.key":                    false,
		"notes.txt":                    false,
	} {
		if got := Owns(name); got != want {
			t.Errorf("Owns(%q) = %v, want %v", name, got, want)
		}
	}
	for _, n := range []uint64{0, 1, 42, ^uint64(0)} {
		if got, ok := ParseSegmentName(SegmentName(n)); !ok || got != n {
			t.Errorf("ParseSegmentName(SegmentName(%d)) = %d, %v", n, got, ok)
		}
	}
}

// Open adopts a directory without segments only when every file in it is
// the WAL's or Owned; a directory with segments is opened whatever else it
// holds.
func TestOpenOwned(t *testing.T) {
	fsys := vfs.NewCrashFS()
	write := func(dir string, names ...string) {
		if err := fsys.MkdirAll(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			f, err := fsys.Create(filepath.Join(dir, n))
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
	owned := func(name string) bool { return name == "upper.state" }
	write("/bare", "upper.state")
	if _, err := Open(fsys, "/bare", Options{}); !errors.Is(err, ErrNotWAL) || !strings.Contains(err.Error(), "upper.state") {
		t.Fatalf("Open without Owned: %v, want ErrNotWAL naming upper.state", err)
	}
	write("/mixed", "upper.state", "notes.txt")
	if _, err := Open(fsys, "/mixed", Options{Owned: owned}); !errors.Is(err, ErrNotWAL) || !strings.Contains(err.Error(), "notes.txt") {
		t.Fatalf("Open with a foreign file: %v, want ErrNotWAL naming notes.txt", err)
	}
	w, err := Open(fsys, "/bare", Options{Owned: owned})
	if err != nil {
		t.Fatalf("Open with Owned: %v", err)
	}
	if _, err := w.Append(context.Background(), RecordEvent, 1, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	write("/bare", "notes.txt")
	w, err = Open(fsys, "/bare", Options{}) // segments: a log, whatever else it holds
	if err != nil {
		t.Fatalf("reopen without Owned: %v", err)
	}
	w.Close()
}

func TestReadSegmentHeader(t *testing.T) {
	fsys := vfs.NewCrashFS()
	created := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	w, err := Open(fsys, "/log", Options{SegmentSize: 4 * SectorSize, Now: func() time.Time { return created }})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8; i++ {
		if _, err := w.Append(context.Background(), RecordEvent, 1, make([]byte, 600)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	h1, err := ReadSegmentHeader(fsys, filepath.Join("/log", SegmentName(1)))
	if err != nil {
		t.Fatal(err)
	}
	h2, err := ReadSegmentHeader(fsys, filepath.Join("/log", SegmentName(2)))
	if err != nil {
		t.Fatal(err)
	}
	if h1.Version != FormatVersion || h1.Number != 1 || h1.FirstSeq != 1 || h1.Salt == 0 || h1.PrevHash != [32]byte{} || h1.Created != created.UnixNano() {
		t.Errorf("segment 1 header %+v", h1)
	}
	if h2.Number != 2 || h2.FirstSeq <= 1 || h2.Salt == h1.Salt || h2.PrevHash == [32]byte{} {
		t.Errorf("segment 2 header %+v", h2)
	}

	// Damage: a CorruptError naming the file; a newer version: ErrUnknownVersion.
	p := filepath.Join("/log", SegmentName(2))
	patch := func(off int64, b []byte, fixCRC bool) {
		f, err := fsys.OpenReadWrite(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
		if fixCRC {
			hdr := make([]byte, segHeaderFields)
			f.ReadAt(hdr, 0)
			var crc [4]byte
			binary.LittleEndian.PutUint32(crc[:], crc32.Checksum(hdr[:segHeaderFields-4], castagnoli))
			f.WriteAt(crc[:], segHeaderFields-4)
		}
	}
	patch(16, []byte{9}, true) // header says segment 9
	var ce *CorruptError
	if _, err := ReadSegmentHeader(fsys, p); !errors.As(err, &ce) || ce.Segment != 2 || ce.Path != p || !strings.Contains(ce.Reason, "header says segment 9") {
		t.Fatalf("misnamed segment: %v", err)
	}
	patch(16, []byte{2}, false) // number restored, checksum stale
	if _, err := ReadSegmentHeader(fsys, p); !errors.As(err, &ce) || !strings.Contains(ce.Reason, "checksum") {
		t.Fatalf("stale checksum: %v", err)
	}
	patch(8, []byte{FormatVersion + 1}, true)
	if _, err := ReadSegmentHeader(fsys, p); !errors.Is(err, ErrUnknownVersion) {
		t.Fatalf("newer version: %v", err)
	}
	if _, err := ReadSegmentHeader(fsys, filepath.Join("/log", SegmentName(99))); err == nil {
		t.Fatal("a missing segment has a header")
	}
}
