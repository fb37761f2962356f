package wal

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// collectRecs returns the sequence numbers and payloads an iterator yields, and
// its error.
func collectRecs(t *testing.T, it func(func(Record, error) bool)) ([]Record, error) {
	t.Helper()
	var out []Record
	for rec, err := range it {
		if err != nil {
			return out, err
		}
		rec.Payload = append([]byte(nil), rec.Payload...)
		out = append(out, rec)
	}
	return out, nil
}

// restarted writes sessions of n records each (Open, Append, Close) and
// opens the log again: its last segment holds an interior seal per session
// but the last, which ends it.
func restarted(t *testing.T, dir string, sessions, n int, opts Options) *WAL {
	t.Helper()
	for s := range sessions {
		w, err := Open(vfs.OS(), dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if _, err := w.Append(t.Context(), RecordEvent, int64(s*n+i), payloadFor(s*n+i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	w, err := Open(vfs.OS(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// LastSeal names the seal that ends the reopened segment, and RecordsFrom
// started there yields what Records yields from the same record on, also
// after more records follow it in the same Open (a crash then leaves the
// seal interior: the next Open finds it by a full scan).
func TestRecordsFromLastSeal(t *testing.T) {
	dir := t.TempDir()
	w := restarted(t, dir, 3, 10, Options{})
	m, ok := w.LastSeal()
	if !ok || m.Seq != 33 || m.Segment != 1 {
		t.Fatalf("LastSeal = %+v, %v; want the seal of record 33 in segment 1", m, ok)
	}
	for _, from := range []uint64{33, 34} {
		got, err := collectRecs(t, w.Reader().RecordsFrom(t.Context(), m, from))
		if err != nil {
			t.Fatal(err)
		}
		want, err := collectRecs(t, w.Reader().Records(t.Context(), from))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) || (len(got) > 0 && (got[0].Seq != want[0].Seq || got[0].Offset != want[0].Offset || got[0].Type != RecordSeal)) {
			t.Fatalf("from %d: RecordsFrom gave %d records, Records %d", from, len(got), len(want))
		}
	}
	if _, err := w.Append(t.Context(), RecordEvent, 99, []byte("after")); err != nil {
		t.Fatal(err)
	}
	got, err := collectRecs(t, w.Reader().RecordsFrom(t.Context(), m, 34))
	if err != nil || len(got) != 1 || string(got[0].Payload) != "after" {
		t.Fatalf("after an append: %v %+v", err, got)
	}
	if err := w.Release(); err != nil { // crashed: the seal stays interior
		t.Fatal(err)
	}
	w2, err := Open(vfs.OS(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if m2, ok := w2.LastSeal(); !ok || m2 != m {
		t.Fatalf("after a crash, LastSeal = %+v, %v; want the interior seal %+v", m2, ok, m)
	}
}

// RecordsFrom checks the batch it starts at: a mark that names no seal, or
// a seal whose bytes changed after Open, is reported as damage, never read
// as records.
func TestRecordsFromChecksTheMark(t *testing.T) {
	dir := t.TempDir()
	w := restarted(t, dir, 2, 10, Options{})
	m, _ := w.LastSeal()
	for _, bad := range []Mark{
		{Seq: m.Seq, Segment: m.Segment, Offset: m.Offset - SectorSize}, // the batch before: an event
		{Seq: m.Seq - 1, Segment: m.Segment, Offset: m.Offset},          // the seal, but another record
		{Seq: m.Seq, Segment: m.Segment, Offset: m.Offset + 100},        // not a batch boundary
		{Seq: m.Seq, Segment: m.Segment, Offset: 0},                     // the segment header
	} {
		_, err := collectRecs(t, w.Reader().RecordsFrom(t.Context(), bad, m.Seq))
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("mark %+v: want ErrCorrupt, got %v", bad, err)
		}
	}
	// Rewrite one byte of the seal's batch on disk.
	path := filepath.Join(dir, segmentName(m.Segment))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, m.Offset+40); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1
	if _, err := f.WriteAt(b, m.Offset+40); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = collectRecs(t, w.Reader().RecordsFrom(t.Context(), m, m.Seq))
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Offset != m.Offset {
		t.Fatalf("a changed seal: want a CorruptError at offset %d, got %v", m.Offset, err)
	}
}
