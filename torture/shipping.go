package torture

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/backends/fs"
	"github.com/willibrandon/mtlog-audit/internal/faultbackend"
	"github.com/willibrandon/mtlog-audit/internal/shipcheck"
	"github.com/willibrandon/mtlog-audit/replica"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog/core"
)

// NetworkPartition ships a log to three filesystem backends while writers
// run and the network between the sink and each backend is cut, delayed,
// blackholed and healed at random, and cuts the power of the log's disk at
// a random operation (the shipper dies with it).
//
// Pass: every event acknowledged before the crash survives it; after the
// network heals and the log is reopened, every sealed segment and signed
// checkpoint reaches the quorum, no backend holds two objects for one seal
// or an object that is not a prefix of the local segment, and the cursor
// claims nothing a backend lacks.
type NetworkPartition struct{}

// Name returns "NetworkPartition".
func (NetworkPartition) Name() string { return "NetworkPartition" }

// Doc describes the scenario and its pass criteria.
func (NetworkPartition) Doc() string {
	return "Shipping to 3 filesystem backends (quorum 1-3) while 1-3 writers run on vfs.CrashFS; the network to each backend is cut, " +
		"delayed, blackholed, cut after the object landed and healed at random, and the power is cut at a random filesystem operation " +
		"(the shipper dies with it). Pass: every acknowledged event survives; after healing and reopening, every sealed segment and " +
		"checkpoint reaches the quorum, no backend holds two objects for one seal or one that is not a prefix of the local segment, " +
		"and the cursor claims nothing a backend lacks."
}

// Run runs one iteration.
func (NetworkPartition) Run(ctx context.Context, it Iteration) Outcome {
	return runShipping(ctx, it, false)
}

// ByzantineBackend ships a log to two honest filesystem backends and one
// that lies: it acknowledges without storing, or returns stale, truncated
// or bit-flipped objects, and lists objects that do not exist.
//
// Pass: the lying backend is never counted (the cursor claims nothing for
// it), the shipper tells the failure handler which backend it is, and the
// honest backends reach the quorum with every object intact. Then, with
// the liar still lying, a restore from all three backends verifies, holds
// every acknowledged event, takes nothing from the liar and names it among
// the bad objects, and replica.Compare (verify --remote) of the log with
// the liar matches no segment and reports its bad objects.
type ByzantineBackend struct{}

// Name returns "ByzantineBackend".
func (ByzantineBackend) Name() string { return "ByzantineBackend" }

// Doc describes the scenario and its pass criteria.
func (ByzantineBackend) Doc() string {
	return "Shipping to 2 honest filesystem backends and 1 that acknowledges without storing, or returns stale, truncated or " +
		"bit-flipped objects, and lists objects that do not exist, while 1-3 writers run and the power is cut at a random operation. " +
		"Pass: the lying backend is never counted towards the quorum (the cursor claims nothing for it) and the failure handler names it; " +
		"every acknowledged event survives; the honest backends reach the quorum with every object intact. Then, with the liar still lying, " +
		"a restore from all three verifies, holds every acknowledged event, takes nothing from the liar and names it, and " +
		"replica.Compare (verify --remote) with the liar matches no segment and reports its bad objects."
}

// Run runs one iteration.
func (ByzantineBackend) Run(ctx context.Context, it Iteration) Outcome {
	return runShipping(ctx, it, true)
}

