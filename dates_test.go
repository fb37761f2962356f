package audit_test

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

func year(y int) time.Time { return time.Date(y, time.June, 1, 12, 0, 0, 0, time.UTC) }

// writeAt writes one event per time, its index in property I.
func writeAt(t *testing.T, s *audit.Sink, times []time.Time) {
	t.Helper()
	for i, ts := range times {
		if _, err := s.Write(context.Background(), &audit.Event{Timestamp: ts, MessageTemplate: "e", Properties: map[string]any{"I": i}}); err != nil {
			t.Fatal(err)
		}
	}
}

// replayed returns the property I of each event that replay yields.
func replayed(t *testing.T, seq func(func(*audit.Event, error) bool)) []int {
	t.Helper()
	out := []int{}
	for ev, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, int(ev.Properties["I"].(int64)))
	}
	return out
}

// TestReplayDatesOutsideUnixNano: events dated before 1678 and after 2262,
// where time.UnixNano overflows, are replayed by the windows that hold
// them, by a live Sink and from the closed directory.
func TestReplayDatesOutsideUnixNano(t *testing.T) {
	s, dir := newSink(t)
	writeAt(t, s, []time.Time{year(1), year(1000), year(2024), year(3000)})
	cases := []struct {
		from, to time.Time
		want     []int
	}{
		{year(2000), time.Time{}, []int{2, 3}},
		{year(1600), year(2100), []int{2}},
		{time.Time{}, year(1600), []int{0, 1}},
		{year(500), year(1500), []int{1}},
		{year(2100), time.Time{}, []int{3}},
		{year(2500), year(3500), []int{3}},
		{year(3001), time.Time{}, []int{}},
		{time.Time{}, year(1), []int{}},
		{time.Time{}, time.Time{}, []int{0, 1, 2, 3}},
	}
	check := func(name string, replay func(from, to time.Time) func(func(*audit.Event, error) bool)) {
		for _, c := range cases {
			if got := replayed(t, replay(c.from, c.to)); !slices.Equal(got, c.want) {
				t.Errorf("%s [%v, %v): got events %v, want %v", name, c.from, c.to, got, c.want)
			}
		}
	}
	ctx := context.Background()
	check("Sink.Replay", func(from, to time.Time) func(func(*audit.Event, error) bool) { return s.Replay(ctx, from, to) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check("Replay", func(from, to time.Time) func(func(*audit.Event, error) bool) { return audit.Replay(ctx, dir, from, to) })
}

// TestZeroTimestampStampedWithClock: an event without a timestamp is
// recorded at the Sink's clock (WithClock), the caller's Event is left
// alone, and time windows find it there.
func TestZeroTimestampStampedWithClock(t *testing.T) {
	now := time.Date(2031, 3, 4, 5, 6, 7, 8, time.UTC)
	s, _ := newSink(t, audit.WithClock(func() time.Time { return now }))
	ev := &audit.Event{MessageTemplate: "no time", Properties: map[string]any{"I": 0}}
	if _, err := s.Write(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if !ev.Timestamp.IsZero() {
		t.Fatalf("Write changed the caller's event: Timestamp %v", ev.Timestamp)
	}
	got := all(t, s)
	if len(got) != 1 || !got[0].Timestamp.Equal(now) {
		t.Fatalf("replayed %+v, want one event at %v", got, now)
	}
	if n := replayed(t, s.Replay(context.Background(), now, now.Add(time.Nanosecond))); len(n) != 1 {
		t.Fatalf("window [now, now+1ns) holds %v", n)
	}
	if n := replayed(t, s.Replay(context.Background(), time.Time{}, year(1970))); len(n) != 0 {
		t.Fatalf("window before 1970 holds %v", n)
	}
}

// extremeTimes are the times where the index is most likely to go wrong.
func extremeTimes() []time.Time {
	lo, hi := time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)
	return []time.Time{
		{}, // stamped with the clock
		year(1), year(1000), year(1677), year(1678), year(1969), year(1970), year(2262), year(2263), year(9999),
		time.Unix(0, 0), time.Unix(0, -1), time.Unix(0, 1),
		lo, lo.Add(-time.Nanosecond), lo.Add(time.Nanosecond),
		hi, hi.Add(-time.Nanosecond), hi.Add(time.Nanosecond),
		time.Unix(1<<62, 0), time.Unix(-1<<62, 0), time.Unix(1<<62, 999_999_999),
		time.Unix(math.MinInt64, 0),                       // the earliest time.Time
		time.Unix(math.MaxInt64-62135596800, 999_999_999), // the latest
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-5000, 1, 1, 0, 0, 0, 0, time.FixedZone("X", 3600)),
	}
}

// TestReplayWindowsProperty: over events at random times, the extremes
// among them, spread over many segments (so that seals are written and
// whole segments skipped), every replay window returns exactly the events
// that a brute-force filter of the written times selects, in order.
func TestReplayWindowsProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 4))
	pool := extremeTimes()
	clock := pool[rng.IntN(len(pool)-1)+1]
	random := func() time.Time {
		if rng.IntN(3) == 0 {
			return pool[rng.IntN(len(pool))]
		}
		switch rng.IntN(3) {
		case 0: // within the range of UnixNano
			return time.Unix(0, int64(rng.Uint64()))
		case 1: // near one of the pool's times
			return pool[rng.IntN(len(pool))].Add(time.Duration(rng.Int64N(5)-2) * time.Nanosecond)
		}
		return time.Unix(rng.Int64N(1<<60)-1<<59, rng.Int64N(1e9)) // anywhere in ±36 billion years
	}
	var times []time.Time
	for range 400 {
		times = append(times, random())
	}
	// The first segments hold times in order, so that their seals'
	// ranges are narrow (some lie wholly beyond an end of UnixNano) and
	// windows skip them; the later ones hold them in any order.
	slices.SortFunc(times[:250], time.Time.Compare)
	dir := filepath.Join(t.TempDir(), "p")
	s, _ := newSink(t, audit.WithWAL(dir, audit.WithSegmentSize(4096)), audit.WithClock(func() time.Time { return clock }))
	writeAt(t, s, times)
	stored := make([]time.Time, len(times)) // what the log holds
	for i, ts := range times {
		stored[i] = ts
		if ts.IsZero() {
			stored[i] = clock
		}
	}
	ctx := context.Background()
	for round := range 300 {
		from, to := random(), random()
		if rng.IntN(5) == 0 {
			from = time.Time{}
		}
		if rng.IntN(5) == 0 {
			to = time.Time{}
		}
		want := []int{}
		for i, ts := range stored {
			if (from.IsZero() || !ts.Before(from)) && (to.IsZero() || ts.Before(to)) {
				want = append(want, i)
			}
		}
		seq := s.Replay(ctx, from, to)
		name := "Sink.Replay"
		if round%2 == 1 {
			seq, name = audit.Replay(ctx, dir, from, to), "Replay"
		}
		if got := replayed(t, seq); !slices.Equal(got, want) {
			t.Fatalf("%s [%v, %v) (clock %v): got events %v, want %v", name, from, to, clock, got, want)
		}
	}
	if n := len(replayed(t, audit.Replay(ctx, dir, time.Time{}, time.Time{}))); n != len(times) {
		t.Fatalf("replayed %d events of %d", n, len(times))
	}
	if got := segmentCount(t, dir); got < 5 {
		t.Fatalf("%d segments: the test does not exercise skipping by seals", got)
	}
}

