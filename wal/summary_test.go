package wal

import (
	"context"
	"testing"

	"github.com/willibrandon/mtlog-audit/internal/testutil"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// TestSummarize: the cheap summary (sealed segments from their seals) and
// the full one (every record read) agree with Check on a multi-segment
// log, a closed one and a crashed one; the cheap one reads no sealed
// segment's records (damage there is not seen), the full one does; and
// nothing is modified.
func TestSummarize(t *testing.T) {
	for _, clean := range []bool{true, false} {
		fsys, acked := buildLog(t, 300, 8<<10, clean)
		rep, err := Check(context.Background(), fsys, testDir, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, readAll := range []bool{false, true} {
			var visited uint64
			segs, err := Summarize(context.Background(), fsys, testDir, readAll, func(Record) error { visited++; return nil })
			if err != nil {
				t.Fatal(err)
			}
			if len(segs) != rep.Segments || len(segs) < 3 {
				t.Fatalf("clean=%v readAll=%v: %d segments, Check says %d", clean, readAll, len(segs), rep.Segments)
			}
			var records, events uint64
			minT, maxT := int64(1<<62), int64(-1)
			for i, s := range segs {
				records += s.Records
				events += s.Events
				minT, maxT = min(minT, s.MinTime), max(maxT, s.MaxTime)
				last := i == len(segs)-1
				if s.FromSeal == (readAll || last) || s.EventsKnown == s.FromSeal || s.Problem != "" {
					t.Errorf("clean=%v readAll=%v: segment %+v", clean, readAll, s)
				}
			}
			if records != rep.Records || segs[0].FirstSeq != rep.FirstSeq || minT != 0 || maxT != int64(len(acked)-1) {
				t.Errorf("clean=%v readAll=%v: %d records from %d, times %d..%d; Check: %d from %d", clean, readAll, records, segs[0].FirstSeq, minT, maxT, rep.Records, rep.FirstSeq)
			}
			if readAll && (events != rep.Events || visited != rep.Records) {
				t.Errorf("clean=%v: %d events, %d visited; Check: %d events, %d records", clean, events, visited, rep.Events, rep.Records)
			}
			if !readAll && visited != segs[len(segs)-1].Records {
				t.Errorf("clean=%v: cheap summary visited %d records, want the last segment's %d", clean, visited, segs[len(segs)-1].Records)
			}
		}
		// Damage in the first segment's records: only readAll reads it.
		first := segmentFiles(t, fsys)[0]
		testutil.XorByte(t, fsys, first, SectorSize+100, 1)
		segs, err := Summarize(context.Background(), fsys, testDir, false, nil)
		if err != nil || segs[0].Problem != "" || !segs[0].FromSeal {
			t.Errorf("clean=%v: cheap summary of a damaged sealed segment: %v %+v", clean, err, segs[0])
		}
		segs, err = Summarize(context.Background(), fsys, testDir, true, nil)
		if err != nil || segs[0].Problem == "" {
			t.Errorf("clean=%v: full summary missed damage in segment 1: %v %+v", clean, err, segs[0])
		}
	}
	if _, err := Summarize(context.Background(), vfs.NewCrashFS(), testDir, false, nil); err == nil {
		t.Error("Summarize of a missing directory succeeded")
	}
}
