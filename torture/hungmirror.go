package torture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/replica"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog/core"
)

// HungMirror runs a Sink with 2 or 3 mirrors (audit.WithRedundancy) and a
// quorum of k copies with a short timeout per copy
// (audit.WithRedundancyQuorum), and while 1-3 goroutines write, makes
// random mirrors hang (vfs.FaultFS.Hang: every mutation blocks), fail
// writes or syncs with EIO, or run out of space, leaving at least k copies
// healthy (in one iteration in five, possibly fewer).
//
// Pass: a Write fails only when fewer than k copies are current (a healthy
// copy that misses its deadline on a busy machine is stale too, and is
// counted), and then fails rather than blocks; a copy that hung before an
// acknowledged write is stale; the failure handler is told once per stale copy, with a
// *audit.MirrorStaleError naming it, and Sink.Mirrors agrees; Close
// returns although copies still hang; a power loss right after the writes
// (a CrashClone keeping a random subset of unsynced state) leaves every
// acknowledged event in the primary and in every copy that was current,
// each opened alone; and once the copies answer again, New repairs them:
// every copy holds the same files, verifies, and holds every acknowledged
// event, both on the live disks and after the power loss.
type HungMirror struct{}

// Name returns "HungMirror".
func (HungMirror) Name() string { return "HungMirror" }

// Doc describes the scenario and its pass criteria.
func (HungMirror) Doc() string {
	return "2-3 mirrors with a quorum of k copies and a 20-80 ms timeout per copy (WithRedundancyQuorum); while 1-3 goroutines write, " +
		"random mirrors hang (every mutation blocks), fail writes or syncs with EIO, or fill up, leaving at least k copies healthy (in one " +
		"iteration in five possibly fewer). Pass: a Write fails only when fewer than k copies are current, and then returns rather than " +
		"blocks; a copy that hung before an acknowledged write is stale; each stale copy is reported once (*MirrorStaleError) and by " +
		"Sink.Mirrors; Close returns while copies hang; after a power loss the primary and every copy that was current each hold every " +
		"acknowledged event; once the copies answer again New repairs them: identical copies that verify and hold every acknowledged " +
		"event, on the live disks and after the power loss."
}

// mirrorFault is a fault of one mirror, injected before writer 0's event
// at.
type mirrorFault struct {
	mirror   int
	kind     string // "hang", "eio-write", "eio-sync" or "full"
	at       int
	budget   int64 // "full": bytes that still fit
	injected bool  // set by inject (a writer that failed first may never get there)
	hit      bool  // writer 0 wrote event at (which reaches every current copy) after inject
}

func (f mirrorFault) String() string {
	if f.kind == "full" {
		return fmt.Sprintf("mirror%d %s after %d bytes at event %d", f.mirror+1, f.kind, f.budget, f.at)
	}
	return fmt.Sprintf("mirror%d %s at event %d", f.mirror+1, f.kind, f.at)
}

func (f *mirrorFault) inject(ffs *vfs.FaultFS) {
	f.injected = true
	switch f.kind {
	case "hang":
		ffs.Hang()
	case "eio-write":
		ffs.FailWrites(syscall.EIO)
	case "eio-sync":
		ffs.FailSyncs(syscall.EIO)
	case "full":
		ffs.SetWriteBudget(f.budget)
	}
}

// heal undoes every fault of ffs (Release returns once every hung call
// has returned).
func heal(ffs *vfs.FaultFS) {
	ffs.FailWrites(nil)
	ffs.FailSyncs(nil)
	ffs.SetWriteBudget(-1)
	ffs.Release()
}

