package torture

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// DiskFull fills the disk (vfs.FaultFS.SetWriteBudget over a vfs.CrashFS)
// at a random byte while a Sink writes from a few goroutines, with small
// segments and frequent checkpoints so that the disk fills in any write: a
// batch, a seal, a new segment's header, the tree or the checkpoint log.
//
// Pass: writes fail with an error rather than acknowledging; a power loss
// right after the first error (a CrashClone keeping a random subset of
// unsynced state) loses no event acknowledged before it (reopen succeeds,
// every acknowledged event present and byte-identical, the log verifies);
// once space is freed (SetWriteBudget(-1)) every Write succeeds again
// without reopening, Close succeeds, and after a power loss that keeps
// nothing unsynced every event acknowledged before and after the full disk
// is present and the log verifies with everything covered.
type DiskFull struct{}

// Name returns "DiskFull".
func (DiskFull) Name() string { return "DiskFull" }

// Doc describes the scenario and its pass criteria.
func (DiskFull) Doc() string {
	return "ENOSPC (vfs.FaultFS write budget over vfs.CrashFS) at a random byte while 1-3 goroutines write through a Sink with small segments " +
		"and frequent checkpoints. Pass: Write returns an error, never a receipt, for what did not fit; a power loss right after the first " +
		"error loses nothing acknowledged (reopen succeeds, acknowledged events byte-identical, verifies); after the space is freed the same " +
		"Sink accepts writes again, Close succeeds, and after a power loss every event acknowledged before and after is present and the log " +
		"verifies with every record covered."
}

// Run runs one iteration.
func (DiskFull) Run(ctx context.Context, it Iteration) Outcome {
	rng := it.Rand()
	skey, vkey := keyPair(it.Seed)
	writers := 1 + rng.IntN(3)
	perWriter := 2 + rng.IntN(8)
	after := 1 + rng.IntN(4)
	segSize := 2048 + 512*rng.Int64N(6)
	cpEvery := 1 + rng.IntN(4)
	budget := rng.Int64N(int64(1024 + 700*writers*perWriter))
	co := crashOptions(rng)
	events, payloads, written := drawEvents(rng, writers, perWriter, after) // the last writer's after the space is freed
	setup := fmt.Sprintf("%d writers × %d events, segment size %d, checkpoint every %d, disk full after %d more bytes, survive %+v",
		writers, perWriter, segSize, cpEvery, budget, co)

	crash := vfs.NewCrashFS()
	ffs := vfs.NewFaultFS(crash)
	sink, err := audit.New(sinkOptions(ffs, skey, segSize, cpEvery)...)
	if err != nil {
		return failed(0, 0, "open a new log: %v (%s)", err, setup)
	}
	defer sink.Close()
	ffs.SetWriteBudget(budget)
	acked := newAcks()
	var (
		once     sync.Once
		firstErr error
		atError  map[uint64][]byte
		crashed  *vfs.CrashFS
		sawError atomic.Bool
	)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, ev := range events[g] {
				if sawError.Load() || ctx.Err() != nil {
					return
				}
				r, err := sink.Write(ctx, ev)
				if err != nil {
					once.Do(func() {
						// Power loss right after the first error: the
						// acknowledged events must already be durable.
						firstErr = err
						atError = acked.snapshot()
						crashed = crash.CrashClone(co)
						sawError.Store(true)
					})
					return
				}
				acked.add(r.Seq, payloads[g][i])
			}
		}()
	}
	wg.Wait()
	faults := int(ffs.Stats().Faults)
	if ctx.Err() != nil {
		return skipped("cancelled")
	}
	if firstErr == nil {
		// The budget outlasted the workload (or only the checkpointer
		// hit the full disk): fill it now, then free it, below.
		setup += "; no Write failed"
	} else {
		setup += fmt.Sprintf("; first error: %v", firstErr)
		if _, err := reopenCheck(ctx, crashed, skey, vkey, atError, written); err != nil {
			return failed(faults, len(atError), "power loss after the disk filled: %v (%s)", err, setup)
		}
	}

	ffs.SetWriteBudget(-1)
	for i, ev := range events[writers] {
		r, err := sink.Write(ctx, ev)
		if err != nil {
			return failed(faults, acked.len(), "write %d after the space was freed: %v (the Sink did not resume; %s)", i, err, setup)
		}
		acked.add(r.Seq, payloads[writers][i])
	}
	if err := sink.Close(); err != nil {
		return failed(faults, acked.len(), "close after the space was freed: %v (%s)", err, setup)
	}
	all := acked.snapshot()
	final := crash.CrashClone(vfs.CrashOptions{Seed: co.Seed}) // keeps only what was synced
	if _, err := reopenCheck(ctx, final, skey, vkey, all, written); err != nil {
		return failed(faults, len(all), "after the space was freed and the log closed: %v (%s)", err, setup)
	}
	return passed(faults, len(all), "%d acknowledged events survived (%s)", len(all), setup)
}