func segmentCount(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// TestReplayLegacyZeroTimestamp: a log written before zero timestamps were
// stamped holds such an event with stored time 0 (1970) and Timestamp
// 0001-01-01 in its payload; the windows that hold 0001-01-01 replay it,
// and the others do not.
func TestReplayLegacyZeroTimestamp(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "old")
	w, err := wal.Open(vfs.OS(), dir, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, ts := range []time.Time{{}, year(1970), year(1000)} {
		b, err := event.AppendEncode(nil, &audit.Event{Timestamp: ts, MessageTemplate: "e", Properties: map[string]any{"I": i}})
		if err != nil {
			t.Fatal(err)
		}
		stored := int64(0) // as Write stored a zero Timestamp
		if !ts.IsZero() {
			stored = wal.UnixNano(ts)
		}
		if _, err := w.Append(context.Background(), wal.RecordEvent, stored, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		from, to time.Time
		want     []int
	}{
		{time.Time{}, year(1600), []int{0, 2}},
		{time.Time{}, year(1), []int{0}},
		{year(1), time.Time{}, []int{1, 2}},
		{year(1600), year(2000), []int{1}},
		{time.Time{}, time.Time{}, []int{0, 1, 2}},
	} {
		if got := replayed(t, audit.Replay(context.Background(), dir, c.from, c.to)); !slices.Equal(got, c.want) {
			t.Errorf("[%v, %v): got events %v, want %v", c.from, c.to, got, c.want)
		}
	}
}
