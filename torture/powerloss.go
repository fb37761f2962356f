package torture

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// PowerLoss cuts the power at a random filesystem operation of a Sink
// writing from a few goroutines on a simulated disk (vfs.CrashFS), with
// segments of a few events (so crashes land in rotations, directory changes
// and seals) and a signed checkpoint every few records (so they land in
// tree and checkpoint writes too). The disk keeps a seeded random subset of
// the unsynced 512 B or 4 KiB sectors and of the directory operations not
// yet synced: torn, reordered and lost writes. A third of the iterations
// also cut the power again in the middle of the recovery that follows.
//
// Pass: reopening the crashed log succeeds (unacknowledged damage is never
// reported as corruption); every event acknowledged before the crash is
// present, byte for byte, under its sequence number; no event record holds
// bytes that no writer wrote; and after Close the log verifies with the
// public key, every record covered by a signed checkpoint.
type PowerLoss struct{}

// Name returns "PowerLoss".
func (PowerLoss) Name() string { return "PowerLoss" }

// Doc describes the scenario and its pass criteria.
func (PowerLoss) Doc() string {
	return "Power loss at a random filesystem operation (writes, syncs, rotation, directory changes, tree and checkpoint writes) of a Sink " +
		"writing from 1-3 goroutines on vfs.CrashFS; the disk keeps a seeded random subset of unsynced 512 B/4 KiB sectors and directory " +
		"operations; a third of the iterations crash again during recovery. Pass: reopen succeeds (no ErrCorrupt for unacknowledged damage), " +
		"every acknowledged event is present and byte-identical, no event holds bytes nobody wrote, and after Close the log verifies with " +
		"the key with every record covered by a signed checkpoint."
}

// Run runs one iteration.
func (PowerLoss) Run(ctx context.Context, it Iteration) Outcome {
	rng := it.Rand()
	skey, vkey := keyPair(it.Seed)
	writers := 1 + rng.IntN(3)
	perWriter := 1 + rng.IntN(6)
	segSize := 2048 + 512*rng.Int64N(6)
	cpEvery := 1 + rng.IntN(4)
	n := writers * perWriter
	crashAt := 1 + rng.Int64N(int64(12+6*n)) // a run takes about 10+5n operations
	closeFirst := rng.IntN(4) == 0
	co := crashOptions(rng)
	again := rng.IntN(3) == 0
	recoverySeed := rng.Uint64()
	events, payloads, written := drawEvents(rng, writers, perWriter)
	setup := fmt.Sprintf("%d writers × %d events, segment size %d, checkpoint every %d, crash before op %d (close first: %v), survive %+v",
		writers, perWriter, segSize, cpEvery, crashAt, closeFirst, co)

	fsys := vfs.NewCrashFS()
	acked := newAcks()
	var (
		mu        sync.Mutex
		clone     *vfs.CrashFS
		atCrash   map[uint64][]byte
		crashOp   vfs.Op
		ops       atomic.Int64
		crashedAt atomic.Bool
	)
	crash := func(op vfs.Op) {
		snap := acked.snapshot() // before the clone: everything in it is durable in the clone
		c := fsys.CrashClone(co)
		mu.Lock()
		clone, atCrash, crashOp = c, snap, op
		mu.Unlock()
		crashedAt.Store(true)
	}
	fsys.SetHook(func(op vfs.Op) {
		if ops.Add(1) == crashAt {
			crash(op)
		}
	})
	sink, err := audit.New(sinkOptions(fsys, skey, segSize, cpEvery)...)
	if err != nil {
		return failed(0, 0, "open a new log: %v (%s)", err, setup)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, ev := range events[g] {
				if crashedAt.Load() || ctx.Err() != nil {
					return // the power is already off: what follows is never checked
				}
				r, err := sink.Write(ctx, ev)
				if err != nil {
					errs <- fmt.Errorf("writer %d event %d: %w", g, i, err)
					return
				}
				acked.add(r.Seq, payloads[g][i])
			}
		}()
	}
	wg.Wait()
	var closeErr error
	if closeFirst {
		closeErr = sink.Close()
	}
	fsys.SetHook(nil)
	mu.Lock()
	if clone == nil { // the crash point lay beyond the workload: crash now
		mu.Unlock()
		crash(vfs.Op{})
		mu.Lock()
	}
	crashed, ackedNow, op := clone, atCrash, crashOp
	mu.Unlock()
	if !closeFirst {
		closeErr = sink.Close()
	}
	close(errs)
	if err := <-errs; err != nil && ctx.Err() == nil {
		return failed(1, len(ackedNow), "a write failed on a healthy disk: %v (%s)", err, setup)
	}
	if closeErr != nil {
		return failed(1, len(ackedNow), "close on a healthy disk: %v (%s)", closeErr, setup)
	}
	setup += fmt.Sprintf("; crashed before %v %s %s at %d+%d", op.Kind, op.Name, op.NewName, op.Off, op.Len)

	faults := 1
	if again {
		var err error
		crashed, err = crashDuringRecovery(rand.New(rand.NewPCG(recoverySeed, 1)), crashed, skey)
		if err != nil {
			return failed(faults, len(ackedNow), "%v (%s)", err, setup)
		}
		faults++
		setup += "; crashed again during recovery"
	}
	if _, err := reopenCheck(ctx, crashed, skey, vkey, ackedNow, written); err != nil {
		return failed(faults, len(ackedNow), "%v (%s)", err, setup)
	}
	return passed(faults, len(ackedNow), "%d acknowledged events survived", len(ackedNow))
}

// crashDuringRecovery opens (recovering) and closes the log on fsys, cutting
// the power at a random operation of that, and returns what the disk then
// holds. Recovery must not fail: the state it starts from is a crash's.
func crashDuringRecovery(rng *rand.Rand, fsys *vfs.CrashFS, skey string) (*vfs.CrashFS, error) {
	probe := fsys.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
	var ops atomic.Int64
	probe.SetHook(func(vfs.Op) { ops.Add(1) })
	s, err := audit.New(sinkOptions(probe, skey, 1<<20, 1<<20)...)
	if err != nil {
		return nil, fmt.Errorf("reopen after the crash: %w", err)
	}
	if err := s.Close(); err != nil {
		return nil, fmt.Errorf("close after reopening after the crash: %w", err)
	}
	if ops.Load() == 0 {
		return fsys, nil
	}
	at := 1 + rng.Int64N(ops.Load())
	co := crashOptions(rng)
	var (
		mu      sync.Mutex
		crashed *vfs.CrashFS
		count   atomic.Int64
	)
	fsys.SetHook(func(vfs.Op) {
		if count.Add(1) == at {
			c := fsys.CrashClone(co)
			mu.Lock()
			crashed = c
			mu.Unlock()
		}
	})
	if s, err := audit.New(sinkOptions(fsys, skey, 1<<20, 1<<20)...); err == nil {
		s.Close()
	}
	fsys.SetHook(nil)
	mu.Lock()
	defer mu.Unlock()
	if crashed == nil {
		return fsys, nil
	}
	return crashed, nil
}
