package wal

import (
	"bytes"
	"context"
	"testing"
)

// Reading from a seal (the last record of a segment followed by another)
// takes the seal from the segment's last sector and yields exactly what a
// full read yields from there on (its batch end, tag and format version
// included), in both a sealed and a crashed log, tagged or not.
func TestRecordsFromASeal(t *testing.T) {
	for _, v := range []struct{ clean, tagged bool }{{true, false}, {false, false}, {true, true}, {false, true}} {
		clean := v.clean
		opts := Options{SegmentSize: 4096}
		if v.tagged {
			opts = newTestTagger(t).options(opts)
		}
		fsys, _ := buildLogOpts(t, 60, opts, clean)
		var all []Record
		if _, err := Check(context.Background(), fsys, testDir, func(r Record) error {
			r.Payload = bytes.Clone(r.Payload)
			all = append(all, r)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		seals := 0
		for i, r := range all {
			if r.Type != RecordSeal || i == len(all)-1 {
				continue
			}
			seals++
			j := i
			for got, err := range NewReader(fsys, testDir).Records(context.Background(), r.Seq) {
				if err != nil {
					t.Fatal(err)
				}
				want := all[j]
				if got.Seq != want.Seq || got.Type != want.Type || got.Time != want.Time || got.Segment != want.Segment || got.Offset != want.Offset || !bytes.Equal(got.Payload, want.Payload) ||
					got.BatchEnd != want.BatchEnd || got.Tagged != want.Tagged || got.Tag != want.Tag || got.Version != want.Version {
					t.Fatalf("clean=%v: from seal %d: record %+v, want %+v", clean, r.Seq, got, want)
				}
				j++
			}
			if j != len(all) {
				t.Fatalf("clean=%v: from seal %d: %d records, want %d", clean, r.Seq, j-i, len(all)-i)
			}
		}
		if seals < 2 {
			t.Fatalf("want several seals, got %d", seals)
		}
	}
}
