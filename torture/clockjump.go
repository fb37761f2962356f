package torture

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"path"
	"slices"
	"sync"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// ClockJump writes events in phases; between phases the wall clock jumps
// backward or forward by one to 48 hours, both the events' timestamps and
// the Sink's own clock (audit.WithClock: checkpoint and segment header
// times).
//
// Pass: the log verifies with the key, every record covered; sequence
// numbers are contiguous and every acknowledged event is present and
// byte-identical, with its timestamp exactly as written (so each jump is
// visible in the log as a step of hours between consecutive events, in the
// direction of the jump); time-range replay (Sink.Replay on the live log,
// wal.Reader.Between on the closed one) returns exactly the events whose
// timestamps lie in the range, in sequence order, for ranges that straddle
// the jumps; every signed checkpoint time and segment header time is a time
// the injected clock returned.
type ClockJump struct{}

// Name returns "ClockJump".
func (ClockJump) Name() string { return "ClockJump" }

// Doc describes the scenario and its pass criteria.
func (ClockJump) Doc() string {
	return "The clock jumps backward or forward by 1-48 hours between phases of writing (event timestamps and the Sink's clock via " +
		"audit.WithClock). Pass: the log verifies with every record covered; sequence numbers contiguous; every acknowledged event " +
		"byte-identical with its timestamp as written (each jump visible as a step of hours in its direction); Sink.Replay and " +
		"wal.Reader.Between return exactly the events in range, in sequence order, for ranges straddling the jumps; checkpoint and segment " +
		"header times are times the injected clock returned."
}

// jumpClock is a clock that ticks a microsecond per reading and jumps when
// told; it remembers every time it returned.
type jumpClock struct {
	mu     sync.Mutex
	base   time.Time
	offset time.Duration
	ticks  int64
	seen   map[int64]bool
}

func (c *jumpClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ticks++
	t := c.base.Add(c.offset + time.Duration(c.ticks)*time.Microsecond)
	c.seen[t.UnixNano()] = true
	return t
}

