// Package benchrun measures how fast an audit.Sink makes events durable on
// this machine's disk: N concurrent writers call Sink.Write for a while, as
// fast as they can or at a steady paced rate, and every acknowledgement's
// latency goes into an HDR histogram. Before the run it measures the disk's
// own fdatasync latency in the same directory, which is the floor every
// durable write sits on. It is the engine of the `mtlog-audit bench` command
// and of the peer comparison in benchmarks/.
//
//	res, err := benchrun.Run(ctx, benchrun.Config{Duration: 10 * time.Second, Concurrency: 64, EventSize: 256})
//	if err != nil { ... }
//	res.WriteText(os.Stdout) // or res.JSON()
package benchrun

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// Sync modes accepted in Config.Sync.
const (
	// SyncDurable acknowledges a write only after its group commit's
	// fdatasync (audit.SyncDurable, the library's default).
	SyncDurable = "durable"
	// SyncInterval acknowledges a write once it is written, and fdatasyncs
	// every 10 ms (audit.SyncInterval): a power loss can lose up to that
	// much acknowledged data.
	SyncInterval = "interval"
)

// IntervalSyncPeriod is the fdatasync period used for Sync "interval".
const IntervalSyncPeriod = 10 * time.Millisecond

// DefaultFdatasyncSamples is the number of fdatasyncs Run times before the
// run when Config.FdatasyncSamples is 0.
const DefaultFdatasyncSamples = 200

// ProgressInterval is how often Run calls Config.Progress.
const ProgressInterval = 500 * time.Millisecond

// Histogram range: latencies are recorded in nanoseconds, with three
// significant digits, from 1 µs to one minute (longer ones are recorded as
// one minute).
const (
	histMin     = 1_000
	histMax     = int64(time.Minute)
	histSigFigs = 3
)

// Config describes one benchmark run.
type Config struct {
	// Dir is the directory the log is written in. "" creates a fresh
	// temporary directory (under $TMPDIR) that is removed afterwards. A
	// directory given here must be empty or not exist yet (Run will not
	// write benchmark events into an existing log); it is created if
	// needed and left in place, with the log in it, for inspection.
	Dir string
	// Duration is how long the writers run (after a short warm-up).
	Duration time.Duration
	// Concurrency is the number of goroutines calling Sink.Write (≥ 1).
	Concurrency int
	// EventSize is the encoded size of each event in bytes (≥ MinEventSize);
	// see SizedEvent.
	EventSize int
	// Sync is SyncDurable ("durable"; "" means the same) or SyncInterval
	// ("interval").
	Sync string
	// Rate is 0 to write as fast as possible (each writer issues its next
	// write as soon as the previous one is acknowledged), or a steady total
	// rate in events per second spread evenly over the writers (open-loop
	// pacing: writes are issued on a fixed schedule, and a writer that falls
	// behind issues its late writes at once rather than skipping them).
	Rate int
	// Signed signs the log with a throwaway key (integrity.GenerateKey):
	// the writer then also authenticates every batch and signs
	// checkpoints, so the run shows what signing costs.
	Signed bool
	// FdatasyncSamples is the number of 4 KiB write + fdatasync pairs timed
	// in Dir before the run (0: DefaultFdatasyncSamples).
	FdatasyncSamples int
	// Options are more options of the sink, given after the benchmark's
	// own: WithShipping to measure what shipping costs the writers, with
	// any backend (docs/replication.md).
	Options []audit.Option
	// Progress, if not nil, is called about every ProgressInterval from a
	// goroutine of Run's while the writers run. It should return quickly;
	// it is never called after Run returns.
	Progress func(Snapshot)
}

// Snapshot is the progress of a run so far.
type Snapshot struct {
	// Elapsed is the time since the writers started.
	Elapsed time.Duration
	// Events is the number of acknowledged writes so far.
	Events uint64
	// EventsPerSecond is Events ÷ Elapsed.
	EventsPerSecond float64
}