// runShipping is one iteration of NetworkPartition or, with liar, of
// ByzantineBackend.
func runShipping(ctx context.Context, it Iteration, liar bool) Outcome {
	rng := it.Rand()
	skey, vkey := keyPair(it.Seed)
	writers := 1 + rng.IntN(3)
	perWriter := 1 + rng.IntN(20)
	segSize := 2048 + 512*rng.Int64N(4)
	cpEvery := 1 + rng.IntN(8)
	quorum := 1 + rng.IntN(3)
	var lies faultbackend.Lie
	if liar {
		quorum = 1 + rng.IntN(2)
		lies = []faultbackend.Lie{faultbackend.LieAckWithoutStoring, faultbackend.LieStaleRead, faultbackend.LieTruncatedRead, faultbackend.LieBitFlipRead}[rng.IntN(4)]
		if rng.IntN(2) == 0 {
			lies |= faultbackend.LiePhantomList
		}
	}
	n := writers * perWriter
	crashAt := 1 + rng.Int64N(int64(20+8*n))
	co := crashOptions(rng)
	chaos := newRand(rng.Uint64())
	events, payloads, written := drawEvents(rng, writers, perWriter)
	setup := fmt.Sprintf("%d writers × %d events, segment size %d, checkpoint every %d, quorum %d of 3, lies %b, crash before op %d, survive %+v",
		writers, perWriter, segSize, cpEvery, quorum, lies, crashAt, co)

	tmp, err := os.MkdirTemp(it.TempDir, "torture-ship-")
	if err != nil {
		return skipped("temporary directory: %v", err)
	}
	defer os.RemoveAll(tmp)
	fbs := make([]*faultbackend.Backend, 3)
	bs := make([]backends.Backend, 3)
	for i := range fbs {
		dir := filepath.Join(tmp, fmt.Sprintf("remote%d", i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			return skipped("backend directory: %v", err)
		}
		b, err := fs.New(dir)
		if err != nil {
			return skipped("backend: %v", err)
		}
		fbs[i] = faultbackend.New(b)
		bs[i] = fbs[i]
	}
	liarName := ""
	if liar {
		fbs[2].SetLies(lies)
		liarName = fbs[2].Name()
	}
	var (
		hmu      sync.Mutex
		named    bool // the failure handler named the liar
		rejected = fmt.Errorf("no read-back mismatch reported")
	)
	handler := func(ev *core.LogEvent, err error) {
		var se *replica.ShipError
		if ev == nil && errors.As(err, &se) && se.Backend == liarName && errors.Is(err, replica.ErrReadBack) {
			hmu.Lock()
			named, rejected = true, nil
			hmu.Unlock()
		}
	}
	shipOpts := []audit.Option{
		audit.WithShipping(quorum, bs...),
		audit.WithShippingRetry(time.Millisecond, 5*time.Millisecond),
		// Close ships what is left for at most this: the network may be
		// cut then, and the reopened sink ships the rest (checked below).
		audit.WithShippingCloseTimeout(50 * time.Millisecond),
		audit.WithFailureHandler(handler),
	}

	fsys := vfs.NewCrashFS()
	acked := newAcks()
	var (
		mu        sync.Mutex
		clone     *vfs.CrashFS
		atCrash   map[uint64][]byte
		ops       atomic.Int64
		crashedAt atomic.Bool
	)
	var netMu sync.Mutex // the weather never heals a network the crash cut
	crash := func() {
		// The shipper dies with the machine: nothing it reads from now
		// on reaches a backend.
		netMu.Lock()
		crashedAt.Store(true)
		for _, b := range fbs {
			b.SetNet(faultbackend.NetCut, 0)
		}
		netMu.Unlock()
		snap := acked.snapshot()
		c := fsys.CrashClone(co)
		mu.Lock()
		clone, atCrash = c, snap
		mu.Unlock()
	}
	fsys.SetHook(func(vfs.Op) {
		if ops.Add(1) == crashAt {
			crash()
		}
	})
	sink, err := audit.New(sinkOptions(fsys, skey, segSize, cpEvery, shipOpts...)...)
	if err != nil {
		return failed(0, 0, "open a new log: %v (%s)", err, setup)
	}
	faults := 0
	stopChaos := make(chan struct{})
	chaosDone := make(chan int)
	go func() { // the network's weather, until the crash
		f := 0
		for !crashedAt.Load() {
			select {
			case <-stopChaos:
				chaosDone <- f
				return
			default:
			}
			b := fbs[chaos.IntN(3)]
			net := faultbackend.Net(chaos.IntN(5))
			delay := time.Duration(chaos.IntN(500)) * time.Microsecond
			netMu.Lock()
			if !crashedAt.Load() {
				b.SetNet(net, delay)
			}
			netMu.Unlock()
			if net != faultbackend.NetOK {
				f++
			}
			time.Sleep(time.Duration(chaos.IntN(2000)) * time.Microsecond)
		}
		<-stopChaos
		chaosDone <- f
	}()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, ev := range events[g] {
				if crashedAt.Load() || ctx.Err() != nil {
					return
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
	closeErr := sink.Close()
	close(stopChaos)
	faults += <-chaosDone
	fsys.SetHook(nil)
	mu.Lock()
	if clone == nil {
		mu.Unlock()
		crash()
		mu.Lock()
	}
	crashed, ackedNow := clone, atCrash
	mu.Unlock()
	faults++ // the power cut
	close(errs)
	if err := <-errs; err != nil && ctx.Err() == nil {
		return failed(faults, len(ackedNow), "a write failed on a healthy disk: %v (%s)", err, setup)
	}
	if closeErr != nil && ctx.Err() == nil {
		return failed(faults, len(ackedNow), "close on a healthy disk: %v (%s)", closeErr, setup)
	}
	if ctx.Err() != nil {
		return skipped("cancelled")
	}

	// The network heals (the liar goes on lying). Recover the log, check
	// it, and reopen it to ship what is left.
	for _, b := range fbs {
		b.SetNet(faultbackend.NetOK, 0)
	}
	if _, err := reopenCheck(ctx, crashed, skey, vkey, ackedNow, written, shipOpts...); err != nil {
		return failed(faults, len(ackedNow), "%v (%s)", err, setup)
	}
	sink, err = audit.New(sinkOptions(crashed, skey, segSize, cpEvery, shipOpts...)...)
	if err != nil {
		return failed(faults, len(ackedNow), "reopen to ship: %v (%s)", err, setup)
	}
	// The reopened ledger may sign a checkpoint after WaitShipped took
	// its measure: wait again for what is new (nothing is written).
	var (
		health   replica.Health
		complete int
		checkErr error
		helds    []shipcheck.Held
	)
	for round := 0; round < 5; round++ {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		err = sink.WaitShipped(wctx)
		cancel()
		health, _ = sink.ShippingHealth()
		complete, checkErr, helds = 0, nil, nil
		for i, b := range fbs {
			held, err := shipcheck.Check(ctx, crashed, logDir, b.Inner())
			if err != nil {
				checkErr = errors.Join(checkErr, fmt.Errorf("backend %d: %w", i, err))
			}
			helds = append(helds, held)
			if held.Complete && !(liar && i == 2) {
				complete++
			}
		}
		if err != nil || checkErr != nil || complete >= quorum {
			break
		}
	}
	cerr := sink.Close() // after it, the failure handler was told of every rejection
	switch {
	case ctx.Err() != nil:
		return skipped("cancelled")
	case err != nil:
		return failed(faults, len(ackedNow), "the quorum was not reached after healing: %v; health %+v (%s)", err, health, setup)
	case checkErr != nil:
		return failed(faults, len(ackedNow), "%v (%s)", checkErr, setup)
	case complete < quorum:
		return failed(faults, len(ackedNow), "%d backends hold everything, the quorum is %d: %+v; health %+v (%s)", complete, quorum, helds, health, setup)
	case cerr != nil:
		return failed(faults, len(ackedNow), "close: %v (%s)", cerr, setup)
	}
	if liar {
		faults++
		hmu.Lock()
		told, rerr := named, rejected
		hmu.Unlock()
		if got := health.Backends[2]; got.Held != (replica.BackendCursor{}) {
			return failed(faults, len(ackedNow), "the lying backend was counted: the cursor says it holds %+v (%s)", got.Held, setup)
		}
		if !told && health.Backends[2].Rejected > 0 {
			return failed(faults, len(ackedNow), "the failure handler was not told which backend lies: %v (%s)", rerr, setup)
		}
		// The liar goes on lying to restore and to the comparison.
		if err := restoreAndCompare(ctx, tmp, crashed, fbs, helds, lies, vkey, ackedNow, written); err != nil {
			if ctx.Err() != nil {
				return skipped("cancelled")
			}
			return failed(faults, len(ackedNow), "%v (%s)", err, setup)
		}
	}
	return passed(faults, len(ackedNow), "%d acknowledged events survived; quorum %d reached", len(ackedNow), quorum)
}

// restoreAndCompare is ByzantineBackend's last stage, after the shipping
// checks: a restore from every backend (fbs[2] lying as lies says) into a
// new directory must verify, hold every acknowledged event and only events
// written, take no segment from the liar and name it among the bad objects
// when it holds or lists anything; and replica.Compare of the log with the
// liar must match no segment and report a bad object (or, when it stores
// and lists nothing, fail with ErrEmptyBackend, naming it), while the
// comparison with an honest backend that holds everything finds nothing
// but the checkpoint the last Close signed.
func restoreAndCompare(ctx context.Context, tmp string, local vfs.FS, fbs []*faultbackend.Backend, helds []shipcheck.Held,
	lies faultbackend.Lie, vkey string, acked map[uint64][]byte, written map[string]bool) error {
	liar := fbs[2]
	liarName := liar.Name()
	held, err := liar.Inner().List(ctx, "")
	if err != nil {
		return fmt.Errorf("list what the lying backend holds: %w", err)
	}
	shipped := false // a segment object on an honest backend
	for _, b := range fbs[:2] {
		infos, err := b.Inner().List(ctx, replica.SegmentsPrefix)
		if err != nil {
			return fmt.Errorf("list %s: %w", b.Name(), err)
		}
		shipped = shipped || len(infos) > 0
	}
	if shipped {
		dir := filepath.Join(tmp, "restored")
		rep, err := audit.Restore(ctx, vfs.OS(), dir, []backends.Backend{fbs[0], fbs[1], liar}, audit.WithTrustedKeys(vkey))
		switch {
		case err != nil:
			return fmt.Errorf("restore from the 2 honest backends and the liar: %w; report %+v", err, rep)
		case !rep.Verified:
			return fmt.Errorf("the restored log does not verify: %+v", rep.Problem)
		}
		for _, seg := range rep.Segments {
			if slices.Contains(seg.Holders, liarName) {
				return fmt.Errorf("restore took segment %d (%s) with the lying backend among its holders %v", seg.Segment, seg.Key, seg.Holders)
			}
		}
		if len(held) > 0 || lies&faultbackend.LiePhantomList != 0 {
			named := false
			for _, bo := range rep.Bad {
				named = named || bo.Backend == liarName
			}
			if !named {
				return fmt.Errorf("restore did not name the lying backend (it holds %d objects, lies %b): bad objects %+v", len(held), lies, rep.Bad)
			}
		}
		got, _, err := readLog(ctx, vfs.OS(), dir)
		if err != nil {
			return fmt.Errorf("read the restored log: %w", err)
		}
		if err := checkAcked(got, acked); err != nil {
			return fmt.Errorf("the restored log: %w", err)
		}
		if err := checkOnlyWritten(got, written); err != nil {
			return fmt.Errorf("the restored log: %w", err)
		}
	}

	cmp, err := replica.Compare(ctx, local, logDir, liar)
	switch {
	case errors.Is(err, replica.ErrEmptyBackend) && len(held) == 0 && lies&faultbackend.LiePhantomList == 0:
		return nil // it stored nothing, and the error names it
	case err != nil:
		return fmt.Errorf("compare the log with the lying backend: %w", err)
	case cmp.Matching > 0:
		return fmt.Errorf("compare with the lying backend found %d segments matching: %+v", cmp.Matching, cmp.Diffs)
	case !slices.ContainsFunc(cmp.Diffs, func(d replica.Diff) bool { return d.Kind == replica.DiffBadObject }):
		return fmt.Errorf("compare with the lying backend (holding %d objects, lies %b) names no bad object: %+v", len(held), lies, cmp.Diffs)
	}
	for i, b := range fbs[:2] {
		if !helds[i].Complete {
			continue
		}
		honest, err := replica.Compare(ctx, local, logDir, b.Inner())
		if errors.Is(err, replica.ErrEmptyBackend) {
			continue // nothing was shipped
		}
		if err != nil {
			return fmt.Errorf("compare the log with %s: %w", b.Name(), err)
		}
		for _, d := range honest.Diffs {
			if d.Kind != replica.DiffMissingRemote || d.Segment != 0 { // the checkpoint the last Close signed is not shipped
				return fmt.Errorf("compare with the honest %s: %s %s", b.Name(), d.Kind, d.Detail)
			}
		}
	}
	return nil
}