func (c *jumpClock) jump(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

func (c *jumpClock) returned(ns int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[ns]
}

// Run runs one iteration.
func (ClockJump) Run(ctx context.Context, it Iteration) Outcome {
	rng := it.Rand()
	skey, vkey := keyPair(it.Seed)
	writers := 1 + rng.IntN(3)
	phases := 2 + rng.IntN(3)
	perPhase := 1 + rng.IntN(3)
	segSize := 2048 + 512*rng.Int64N(6)
	cpEvery := 1 + rng.IntN(4)
	base := time.Unix(1_750_000_000, 0).UTC()
	jumps := make([]time.Duration, phases) // jumps[p]: the jump before phase p (jumps[0] = 0)
	offsets := make([]time.Duration, phases)
	for p := 1; p < phases; p++ {
		d := time.Duration(1+rng.IntN(48))*time.Hour + time.Duration(rng.IntN(3600))*time.Second
		if rng.IntN(2) == 0 {
			d = -d
		}
		jumps[p] = d
		offsets[p] = offsets[p-1] + d
	}
	type written struct {
		ev      *audit.Event
		payload []byte
	}
	evs := make([][][]written, phases)
	for p := range evs {
		evs[p] = make([][]written, writers)
		for g := range writers {
			for i := range perPhase {
				ts := base.Add(offsets[p] + time.Duration(g*100+i)*time.Millisecond)
				ev := makeEvent(rng, g, p*100+i, ts)
				evs[p][g] = append(evs[p][g], written{ev, encode(ev)})
			}
		}
	}
	setup := fmt.Sprintf("%d writers × %d phases × %d events, segment size %d, checkpoint every %d, jumps %v", writers, phases, perPhase, segSize, cpEvery, jumps[1:])

	clock := &jumpClock{base: base, seen: map[int64]bool{}}
	fsys := vfs.NewCrashFS()
	sink, err := audit.New(sinkOptions(fsys, skey, segSize, cpEvery, audit.WithClock(clock.now))...)
	if err != nil {
		return failed(0, 0, "open a new log: %v (%s)", err, setup)
	}
	defer sink.Close()
	acked := newAcks()
	times := map[uint64]int64{}
	phaseOf := map[uint64]int{}
	var mu sync.Mutex
	for p := range phases {
		if p > 0 {
			clock.jump(jumps[p])
		}
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for g := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, w := range evs[p][g] {
					r, err := sink.Write(ctx, w.ev)
					if err != nil {
						errs <- err
						return
					}
					acked.add(r.Seq, w.payload)
					mu.Lock()
					times[r.Seq], phaseOf[r.Seq] = w.ev.Timestamp.UnixNano(), p
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return failed(p, acked.len(), "write in phase %d: %v (%s)", p, err, setup)
		}
	}
	faults := phases - 1
	all := acked.snapshot()

	// Ranges: whole, open-ended, around each jump and around single events.
	var points []int64
	for _, ts := range times {
		points = append(points, ts, ts+1)
	}
	for p := range phases {
		points = append(points, base.Add(offsets[p]).UnixNano(), base.Add(offsets[p]+time.Minute).UnixNano())
	}
	ranges := [][2]int64{{math.MinInt64, math.MaxInt64}}
	for range 4 {
		a, b := points[rng.IntN(len(points))], points[rng.IntN(len(points))]
		if a > b {
			a, b = b, a
		}
		ranges = append(ranges, [2]int64{a, b})
	}
	ranges = append(ranges, [2]int64{points[rng.IntN(len(points))], math.MaxInt64}, [2]int64{math.MinInt64, points[rng.IntN(len(points))]})
	expect := func(lo, hi int64) []uint64 {
		var out []uint64
		for seq, ts := range times {
			if ts >= lo && ts < hi {
				out = append(out, seq)
			}
		}
		slices.Sort(out)
		return out
	}
	toTime := func(ns int64) time.Time {
		if ns == math.MinInt64 || ns == math.MaxInt64 {
			return time.Time{}
		}
		return time.Unix(0, ns)
	}
	// Live replay (Sink.Replay) on the open log; a zero bound is open.
	for _, r := range ranges {
		lo, hi := r[0], r[1]
		var got []uint64
		for ev, err := range sink.Replay(ctx, toTime(r[0]), toTime(r[1])) {
			if err != nil {
				return failed(faults, len(all), "Sink.Replay [%d, %d): %v (%s)", lo, hi, err, setup)
			}
			b, err := event.AppendEncode(nil, ev)
			if err != nil {
				return failed(faults, len(all), "re-encode a replayed event: %v", err)
			}
			seq, ok := findPayload(all, b)
			if !ok {
				return failed(faults, len(all), "Sink.Replay [%d, %d) returned an event that was not acknowledged as written (%s)", lo, hi, setup)
			}
			got = append(got, seq)
		}
		if want := expect(lo, hi); !slices.Equal(got, want) {
			return failed(faults, len(all), "Sink.Replay [%d, %d) returned %v, want %v (%s)", lo, hi, got, want, setup)
		}
	}
	if err := sink.Close(); err != nil {
		return failed(faults, len(all), "close: %v (%s)", err, setup)
	}

	if _, err := verify(ctx, fsys, logDir, vkey, true); err != nil {
		return failed(faults, len(all), "%v (%s)", err, setup)
	}
	recs, _, err := readLog(ctx, fsys, logDir)
	if err != nil {
		return failed(faults, len(all), "read: %v (%s)", err, setup)
	}
	if err := checkAcked(recs, all); err != nil {
		return failed(faults, len(all), "%v (%s)", err, setup)
	}
	var events []uint64
	for seq, r := range recs {
		if r.Type == wal.RecordEvent {
			events = append(events, seq)
			if r.Time != times[seq] {
				return failed(faults, len(all), "event %d has timestamp %d in its record, %d was written (%s)", seq, r.Time, times[seq], setup)
			}
			if ev, err := event.Decode(r.Payload); err != nil || ev.Timestamp.UnixNano() != times[seq] {
				return failed(faults, len(all), "event %d decodes with timestamp %v (err %v), %d was written (%s)", seq, ev.Timestamp, err, times[seq], setup)
			}
		}
	}
	slices.Sort(events)
	// Each jump is visible: the first event of a phase (in sequence order)
	// follows the last of the previous phase by about the jump.
	for i := 1; i < len(events); i++ {
		a, b := events[i-1], events[i]
		if pa, pb := phaseOf[a], phaseOf[b]; pb != pa {
			step := time.Duration(times[b] - times[a])
			want := offsets[pb] - offsets[pa]
			if (step - want).Abs() > time.Second {
				return failed(faults, len(all), "events %d and %d (phases %d and %d) are %v apart in the log, the clock jumped %v (%s)", a, b, pa, pb, step, want, setup)
			}
		}
	}
	for _, r := range ranges {
		var got []uint64
		for rec, err := range wal.NewReader(fsys, logDir).Between(ctx, r[0], r[1]) {
			if err != nil {
				return failed(faults, len(all), "Between [%d, %d): %v (%s)", r[0], r[1], err, setup)
			}
			if !bytes.Equal(rec.Payload, all[rec.Seq]) {
				return failed(faults, len(all), "Between [%d, %d) returned record %d with other bytes than acknowledged (%s)", r[0], r[1], rec.Seq, setup)
			}
			got = append(got, rec.Seq)
		}
		if want := expect(r[0], r[1]); !slices.Equal(got, want) {
			return failed(faults, len(all), "Between [%d, %d) returned %v, want %v (%s)", r[0], r[1], got, want, setup)
		}
	}

	// The Sink's clock is the injected one.
	raw, err := integrity.ReadCheckpointLog(fsys, path.Join(logDir, integrity.CheckpointsFile))
	if err != nil || len(raw) == 0 {
		return failed(faults, len(all), "read checkpoints: %v (%d) (%s)", err, len(raw), setup)
	}
	for _, cp := range raw {
		i := bytes.LastIndex(cp, []byte("\n\n"))
		c, err := integrity.ParseCheckpointBody(string(cp[:i+1]))
		if i < 0 || err != nil {
			return failed(faults, len(all), "parse checkpoint: %v (%s)", err, setup)
		}
		if !clock.returned(c.Time.UnixNano()) {
			return failed(faults, len(all), "checkpoint of size %d has time %v, which the injected clock never returned (WithClock not honoured) (%s)", c.Size, c.Time, setup)
		}
	}
	segs := map[uint64]bool{}
	for _, r := range recs {
		segs[r.Segment] = true
	}
	for num := range segs {
		hdr, err := wal.ReadSegmentHeader(fsys, path.Join(logDir, wal.SegmentName(num)))
		if err != nil {
			return failed(faults, len(all), "read segment %d: %v (%s)", num, err, setup)
		}
		if created := hdr.Created; !clock.returned(created) {
			return failed(faults, len(all), "segment %d header time %v is not a time the injected clock returned (%s)", num, time.Unix(0, created).UTC(), setup)
		}
	}
	return passed(faults, len(all), "%d events across %d jumps (%s)", len(all), faults, setup)
}

// findPayload returns the sequence number acknowledged for payload.
func findPayload(acked map[uint64][]byte, payload []byte) (uint64, bool) {
	for seq, p := range acked {
		if bytes.Equal(p, payload) {
			return seq, true
		}
	}
	return 0, false
}