// Result is the outcome of a run.
type Result struct {
	// EventsPerSecond is acknowledged events ÷ Duration.
	EventsPerSecond float64
	// MBPerSecond is EventsPerSecond × EventBytes, in 10⁶ bytes per second
	// (encoded event bytes, not counting the log's framing).
	MBPerSecond float64
	// P50Ms, P99Ms and P999Ms are percentiles of the acknowledgement latency
	// (from calling Sink.Write to its return), in milliseconds.
	P50Ms, P99Ms, P999Ms float64
	// MaxMs is the slowest acknowledgement, in milliseconds.
	MaxMs float64
	// FdatasyncP50Ms and FdatasyncP99Ms are percentiles of the disk's raw
	// latency for a 4 KiB write + fdatasync, measured in the same directory
	// just before the run, in milliseconds.
	FdatasyncP50Ms, FdatasyncP99Ms float64
	// FdatasyncSamples is how many write + fdatasync pairs were timed.
	FdatasyncSamples int
	// RunSyncP50Ms and RunSyncP99Ms are percentiles of the log's own
	// fdatasync (and fsync) calls during the timed run: the disk's sync
	// latency under this load, which bounds the acknowledgement latency
	// (a write waits for at most the sync in progress and its own).
	RunSyncP50Ms, RunSyncP99Ms float64
	// RunSyncs is how many syncs the log made during the timed run.
	RunSyncs int64
	// AllocsPerEvent is the number of heap allocations (runtime.MemStats
	// Mallocs, whole process) during the timed run ÷ Events.
	AllocsPerEvent float64
	// Events is the number of acknowledged writes in the timed run.
	Events uint64
	// EventBytes is the encoded size of each event.
	EventBytes int
	// Duration is the measured time from the start of the timed run until
	// the last writer returned.
	Duration time.Duration
	// Config is the configuration, with defaults filled in.
	Config Config
	// Dir is the directory the log was written in (already removed if it
	// was a temporary one).
	Dir string
	// DirRemoved reports whether Dir was a temporary directory that Run
	// removed.
	DirRemoved bool
	// GoVersion, GOOS and GOARCH describe the Go toolchain and platform;
	// CPUs is runtime.NumCPU().
	GoVersion, GOOS, GOARCH string
	CPUs                    int
}

// Validate reports the first problem with c, or nil. Run calls it.
func (c Config) Validate() error {
	switch {
	case c.Duration <= 0:
		return fmt.Errorf("benchrun: duration must be positive, got %v", c.Duration)
	case c.Concurrency < 1:
		return fmt.Errorf("benchrun: concurrency must be at least 1, got %d", c.Concurrency)
	case c.EventSize < MinEventSize:
		return fmt.Errorf("benchrun: event size must be at least %d bytes, got %d", MinEventSize, c.EventSize)
	case c.Sync != "" && c.Sync != SyncDurable && c.Sync != SyncInterval:
		return fmt.Errorf("benchrun: unknown sync mode %q (use %q or %q)", c.Sync, SyncDurable, SyncInterval)
	case c.Rate < 0:
		return fmt.Errorf("benchrun: rate must be 0 (as fast as possible) or positive, got %d", c.Rate)
	case c.FdatasyncSamples < 0:
		return fmt.Errorf("benchrun: fdatasync samples must be ≥ 0, got %d", c.FdatasyncSamples)
	}
	return nil
}

