package torture

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// RetentionCrash cuts the power at a random point of Sink.ApplyRetention:
// while the lifecycle event, the retention checkpoint or the removal of
// the segments is being written.
type RetentionCrash struct{}

// Name returns "RetentionCrash".
func (RetentionCrash) Name() string { return "RetentionCrash" }

// Doc describes the scenario and its pass criteria.
func (RetentionCrash) Doc() string {
	return "A signed log of small segments holds events spread over two years; retention of one year is applied and the power is cut " +
		"at a random mutating file operation of the run (or after it), keeping a random part of what was not synced. " +
		"Pass: the log reopens with the key and verifies; every acknowledged record after the pruned prefix (the retention " +
		"checkpoint that survived, if any) is there, byte for byte; a second run of retention finishes the removal and the log verifies again."
}

// Run runs one iteration.
func (RetentionCrash) Run(ctx context.Context, it Iteration) Outcome {
	rng := it.Rand()
	skey, vkey := keyPair(it.Seed)
	segSize := int64(2048 + 512*rng.IntN(4))
	events := 40 + rng.IntN(80)
	var clock atomic.Int64
	start := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	clock.Store(start.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	step := 2 * 365 * 24 * time.Hour / time.Duration(events)
	opts := []audit.Option{audit.WithClock(now), audit.WithRetention(365 * 24 * time.Hour)}
	setup := fmt.Sprintf("%d events over two years, segment size %d", events, segSize)

	fsys := vfs.NewCrashFS()
	sink, err := audit.New(sinkOptions(fsys, skey, segSize, 1, opts...)...)
	if err != nil {
		return failed(0, 0, "open a new log: %v (%s)", err, setup)
	}
	acked := map[uint64][]byte{}
	for i := range events {
		clock.Add(int64(step))
		ev := makeEvent(rng, 0, i, now())
		r, err := sink.Write(ctx, ev)
		if err != nil {
			sink.Close()
			return failed(0, len(acked), "write: %v (%s)", err, setup)
		}
		acked[r.Seq] = nil
	}
	got, _, err := readLog(ctx, fsys, logDir)
	if err != nil {
		sink.Close()
		return failed(0, len(acked), "read the log: %v (%s)", err, setup)
	}
	for seq := range acked {
		acked[seq] = got[seq].Payload
	}
	// The power cut: at the k-th mutating operation of the run.
	k := int64(rng.IntN(40))
	co := crashOptions(rng)
	var (
		mu    sync.Mutex
		state *vfs.CrashFS
	)
	base := fsys.Count()
	fsys.SetHook(func(vfs.Op) {
		mu.Lock()
		defer mu.Unlock()
		if state == nil && fsys.Count()-base >= k {
			state = fsys.CrashClone(co)
		}
	})
	rep, err := sink.ApplyRetention(ctx, false)
	fsys.SetHook(nil)
	if err != nil {
		sink.Close()
		return failed(1, len(acked), "apply retention on a healthy disk: %v (%s)", err, setup)
	}
	mu.Lock()
	if state == nil {
		state = fsys.CrashClone(co)
	}
	mu.Unlock()
	sink.Close()
	setup += fmt.Sprintf(", power cut at operation %d of the run, which deleted %d segments (records 1 to %d)", k, rep.Deleted, rep.PrunedTo)

	check := func(when string) Outcome {
		s, err := audit.New(sinkOptions(state, skey, segSize, 1, opts...)...)
		if err != nil {
			return failed(1, len(acked), "%s: reopen: %v (%s)", when, err, setup)
		}
		if err := s.Close(); err != nil {
			return failed(1, len(acked), "%s: close: %v (%s)", when, err, setup)
		}
		vr, err := verify(ctx, state, logDir, vkey, false)
		if err != nil {
			return failed(1, len(acked), "%s: %v (%s)", when, err, setup)
		}
		var pruned uint64
		if vr.Retention != nil {
			pruned = vr.Retention.Size
		}
		if raw, ok, _ := integrity.ReadRetention(state, logDir); ok != (vr.Retention != nil) || (ok && len(raw) == 0) {
			return failed(1, len(acked), "%s: the retention checkpoint was not used by verify (%s)", when, setup)
		}
		got, _, err := readLog(ctx, state, logDir)
		if err != nil {
			return failed(1, len(acked), "%s: read: %v (%s)", when, err, setup)
		}
		kept := map[uint64][]byte{}
		for seq, p := range acked {
			if seq > pruned {
				kept[seq] = p
			}
		}
		if err := checkAcked(got, kept); err != nil {
			return failed(1, len(acked), "%s: a retained record is lost: %v (%s)", when, err, setup)
		}
		return passed(1, len(acked), "%s", setup)
	}
	if out := check("after the power cut"); !out.Pass {
		return out
	}
	s, err := audit.New(sinkOptions(state, skey, segSize, 1, opts...)...)
	if err != nil {
		return failed(1, len(acked), "reopen for the second run: %v (%s)", err, setup)
	}
	_, err = s.ApplyRetention(ctx, false)
	s.Close()
	if err != nil {
		return failed(1, len(acked), "second retention run: %v (%s)", err, setup)
	}
	return check("after the second run")
}