// Run runs one iteration.
func (HungMirror) Run(ctx context.Context, it Iteration) Outcome {
	rng := it.Rand()
	skey, vkey := keyPair(it.Seed)
	mirrors := 2 + rng.IntN(2)
	quorum := 1 + rng.IntN(mirrors)          // copies, the primary included
	faulty := 1 + rng.IntN(mirrors+1-quorum) // leaves at least quorum copies healthy
	if rng.IntN(5) == 0 {
		faulty = 1 + rng.IntN(mirrors) // may leave too few: writes must then fail, not block
	}
	writers := 1 + rng.IntN(3)
	perWriter := 3 + rng.IntN(12)
	segSize := 2048 + 512*rng.Int64N(6)
	cpEvery := 1 + rng.IntN(4)
	timeout := time.Duration(20+rng.IntN(61)) * time.Millisecond
	co := crashOptions(rng)
	events, payloads, written := drawEvents(rng, writers, perWriter)
	var faults []mirrorFault
	for _, m := range rng.Perm(mirrors)[:faulty] {
		f := mirrorFault{mirror: m, kind: []string{"hang", "hang", "eio-write", "eio-sync", "full"}[rng.IntN(5)], at: rng.IntN(perWriter + 1)}
		if f.kind == "full" {
			f.budget = rng.Int64N(4096)
		}
		faults = append(faults, f)
	}
	setup := fmt.Sprintf("%d mirrors, quorum %d, timeout %v, %d writers × %d events, segment size %d, checkpoint every %d, faults %v, survive %+v",
		mirrors, quorum, timeout, writers, perWriter, segSize, cpEvery, faults, co)

	crash := vfs.NewCrashFS()
	dirs := []string{logDir}
	ffs := make([]*vfs.FaultFS, mirrors)
	routes := map[string]vfs.FS{}
	for i := range mirrors {
		d := fmt.Sprintf("/mirror%d", i+1)
		dirs = append(dirs, d)
		ffs[i] = vfs.NewFaultFS(crash)
		routes[d] = ffs[i]
	}
	defer func() {
		for _, f := range ffs {
			heal(f)
		}
	}()
	fsys := routedFS{base: crash, routes: routes}
	stale := &staleReports{}
	redundancy := []audit.Option{audit.WithRedundancy(dirs[1:]...), audit.WithFailureHandler(stale.handler)}
	sink, err := audit.New(sinkOptions(fsys, skey, segSize, cpEvery, append(redundancy, audit.WithRedundancyQuorum(quorum, timeout))...)...)
	if errors.Is(err, vfs.ErrMirrorQuorum) {
		// Healthy copies missed the deadline on a busy machine while
		// New created the log's first files: a failure the policy
		// allows, not one this iteration can test further.
		return passed(0, 0, "New lost its quorum to slow copies: %v (%s)", err, setup)
	}
	if err != nil {
		return failed(0, 0, "open a new log: %v (%s)", err, setup)
	}
	defer sink.Close()

	acked := newAcks()
	var mu sync.Mutex
	var writeErrs []error
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, ev := range events[g] {
				if g == 0 {
					for j := range faults {
						if f := &faults[j]; f.at == i {
							f.inject(ffs[f.mirror])
						}
					}
				}
				if ctx.Err() != nil {
					return
				}
				r, err := sink.Write(ctx, ev)
				if err != nil {
					mu.Lock()
					writeErrs = append(writeErrs, err)
					mu.Unlock()
					return
				}
				acked.add(r.Seq, payloads[g][i])
				if g == 0 {
					for j := range faults {
						if f := &faults[j]; f.at == i {
							f.hit = true
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return skipped("cancelled")
	}
	for j := range faults { // a fault due after writer 0's last event
		if f := &faults[j]; f.at == perWriter {
			f.inject(ffs[f.mirror])
		}
	}
	nfaults := len(faults)
	all := acked.snapshot()
	// The copies current now were current at every acknowledgement (a
	// copy never becomes current again): each holds every event.
	status := sink.Mirrors()
	current := []string{logDir}
	for _, st := range status {
		if st.State == audit.MirrorCurrent {
			current = append(current, st.Dir)
		}
	}
	if len(writeErrs) > 0 && len(current) >= quorum {
		return failed(nfaults, len(all), "a write failed with %d copies current and a quorum of %d: %v (%s)", len(current), quorum, writeErrs[0], setup)
	}
	lost := crash.CrashClone(co)
	for _, d := range current {
		if err := aloneCheck(ctx, lost.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1}), d, skey, vkey, all, written); err != nil {
			return failed(nfaults, len(all), "power loss: copy %s (current) opened alone: %v (%s)", d, err, setup)
		}
	}

	closeErr := sink.Close() // must return although copies hang
	final := sink.Mirrors()
	nowCurrent := 1
	for _, st := range final {
		if st.State == audit.MirrorCurrent {
			nowCurrent++
		}
	}
	if closeErr != nil && nowCurrent >= quorum {
		return failed(nfaults, len(all), "close with %d copies current and a quorum of %d: %v (%s)", nowCurrent, quorum, closeErr, setup)
	}
	if err := stale.agree(final); err != nil {
		return failed(nfaults, len(all), "%v (%s)", err, setup)
	}
	for _, f := range faults {
		if f.kind == "hang" && f.hit && final[f.mirror].State != audit.MirrorStale {
			return failed(nfaults, len(all), "mirror%d hung before an acknowledged write and is still current (%s)", f.mirror+1, setup)
		}
	}
	for _, f := range ffs {
		heal(f)
	}
	if err := unblocked(ctx, sink); err != nil {
		return skipped("%v", err)
	}

	// The copies answer again: New repairs them, on the live disks and
	// after the power loss.
	for _, tc := range []struct {
		what string
		fsys vfs.FS
	}{{"live", crash}, {"after the power loss", lost}} {
		s, err := audit.New(sinkOptions(tc.fsys, skey, 1<<20, 1<<20, audit.WithRedundancy(dirs[1:]...), audit.WithFailureHandler(func(*core.LogEvent, error) {}))...)
		if err != nil {
			return failed(nfaults, len(all), "%s: reopen with the copies answering again: %v (%s)", tc.what, err, setup)
		}
		if err := s.Close(); err != nil {
			return failed(nfaults, len(all), "%s: close after the repair: %v (%s)", tc.what, err, setup)
		}
		if err := sameFiles(tc.fsys, dirs); err != nil {
			return failed(nfaults, len(all), "%s: after the repair: %v (%s)", tc.what, err, setup)
		}
		for _, d := range dirs {
			if err := logCheck(ctx, tc.fsys, d, vkey, all, written); err != nil {
				return failed(nfaults, len(all), "%s: after the repair, copy %s: %v (%s)", tc.what, d, err, setup)
			}
		}
	}
	return passed(nfaults, len(all), "%d acknowledged events survived; %d of %d copies current at the end, %d writes failed (%s)",
		len(all), nowCurrent, len(dirs), len(writeErrs), setup)
}

// unblocked waits until no call on a stale copy of sink is still running
// (a call that missed its deadline lands when the copy answers again; the
// repair must come after it). Nothing signals that, so it polls.
func unblocked(ctx context.Context, sink *audit.Sink) error {
	for {
		n := 0
		for _, st := range sink.Mirrors() {
			n += st.Blocked
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cancelled with %d calls still blocked on stale copies", n)
		case <-time.After(200 * time.Microsecond):
		}
	}
}

// aloneCheck opens the copy in dir on fsys as a log of its own (recovering
// it), closes it, and checks it with logCheck.
func aloneCheck(ctx context.Context, fsys vfs.FS, dir, skey, vkey string, acked map[uint64][]byte, written map[string]bool) error {
	s, err := audit.New(sinkOptions(fsys, skey, 1<<20, 1<<20, audit.WithWAL(dir))...)
	if err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	if err := s.Close(); err != nil {
		return fmt.Errorf("close after reopen: %w", err)
	}
	return logCheck(ctx, fsys, dir, vkey, acked, written)
}

// logCheck verifies the closed log in dir (every record covered) and
// checks that it holds every acknowledged event and only events written.
func logCheck(ctx context.Context, fsys vfs.FS, dir, vkey string, acked map[uint64][]byte, written map[string]bool) error {
	if _, err := verify(ctx, fsys, dir, vkey, true); err != nil {
		return err
	}
	got, _, err := readLog(ctx, fsys, dir)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if err := checkAcked(got, acked); err != nil {
		return err
	}
	return checkOnlyWritten(got, written)
}

// sameFiles reports the first managed file that differs between the
// copies in dirs.
func sameFiles(fsys vfs.FS, dirs []string) error {
	read := func(dir string) (map[string]string, error) {
		names, err := fsys.List(dir)
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		for _, n := range names {
			if !replica.ManagedName(n) {
				continue
			}
			f, err := fsys.Open(path.Join(dir, n))
			if err != nil {
				return nil, err
			}
			b, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<40))
			f.Close()
			if err != nil {
				return nil, err
			}
			out[n] = string(b)
		}
		return out, nil
	}
	want, err := read(dirs[0])
	if err != nil {
		return err
	}
	for _, d := range dirs[1:] {
		got, err := read(d)
		if err != nil {
			return err
		}
		if !maps.Equal(got, want) {
			return fmt.Errorf("copies %s and %s differ: %v vs %v", dirs[0], d, slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got)))
		}
	}
	return nil
}