// MeasureFdatasync appends 4 KiB to a new file in dir and fdatasyncs it, n
// times, and returns the median and 99th percentile of the time each write +
// fdatasync pair took. The file is removed afterwards. On systems without
// fdatasync it times fsync.
func MeasureFdatasync(ctx context.Context, dir string, n int) (p50, p99 time.Duration, err error) {
	if n < 1 {
		return 0, 0, fmt.Errorf("benchrun: fdatasync samples must be at least 1, got %d", n)
	}
	// The probe syncs through vfs, exactly as the log does.
	fsys := vfs.OS()
	name := filepath.Join(dir, fmt.Sprintf(".fdatasync-probe-%d", time.Now().UnixNano()))
	f, err := fsys.Create(name)
	if err != nil {
		return 0, 0, fmt.Errorf("benchrun: fdatasync probe: %w", err)
	}
	defer func() {
		cerr := f.Close()
		rerr := fsys.Remove(name)
		if err == nil {
			err = errors.Join(cerr, rerr)
			if err != nil {
				err = fmt.Errorf("benchrun: fdatasync probe: %w", err)
			}
		}
	}()
	block := make([]byte, 4096)
	for i := range block {
		block[i] = byte(i)
	}
	samples := make([]time.Duration, 0, n)
	for i := range n {
		if err := ctx.Err(); err != nil {
			return 0, 0, fmt.Errorf("benchrun: fdatasync probe: %w", err)
		}
		start := time.Now()
		if _, err := f.WriteAt(block, int64(i)*int64(len(block))); err != nil {
			return 0, 0, fmt.Errorf("benchrun: fdatasync probe: write: %w", err)
		}
		if err := f.Datasync(); err != nil {
			return 0, 0, fmt.Errorf("benchrun: fdatasync probe: fdatasync: %w", err)
		}
		samples = append(samples, time.Since(start))
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	return percentile(samples, 0.50), percentile(samples, 0.99), nil
}

// percentile returns the nearest-rank q-quantile of sorted samples.
func percentile(sorted []time.Duration, q float64) time.Duration {
	rank := int(q*float64(len(sorted))+0.999999) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}

// writerState is one writer's counters, padded so that writers do not share
// cache lines.
type writerState struct {
	events atomic.Uint64
	hist   *hdrhistogram.Histogram
	_      [48]byte
}

// Run measures the disk's fdatasync latency in cfg.Dir, opens an
// audit.Sink there, warms it up with two writes per writer, and then runs
// cfg.Concurrency writers of cfg.EventSize-byte events for cfg.Duration. If
// ctx ends or a write fails during the run, Run stops the writers and
// returns the result so far (nil if nothing was acknowledged) together with
// an error wrapping ctx.Err() or the write's error.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Sync == "" {
		cfg.Sync = SyncDurable
	}
	if cfg.FdatasyncSamples == 0 {
		cfg.FdatasyncSamples = DefaultFdatasyncSamples
	}
	ev, evBytes, err := SizedEvent(cfg.EventSize)
	if err != nil {
		return nil, err
	}

	dir, temp, err := prepareDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if temp {
		defer func() {
			if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
				err = fmt.Errorf("benchrun: remove %s: %w", dir, rerr)
			}
		}()
	}

	fp50, fp99, err := MeasureFdatasync(ctx, dir, cfg.FdatasyncSamples)
	if err != nil {
		return nil, err
	}

	timer := newSyncTimer(vfs.OS())
	opts := []audit.Option{audit.WithWAL(dir), audit.WithFileSystem(timer)}
	if cfg.Sync == SyncInterval {
		opts = append(opts, audit.WithSyncMode(audit.SyncInterval, IntervalSyncPeriod))
	}
	if cfg.Signed {
		skey, _, err := integrity.GenerateKey("bench.mtlog-audit.example/log")
		if err != nil {
			return nil, fmt.Errorf("benchrun: signing key: %w", err)
		}
		opts = append(opts, audit.WithSigningKey(skey))
	}
	sink, err := audit.New(append(opts, cfg.Options...)...)
	if err != nil {
		return nil, fmt.Errorf("benchrun: open sink: %w", err)
	}
	defer func() {
		if cerr := sink.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("benchrun: close sink: %w", cerr)
		}
	}()

	events, hist, elapsed, allocs, runErr := drive(ctx, cfg, sink, ev, timer.reset)
	sp50, sp99, syncs := timer.quantiles()
	if runErr != nil && events == 0 {
		return nil, runErr
	}

	res = &Result{
		FdatasyncP50Ms:   ms(fp50),
		FdatasyncP99Ms:   ms(fp99),
		FdatasyncSamples: cfg.FdatasyncSamples,
		RunSyncP50Ms:     ms(sp50),
		RunSyncP99Ms:     ms(sp99),
		RunSyncs:         syncs,
		Events:           events,
		EventBytes:       evBytes,
		Duration:         elapsed,
		Config:           cfg,
		Dir:              dir,
		DirRemoved:       temp,
		GoVersion:        runtime.Version(),
		GOOS:             runtime.GOOS,
		GOARCH:           runtime.GOARCH,
		CPUs:             runtime.NumCPU(),
	}
	if elapsed > 0 {
		res.EventsPerSecond = float64(events) / elapsed.Seconds()
		res.MBPerSecond = res.EventsPerSecond * float64(evBytes) / 1e6
	}
	if events > 0 {
		res.AllocsPerEvent = float64(allocs) / float64(events)
		res.P50Ms = ms(time.Duration(hist.ValueAtQuantile(50)))
		res.P99Ms = ms(time.Duration(hist.ValueAtQuantile(99)))
		res.P999Ms = ms(time.Duration(hist.ValueAtQuantile(99.9)))
		res.MaxMs = ms(time.Duration(hist.Max()))
	}
	return res, runErr
}

