package torture

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// FsyncFailure makes fsync/fdatasync (and directory syncs) fail with EIO
// from a random sync on (vfs.FaultFS.FailSyncAfter over a vfs.CrashFS),
// while a Sink writes from a few goroutines: the failing sync may be a
// batch's, a seal's, a new segment's or its directory's, the tree's or the
// checkpoint log's. A failed sync never made anything durable, so the
// simulated disk drops whatever it pleases of the unsynced data.
//
// Pass: every Write error matches audit.ErrFailed; once any Write has
// returned an error, no Write that starts afterwards succeeds (the log
// fails closed, even though later syncs would work again); and on a fresh
// view of the disk after a power loss (a CrashClone keeping a random subset
// of unsynced state) the log reopens, every acknowledged event is present
// and byte-identical, and the log verifies with the key.
type FsyncFailure struct{}

// Name returns "FsyncFailure".
func (FsyncFailure) Name() string { return "FsyncFailure" }

// Doc describes the scenario and its pass criteria.
func (FsyncFailure) Doc() string {
	return "EIO from fsync/fdatasync/directory sync from a random sync on (vfs.FaultFS over vfs.CrashFS) while 1-3 goroutines write through " +
		"a Sink (batch, seal, segment creation, tree and checkpoint syncs). Pass: every Write error matches audit.ErrFailed; after the first " +
		"Write error no Write that starts later succeeds (fail closed, even once syncs work again); after a power loss on a fresh view of " +
		"the disk the log reopens, every acknowledged event is byte-identical and the log verifies."
}

// Run runs one iteration.
func (FsyncFailure) Run(ctx context.Context, it Iteration) Outcome {
	rng := it.Rand()
	skey, vkey := keyPair(it.Seed)
	writers := 1 + rng.IntN(3)
	perWriter := 2 + rng.IntN(8)
	segSize := 2048 + 512*rng.Int64N(6)
	cpEvery := 1 + rng.IntN(4)
	okSyncs := rng.IntN(4 + 3*writers*perWriter)
	healAfter := rng.IntN(3) == 0 // syncs work again after the first failure
	co := crashOptions(rng)
	events, payloads, written := drawEvents(rng, writers, perWriter)
	setup := fmt.Sprintf("%d writers × %d events, segment size %d, checkpoint every %d, EIO from sync %d on (heal: %v), survive %+v",
		writers, perWriter, segSize, cpEvery, okSyncs+1, healAfter, co)

	crash := vfs.NewCrashFS()
	ffs := vfs.NewFaultFS(crash)
	sink, err := audit.New(sinkOptions(ffs, skey, segSize, cpEvery)...)
	if err != nil {
		return failed(0, 0, "open a new log: %v (%s)", err, setup)
	}
	defer sink.Close()
	ffs.FailSyncAfter(okSyncs, syscall.EIO)

	acked := newAcks()
	var (
		clock     atomic.Int64 // orders Write starts and error returns
		errAt     atomic.Int64 // tick at which the first Write error returned (0: none yet)
		mu        sync.Mutex
		firstErr  error
		violation string
	)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, ev := range events[g] {
				if ctx.Err() != nil {
					return
				}
				start := clock.Add(1)
				r, err := sink.Write(ctx, ev)
				if err != nil {
					end := clock.Add(1)
					errAt.CompareAndSwap(0, end)
					mu.Lock()
					if firstErr == nil {
						firstErr = err
						if healAfter {
							ffs.FailSyncAfter(0, nil)
						}
					}
					if !isErr(err, audit.ErrFailed) && violation == "" {
						violation = fmt.Sprintf("writer %d event %d: the error does not match audit.ErrFailed: %v", g, i, err)
					}
					mu.Unlock()
					continue // keep trying: every later Write must fail too
				}
				if e := errAt.Load(); e != 0 && start > e {
					mu.Lock()
					if violation == "" {
						violation = fmt.Sprintf("writer %d event %d was acknowledged (seq %d) although it started after a Write had failed (fail closed violated)", g, i, r.Seq)
					}
					mu.Unlock()
				}
				acked.add(r.Seq, payloads[g][i])
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return skipped("cancelled")
	}
	faults := int(ffs.Stats().Faults)
	all := acked.snapshot()
	if violation != "" {
		return failed(faults, len(all), "%s (%s)", violation, setup)
	}
	if firstErr != nil {
		setup += fmt.Sprintf("; first error: %v", firstErr)
		// After the failure, not even a healthy disk brings the log back.
		ffs.FailSyncAfter(0, nil)
		if r, err := sink.Write(ctx, events[0][0]); err == nil {
			return failed(faults, len(all), "a Write succeeded (seq %d) after the log had failed and the disk healed: fail closed violated (%s)", r.Seq, setup)
		}
	}
	sink.Close() // may report the failure
	fresh := crash.CrashClone(co)
	if _, err := reopenCheck(ctx, fresh, skey, vkey, all, written); err != nil {
		return failed(faults, len(all), "%v (%s)", err, setup)
	}
	return passed(faults, len(all), "%d acknowledged events survived (%s)", len(all), setup)
}