// staleReports collects the *audit.MirrorStaleError values the failure
// handler is given.
type staleReports struct {
	mu   sync.Mutex
	dirs []string
	errs []error
}

func (r *staleReports) handler(ev *core.LogEvent, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var se *audit.MirrorStaleError
	if errors.As(err, &se) && errors.Is(err, audit.ErrMirrorStale) {
		r.dirs = append(r.dirs, se.Dir)
		return
	}
	r.errs = append(r.errs, err)
}

// agree reports a difference between the stale copies reported and those
// that status lists as stale: each must be reported exactly once.
func (r *staleReports) agree(status []audit.MirrorStatus) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var want []string
	for _, st := range status {
		if st.State == audit.MirrorStale {
			if st.Err == nil || !strings.Contains(st.Err.Error(), st.Dir) {
				return fmt.Errorf("Mirrors(): stale copy %s without an error naming it: %v", st.Dir, st.Err)
			}
			want = append(want, st.Dir)
		}
	}
	got := slices.Sorted(slices.Values(r.dirs))
	if !slices.Equal(got, want) {
		return fmt.Errorf("the failure handler was told of stale copies %v, Mirrors() lists %v as stale", got, want)
	}
	for _, err := range r.errs {
		if !errors.Is(err, audit.ErrFailed) && !errors.Is(err, vfs.ErrMirrorQuorum) {
			return fmt.Errorf("the failure handler got an unexpected error: %v", err)
		}
	}
	return nil
}