// prepareDir returns the directory to write in and whether it is a
// temporary one to remove afterwards.
func prepareDir(dir string) (string, bool, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "mtlog-audit-bench-*")
		if err != nil {
			return "", false, fmt.Errorf("benchrun: create temporary directory: %w", err)
		}
		return d, true, nil
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", false, fmt.Errorf("benchrun: create %s: %w", dir, err)
		}
	case err != nil:
		return "", false, fmt.Errorf("benchrun: %w", err)
	case len(entries) > 0:
		return "", false, fmt.Errorf("benchrun: %s is not empty: give an empty or new directory (the benchmark writes a log of its own there)", dir)
	}
	return dir, false, nil
}

// drive runs the warm-up and the timed writers. It returns the number of
// acknowledged events, their merged latency histogram, the elapsed time,
// the heap allocations made meanwhile, and the first error.
func drive(ctx context.Context, cfg Config, sink *audit.Sink, ev *audit.Event, warmedUp func()) (uint64, *hdrhistogram.Histogram, time.Duration, uint64, error) {
	n := cfg.Concurrency
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Warm-up: every writer's first writes fill the sink's buffer pool and
	// the runtime's per-goroutine caches; they are not measured.
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2 {
				if _, err := sink.Write(ctx, ev); err != nil {
					fail(fmt.Errorf("benchrun: warm-up write: %w", err))
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, nil, 0, 0, firstErr
	}

	writers := make([]writerState, n)
	for i := range writers {
		writers[i].hist = hdrhistogram.New(histMin, histMax, histSigFigs)
	}
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Second / time.Duration(cfg.Rate)
		if interval <= 0 {
			interval = 1
		}
	}

	warmedUp()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	deadline := start.Add(cfg.Duration)

	progressDone := make(chan struct{})
	progressExited := make(chan struct{})
	go func() {
		defer close(progressExited)
		if cfg.Progress == nil {
			return
		}
		t := time.NewTicker(ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-progressDone:
				return
			case now := <-t.C:
				var total uint64
				for i := range writers {
					total += writers[i].events.Load()
				}
				el := now.Sub(start)
				cfg.Progress(Snapshot{Elapsed: el, Events: total, EventsPerSecond: float64(total) / el.Seconds()})
			}
		}
	}()

	for w := range n {
		wg.Add(1)
		go func(st *writerState) {
			defer wg.Done()
			for k := int64(0); ; k++ {
				if ctx.Err() != nil {
					return
				}
				if interval > 0 {
					// Writer w's k-th write is the (k·n + w)-th of the
					// whole schedule.
					at := start.Add(time.Duration(k*int64(n)+int64(w)) * interval)
					if !at.Before(deadline) {
						return
					}
					sleepUntil(ctx, at)
				} else if !time.Now().Before(deadline) {
					return
				}
				t0 := time.Now()
				if _, err := sink.Write(ctx, ev); err != nil {
					if ctx.Err() == nil {
						fail(fmt.Errorf("benchrun: write: %w", err))
					}
					return
				}
				d := time.Since(t0).Nanoseconds()
				_ = st.hist.RecordValue(min(max(d, histMin), histMax))
				st.events.Add(1)
			}
		}(&writers[w])
	}
	wg.Wait()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	close(progressDone)
	<-progressExited

	merged := hdrhistogram.New(histMin, histMax, histSigFigs)
	var events uint64
	for i := range writers {
		events += writers[i].events.Load()
		merged.Merge(writers[i].hist)
	}
	if firstErr == nil && ctx.Err() != nil {
		// Only the caller's context can have ended: fail() sets firstErr.
		firstErr = fmt.Errorf("benchrun: interrupted: %w", context.Cause(ctx))
	}
	return events, merged, elapsed, after.Mallocs - before.Mallocs, firstErr
}

// sleepUntil waits until t, in steps of at most 50 ms so that an ended ctx
// is noticed. (time.Sleep reuses the goroutine's timer, so pacing does not
// allocate.)
func sleepUntil(ctx context.Context, t time.Time) {
	for ctx.Err() == nil {
		d := time.Until(t)
		if d <= 0 {
			return
		}
		time.Sleep(min(d, 50*time.Millisecond))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
