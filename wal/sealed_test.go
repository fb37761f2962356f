package wal

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// ReadSeal finds the last seal of a segment continued after a clean Close
// (an interior seal, with records after it) and of a sealed one, and OnSeal
// reports the same seals.
func TestReadSealAndOnSeal(t *testing.T) {
	dir := t.TempDir()
	seals := make(chan Seal, 16)
	opts := Options{OnSeal: func(s Seal) { seals <- s }}
	w := restarted(t, dir, 2, 3, opts) // 3 records, seal, 3 records, seal; reopened
	first := <-seals                   // the first session's Close
	second := <-seals
	if first.Segment != 1 || first.LastSeq != 4 || second.LastSeq != 8 {
		t.Fatalf("OnSeal gave %+v and %+v, want the seals of records 4 and 8 in segment 1", first, second)
	}
	if _, err := w.Append(t.Context(), RecordEvent, 9, payloadFor(9)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, SegmentName(1))
	got, ok, err := ReadSeal(vfs.OS(), path, math.MaxUint64)
	if err != nil || !ok || got != second {
		t.Fatalf("ReadSeal of the continued segment = %+v, %v, %v; want %+v", got, ok, err, second)
	}
	if got, ok, err := ReadSeal(vfs.OS(), path, 7); err != nil || !ok || got != first {
		t.Fatalf("ReadSeal up to record 7 = %+v, %v, %v; want %+v", got, ok, err, first)
	}
	if got, ok, err := ReadSeal(vfs.OS(), path, 3); err != nil || ok {
		t.Fatalf("ReadSeal up to record 3 = %+v, %v, %v; want no seal", got, ok, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	third := <-seals
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err = ReadSeal(vfs.OS(), path, math.MaxUint64)
	if err != nil || !ok || got != third || got.LastSeq != 10 || got.End != st.Size() {
		t.Fatalf("ReadSeal of the sealed segment = %+v, %v, %v; want %+v ending the %d-byte file", got, ok, err, third, st.Size())
	}
}

// SegmentMaxAge seals a segment once its first record is old enough,
// without another write, and the next record starts a new segment.
func TestSegmentMaxAge(t *testing.T) {
	dir := t.TempDir()
	seals := make(chan Seal, 16)
	w, err := Open(vfs.OS(), dir, Options{SegmentMaxAge: 1, OnSeal: func(s Seal) { seals <- s }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Append(t.Context(), RecordEvent, 1, payloadFor(1)); err != nil {
		t.Fatal(err)
	}
	if s := <-seals; s.Segment != 1 || s.LastSeq != 2 {
		t.Fatalf("aged seal = %+v, want segment 1 sealed by record 2", s)
	}
	seq, err := w.Append(t.Context(), RecordEvent, 2, payloadFor(2))
	if err != nil {
		t.Fatal(err)
	}
	if s := <-seals; s.Segment != 2 || s.FirstSeq != seq {
		t.Fatalf("aged seal = %+v, want segment 2 starting at record %d", s, seq)
	}
	if _, err := Open(vfs.OS(), t.TempDir(), Options{SegmentMaxAge: -1}); err == nil {
		t.Fatal("Open took a negative SegmentMaxAge")
	}
}