// routedFS sends the paths under each of routes' directories to its FS
// and every other path to base.
type routedFS struct {
	base   vfs.FS
	routes map[string]vfs.FS
}

func (r routedFS) pick(name string) vfs.FS {
	c := path.Clean(name)
	for d, f := range r.routes {
		if c == d || strings.HasPrefix(c, d+"/") {
			return f
		}
	}
	return r.base
}

func (r routedFS) Create(n string) (vfs.File, error)        { return r.pick(n).Create(n) }
func (r routedFS) Open(n string) (vfs.File, error)          { return r.pick(n).Open(n) }
func (r routedFS) OpenReadWrite(n string) (vfs.File, error) { return r.pick(n).OpenReadWrite(n) }
func (r routedFS) Remove(n string) error                    { return r.pick(n).Remove(n) }
func (r routedFS) Rename(o, n string) error                 { return r.pick(o).Rename(o, n) }
func (r routedFS) MkdirAll(d string, p fs.FileMode) error   { return r.pick(d).MkdirAll(d, p) }
func (r routedFS) List(d string) ([]string, error)          { return r.pick(d).List(d) }
func (r routedFS) Stat(n string) (fs.FileInfo, error)       { return r.pick(n).Stat(n) }
func (r routedFS) SyncDir(d string) error                   { return r.pick(d).SyncDir(d) }
func (r routedFS) Lock(n, o string) (io.Closer, error)      { return r.pick(n).Lock(n, o) }
