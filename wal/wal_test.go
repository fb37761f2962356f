package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

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

// TestOnCommitSeesEveryRecordInOrder: the hook sees every record, seals
// included, exactly once and in sequence order, before the appender is
// acknowledged, and the digest it sets comes back in the Ack.
func TestOnCommitSeesEveryRecordInOrder(t *testing.T) {
	var mu sync.Mutex
	var seen []uint64
	types := map[uint64]RecordType{}
	opts := Options{SegmentSize: 4096, OnCommit: func(recs []Committed) error {
		mu.Lock()
		defer mu.Unlock()
		for i := range recs {
			seen = append(seen, recs[i].Seq)
			types[recs[i].Seq] = recs[i].Type
			recs[i].Digest[0] = byte(recs[i].Seq)
			recs[i].Digest[1] = byte(len(recs[i].Payload))
		}
		return nil
	}}
	dir := filepath.Join(t.TempDir(), "wal")
	w, err := Open(vfs.OS(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				p := payloadFor(g*100 + i)
				a, err := w.AppendAck(context.Background(), RecordEvent, 1, p)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ok := len(seen) > 0 && seen[len(seen)-1] >= a.Seq
				mu.Unlock()
				if !ok || a.Digest[0] != byte(a.Seq) || a.Digest[1] != byte(len(p)) {
					t.Errorf("ack %d: hook had not seen it or digest %v wrong", a.Seq, a.Digest[:2])
					return
				}
			}
		}(g)
	}
	wg.Wait()
	w.Close()
	rep, err := Check(context.Background(), vfs.OS(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(seen)) != rep.Records {
		t.Fatalf("hook saw %d records, log has %d", len(seen), rep.Records)
	}
	seals := 0
	for i, s := range seen {
		if s != uint64(i+1) {
			t.Fatalf("hook saw sequence %d at position %d", s, i)
		}
		if types[s] == RecordSeal {
			seals++
		}
	}
	if seals != rep.Segments {
		t.Fatalf("hook saw %d seals for %d sealed segments", seals, rep.Segments)
	}
}

// TestSyncInWeakModes: Sync makes acknowledged records durable.
func TestSyncInWeakModes(t *testing.T) {
	for _, mode := range []SyncMode{SyncInterval, SyncNone} {
		fsys := vfs.NewCrashFS()
		w, err := Open(fsys, testDir, Options{Sync: mode, SyncInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		p := testPayload(0, 0, rand.New(rand.NewPCG(1, 1)))
		seq, err := w.Append(context.Background(), RecordEvent, 1, p)
		if err != nil {
			t.Fatal(err)
		}
		if w.DurableSeq() >= seq {
			t.Fatalf("%v: record durable before Sync", mode)
		}
		lost := fsys.CrashClone(vfs.CrashOptions{})
		if err := w.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		if w.DurableSeq() < seq {
			t.Fatalf("%v: DurableSeq %d after Sync, want ≥ %d", mode, w.DurableSeq(), seq)
		}
		kept := fsys.CrashClone(vfs.CrashOptions{})
		w.Close()
		checkRecovered(t, 0, kept, map[uint64][]byte{seq: p}, Options{})
		rep, err := Check(context.Background(), lost, testDir, nil)
		if err != nil || rep.Events != 0 {
			t.Fatalf("%v: before Sync a power loss should lose the record: %v %+v", mode, err, rep)
		}
	}
}
