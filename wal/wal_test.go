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

	"github.com/willibrandon/mtlog-audit/vfs"
)

func payloadFor(seq int) []byte {
	return []byte(fmt.Sprintf("event-%06d-%s", seq, bytes.Repeat([]byte{'x'}, seq%300)))
}

// collect reads every record of the log in dir.
func collect(t *testing.T, fsys vfs.FS, dir string) (map[uint64][]byte, *Report) {
	t.Helper()
	got := map[uint64][]byte{}
	rep, err := Check(context.Background(), fsys, dir, func(r Record) error {
		if r.Type == RecordEvent {
			got[r.Seq] = bytes.Clone(r.Payload)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return got, rep
}

func TestAppendReopenConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w, err := Open(vfs.OS(), dir, Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[uint64][]byte{}
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				p := payloadFor(g*1000 + i)
				seq, err := w.Append(context.Background(), RecordEvent, int64(g*1000+i), p)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[seq] = p
				mu.Unlock()
			}
		}(g)
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, rep := collect(t, vfs.OS(), dir)
	if len(got) != 1600 || rep.Events != 1600 {
		t.Fatalf("got %d events (report %d), want 1600", len(got), rep.Events)
	}
	for seq, p := range acked {
		if !bytes.Equal(got[seq], p) {
			t.Fatalf("seq %d: got %q want %q", seq, got[seq], p)
		}
	}
	if rep.Segments < 3 || !rep.Sealed {
		t.Fatalf("expected rotation and a sealed end, got %+v", rep)
	}
	// Reopen and append more: continues the sequence in a new segment.
	w, err = Open(vfs.OS(), dir, Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := w.Append(context.Background(), RecordEvent, 1, []byte("after"))
	if err != nil {
		t.Fatal(err)
	}
	if seq != rep.LastSeq+1 {
		t.Fatalf("seq after reopen = %d, want %d", seq, rep.LastSeq+1)
	}
	w.Close()
	n := 0
	for r, err := range NewReader(vfs.OS(), dir).Records(context.Background(), seq) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Type == RecordEvent {
			n++
			if string(r.Payload) != "after" {
				t.Fatalf("payload %q", r.Payload)
			}
		}
	}
	if n != 1 {
		t.Fatalf("Records(from %d) gave %d events", seq, n)
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(vfs.OS(), dir, Options{Owner: "test-owner-42"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	_, err = Open(vfs.OS(), dir, Options{})
	if !errors.Is(err, vfs.ErrLocked) || !bytes.Contains([]byte(err.Error()), []byte("test-owner-42")) {
		t.Fatalf("second Open: %v", err)
	}
}

func TestOpenRejectsFileAndForeignDir(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, []byte("x"), 0o644)
	if _, err := Open(vfs.OS(), f, Options{}); !errors.Is(err, ErrNotWAL) {
		t.Fatalf("file path: %v", err)
	}
	d := t.TempDir()
	os.WriteFile(filepath.Join(d, "notes.txt"), []byte("x"), 0o644)
	if _, err := Open(vfs.OS(), d, Options{}); !errors.Is(err, ErrNotWAL) {
		t.Fatalf("foreign dir: %v", err)
	}
	if _, err := Open(vfs.OS(), "", Options{}); !errors.Is(err, ErrNotWAL) {
		t.Fatalf("empty path: %v", err)
	}
}
