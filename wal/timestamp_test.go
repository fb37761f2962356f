package wal

import (
	"context"
	"math"
	"path"
	"slices"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/vfs"
)

func year(y int) time.Time { return time.Date(y, time.June, 1, 0, 0, 0, 0, time.UTC) }

// TestUnixNanoClamps: UnixNano is t.UnixNano() inside its range, the
// nearest extreme outside, exact at the boundaries, and monotone.
func TestUnixNanoClamps(t *testing.T) {
	lo, hi := time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)
	cases := []struct {
		t    time.Time
		want int64
	}{
		{lo.Add(-time.Nanosecond), math.MinInt64},
		{lo, math.MinInt64},
		{lo.Add(time.Nanosecond), math.MinInt64 + 1},
		{hi.Add(-time.Nanosecond), math.MaxInt64 - 1},
		{hi, math.MaxInt64},
		{hi.Add(time.Nanosecond), math.MaxInt64},
		{time.Time{}, math.MinInt64},
		{year(1000), math.MinInt64},
		{year(3000), math.MaxInt64},
		{time.Unix(1<<62, 0), math.MaxInt64},
		{time.Unix(-1<<62, 0), math.MinInt64},
		{time.Unix(0, 0), 0},
		{year(2024).In(time.FixedZone("X", -7200)), year(2024).UnixNano()},
	}
	for _, c := range cases {
		if got := UnixNano(c.t); got != c.want {
			t.Errorf("UnixNano(%v) = %d, want %d", c.t, got, c.want)
		}
	}
	times := make([]time.Time, len(cases))
	for i, c := range cases {
		times[i] = c.t
	}
	slices.SortFunc(times, time.Time.Compare)
	for i := 1; i < len(times); i++ {
		if UnixNano(times[i-1]) > UnixNano(times[i]) {
			t.Errorf("UnixNano(%v) > UnixNano(%v)", times[i-1], times[i])
		}
	}
}

// TestWindowBounds: a Window's Bounds hold the stored time of every event
// in it, and decide exactly every stored time that is not an extreme (nor,
// in a window that holds the zero time, at most 0: see Bounds).
func TestWindowBounds(t *testing.T) {
	lo, hi := time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)
	var pool []time.Time
	for _, base := range []time.Time{{}, year(1), year(1000), lo, time.Unix(0, 0), year(2024), hi, year(3000), time.Unix(1<<62, 0)} {
		for d := -2; d <= 2; d++ {
			pool = append(pool, base.Add(time.Duration(d)))
		}
	}
	for _, from := range pool {
		for _, to := range pool {
			w := Window{From: from, To: to}
			for _, ts := range pool {
				if ts.IsZero() {
					continue // an event's zero time is stamped (audit.Sink.Write)
				}
				s := UnixNano(ts)
				may, in := w.MayHold(s), w.Contains(ts)
				if in && !may {
					t.Fatalf("%+v: holds %v, but its stored time %d is outside Bounds", w, ts, s)
				}
				exact := s != math.MinInt64 && s != math.MaxInt64 && !(s <= 0 && w.Contains(time.Time{}))
				if exact && may != in {
					t.Fatalf("%+v: MayHold(%d) = %v for %v, Contains = %v", w, s, may, ts, in)
				}
			}
		}
	}
}

// TestSealTimesBeyondUnixNano: segments that hold only events beyond
// either end of UnixNano seal the clamped extremes as their time range
// (MinTime ≤ MaxTime), which stays distinct from the range of a segment
// with no event (MinTime > MaxTime); Between finds those events by the
// seals, and skips, without reading their batches, the segments that
// cannot hold any.
func TestSealTimesBeyondUnixNano(t *testing.T) {
	fsys := vfs.NewCrashFS()
	w, err := Open(fsys, testDir, Options{SegmentSize: 8192})
	if err != nil {
		t.Fatal(err)
	}
	exact := map[uint64]time.Time{}
	add := func(typ RecordType, ts time.Time) {
		seq, err := w.Append(context.Background(), typ, UnixNano(ts), make([]byte, 1000))
		if err != nil {
			t.Fatal(err)
		}
		if typ == RecordEvent {
			exact[seq] = ts
		}
	}
	for i := range 20 {
		add(RecordEvent, year(2263+300*i))
	}
	for i := range 20 {
		add(RecordEvent, year(1676-80*i))
	}
	for range 20 {
		add(RecordMeta, year(2024))
	}
	for i := range 3 {
		add(RecordEvent, year(2020+i))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	// The seals (the cheap summary reads them) against the records.
	type span struct{ min, max int64 }
	fromRecords := map[uint64]*span{}
	if _, err := Summarize(context.Background(), fsys, testDir, true, func(r Record) error {
		s := fromRecords[r.Segment]
		if s == nil {
			s = &span{math.MaxInt64, math.MinInt64}
			fromRecords[r.Segment] = s
		}
		if r.Type == RecordEvent {
			s.min, s.max = min(s.min, r.Time), max(s.max, r.Time)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	segs, err := Summarize(context.Background(), fsys, testDir, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, s := range segs[:len(segs)-1] {
		want := fromRecords[s.Number]
		if !s.FromSeal || s.MinTime != want.min || s.MaxTime != want.max {
			t.Fatalf("segment %d: seal says %d..%d (from seal: %v), records %d..%d", s.Number, s.MinTime, s.MaxTime, s.FromSeal, want.min, want.max)
		}
		switch {
		case s.MinTime > s.MaxTime:
			kinds["no event"]++
		case s.MinTime == math.MaxInt64:
			kinds["after 2262"]++
		case s.MaxTime == math.MinInt64:
			kinds["before 1678"]++
		}
	}
	if len(kinds) != 3 {
		t.Fatalf("sealed segments: %v; want some with no event, some only after 2262, some only before 1678", kinds)
	}

	for _, win := range []Window{{}, {From: year(2500)}, {To: year(1600)}, {From: year(2000), To: year(2100)}, {From: year(1000), To: year(3000)}, {From: year(1677), To: year(1678)}} {
		c := &readCounter{FS: fsys, read: map[string]int64{}}
		var got, want []uint64
		lo, hi := win.Bounds()
		for r, err := range NewReader(c, testDir).Between(context.Background(), lo, hi) {
			if err != nil {
				t.Fatal(err)
			}
			if win.Contains(exact[r.Seq]) {
				got = append(got, r.Seq)
			}
		}
		for seq, ts := range exact {
			if win.Contains(ts) {
				want = append(want, seq)
			}
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%+v: got %v, want %v", win, got, want)
		}
		for _, s := range segs[:len(segs)-1] {
			name := path.Join(testDir, segmentName(s.Number))
			canHold := s.MinTime <= s.MaxTime && (s.MinTime != s.MaxTime || win.MayHold(s.MinTime))
			if read := c.read[name] >= s.Size/2; read != canHold {
				t.Errorf("%+v: Between read %d of the %d bytes of segment %d (times %d..%d); want it read only if it can hold an event of the window", win, c.read[name], s.Size, s.Number, s.MinTime, s.MaxTime)
			}
		}
	}
}
