package torture

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"time"
)

// Config configures Run.
type Config struct {
	// Scenarios names the scenarios to run (see Lookup); empty means all.
	Scenarios []string
	// Iterations is the number of iterations of each scenario. Zero means
	// one, unless Duration is set, in which case the scenarios run round
	// robin until Duration has passed.
	Iterations int
	// ScenarioIterations overrides Iterations for the scenarios it names
	// (by exact name).
	ScenarioIterations map[string]int
	// Duration, if positive, stops the run once it has passed (iterations
	// in flight finish first).
	Duration time.Duration
	// Seed is the base seed: iteration i of every scenario has seed
	// IterationSeed(Seed, i), and iteration 0 has seed Seed itself, so
	// that "--seed S --iterations 1" replays any iteration whose seed is
	// S. Zero picks a seed from the clock (reported in Summary.Seed).
	Seed int64
	// Workers is the number of iterations run at once; zero means
	// runtime.GOMAXPROCS(0).
	Workers int
	// Progress, if set, is called every ProgressInterval, and once at the
	// end, with the counts so far (from a goroutine of Run's).
	Progress func(Stats)
	// ProgressInterval is how often Progress is called; zero means 500ms.
	ProgressInterval time.Duration
	// ChildCommand returns the command that runs ChildMain(dir, seed) in a
	// new process (Kill9DuringWrite is skipped without it). ChildCommand
	// (this package's function) builds one for a binary that calls
	// MaybeChild first thing.
	ChildCommand func(dir string, seed int64) *exec.Cmd
	// TempDir is where scenarios create real directories; "" means
	// os.TempDir().
	TempDir string
	// IterationTimeout fails an iteration that has not returned after it
	// (a hang is a bug too); zero means 5 minutes. The iteration's context
	// is cancelled, but its goroutine cannot be stopped and is abandoned.
	IterationTimeout time.Duration
	// MaxFailures stops the run after this many failures; zero means never.
	MaxFailures int
	// MaxRecordedFailures bounds Summary.Failures (the rest are counted in
	// FailuresOmitted); zero means 1000.
	MaxRecordedFailures int
	// Command is how the replay command names the mtlog-audit binary;
	// "" means "mtlog-audit".
	Command string
}

// Stats are the counts of a run so far.
type Stats struct {
	// Elapsed is the time since the run started.
	Elapsed time.Duration
	// Iterations, Passes, Failures and Skipped count every scenario's
	// iterations.
	Iterations, Passes, Failures, Skipped int64
	// Scenarios has the counts of each scenario, in the order of All.
	Scenarios []ScenarioStats
}

// ScenarioStats are one scenario's counts.
type ScenarioStats struct {
	Name string
	// Iterations is the number of iterations finished; Passes, Failures
	// and Skipped split it.
	Iterations, Passes, Failures, Skipped int64
	// Faults is the number of faults injected, Acked the number of
	// acknowledged events whose survival was checked.
	Faults, Acked int64
	// Busy is the sum of the iterations' wall-clock times (a single
	// worker would have taken this long).
	Busy time.Duration
}

// PerIteration returns the mean wall-clock time of one iteration.
func (s ScenarioStats) PerIteration() time.Duration {
	if s.Iterations == 0 {
		return 0
	}
	return s.Busy / time.Duration(s.Iterations)
}

// IterationSeed returns the seed of iteration index of a run with base seed
// base: base itself for index 0, otherwise a mix of the two drawn from a
// PCG generator (never zero).
func IterationSeed(base int64, index int) int64 {
	if index == 0 {
		return base
	}
	s := int64(rand.New(rand.NewPCG(uint64(base), uint64(index))).Uint64())
	if s == 0 {
		s = 1
	}
	return s
}

// ReplayCommand returns the mtlog-audit command line that replays one
// iteration alone (command "" means "mtlog-audit").
func ReplayCommand(command, scenario string, seed int64) string {
	if command == "" {
		command = "mtlog-audit"
	}
	return fmt.Sprintf("%s torture --scenarios %s --seed %d --iterations 1", command, scenario, seed)
}

// ReplayTestCommand returns the go test command line that replays one
// iteration alone.
func ReplayTestCommand(scenario string, seed int64) string {
	return fmt.Sprintf("go test -tags=torture ./torture -run 'TestTorture/^%s$' -torture.seed=%d -torture.iterations=1", scenario, seed)
}

type job struct {
	sc    int // index into scenarios
	index int
}

type runState struct {
	mu        sync.Mutex
	start     time.Time
	stats     []ScenarioStats
	failures  []Failure
	omitted   int
	skips     []map[string]int
	nFailures int
}

func (r *runState) snapshot() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Stats{Elapsed: time.Since(r.start), Scenarios: append([]ScenarioStats(nil), r.stats...)}
	for _, s := range r.stats {
		st.Iterations += s.Iterations
		st.Passes += s.Passes
		st.Failures += s.Failures
		st.Skipped += s.Skipped
	}
	return st
}

// Run runs the configured iterations and returns their Summary. It returns
// an error only for a bad Config; failures of the log are in the Summary
// (see Summary.Failed). When ctx ends, Run stops starting iterations, waits
// for those in flight and returns what it has.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	scenarios, err := Lookup(cfg.Scenarios)
	if err != nil {
		return nil, err
	}
	return RunScenarios(ctx, cfg, scenarios...)
}

// RunScenarios is Run with the given scenarios instead of those named by
// cfg.Scenarios (which it ignores): scenarios that are not in All, or that
// are configured differently.
func RunScenarios(ctx context.Context, cfg Config, scenarios ...Scenario) (*Summary, error) {
	if len(scenarios) == 0 {
		return nil, errors.New("torture: no scenarios")
	}
	if cfg.Iterations < 0 || cfg.Duration < 0 || cfg.Workers < 0 {
		return nil, errors.New("torture: Iterations, Duration and Workers must not be negative")
	}
	for name, n := range cfg.ScenarioIterations {
		if n < 0 {
			return nil, fmt.Errorf("torture: %d iterations of %s", n, name)
		}
	}
	if cfg.Seed == 0 {
		cfg.Seed = time.Now().UnixNano()
		if cfg.Seed == 0 {
			cfg.Seed = 1
		}
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = 500 * time.Millisecond
	}
	if cfg.IterationTimeout <= 0 {
		cfg.IterationTimeout = 5 * time.Minute
	}
	if cfg.MaxRecordedFailures <= 0 {
		cfg.MaxRecordedFailures = 1000
	}
	counts := make([]int, len(scenarios)) // -1: unbounded
	for i, s := range scenarios {
		n, ok := cfg.ScenarioIterations[s.Name()]
		switch {
		case ok:
		case cfg.Iterations > 0:
			n = cfg.Iterations
		case cfg.Duration > 0:
			n = -1
		default:
			n = 1
		}
		counts[i] = n
	}

	st := &runState{start: time.Now(), stats: make([]ScenarioStats, len(scenarios)), skips: make([]map[string]int, len(scenarios))}
	for i, s := range scenarios {
		st.stats[i].Name = s.Name()
		st.skips[i] = map[string]int{}
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Duration bounds when iterations start, not the iterations themselves:
	// one cut off at the deadline would prove nothing (and used to be
	// reported as a failure), so those in flight run to their end.
	dispatchCtx := runCtx
	if cfg.Duration > 0 {
		var stop context.CancelFunc
		dispatchCtx, stop = context.WithTimeout(runCtx, cfg.Duration)
		defer stop()
	}

	jobs := make(chan job)
	go func() { // round robin over the scenarios
		defer close(jobs)
		for index := 0; ; index++ {
			more := false
			for sc, n := range counts {
				if n >= 0 && index >= n {
					continue
				}
				more = true
				select {
				case jobs <- job{sc, index}:
				case <-dispatchCtx.Done():
					return
				}
			}
			if !more {
				return
			}
		}
	}()

	progressDone := make(chan struct{})
	var progressWG sync.WaitGroup
	if cfg.Progress != nil {
		progressWG.Add(1)
		go func() {
			defer progressWG.Done()
			t := time.NewTicker(cfg.ProgressInterval)
			defer t.Stop()
			for {
				select {
				case <-progressDone:
					return
				case <-t.C:
					cfg.Progress(st.snapshot())
				}
			}
		}()
	}

	var wg sync.WaitGroup
	for w := 0; w < cfg.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				s := scenarios[j.sc]
				it := Iteration{Seed: IterationSeed(cfg.Seed, j.index), Index: j.index, TempDir: cfg.TempDir, ChildCommand: cfg.ChildCommand}
				began := time.Now()
				out := runOne(runCtx, s, it, cfg.IterationTimeout)
				took := time.Since(began)
				if out.Failed() && runCtx.Err() != nil && ctx.Err() != nil {
					out = skipped("run cancelled: %s", out.Detail) // a cancelled iteration proves nothing
				}
				st.mu.Lock()
				ss := &st.stats[j.sc]
				ss.Iterations++
				ss.Faults += int64(out.Faults)
				ss.Acked += int64(out.Acked)
				ss.Busy += took
				switch {
				case out.Pass:
					ss.Passes++
				case out.Skipped:
					ss.Skipped++
					if m := st.skips[j.sc]; len(m) < 10 || m[out.Detail] > 0 {
						m[out.Detail]++
					}
				default:
					ss.Failures++
					st.nFailures++
					if len(st.failures) < cfg.MaxRecordedFailures {
						st.failures = append(st.failures, Failure{
							Scenario: s.Name(), Index: j.index, Seed: it.Seed, Detail: out.Detail, Duration: took,
							Replay: ReplayCommand(cfg.Command, s.Name(), it.Seed), ReplayTest: ReplayTestCommand(s.Name(), it.Seed),
						})
					} else {
						st.omitted++
					}
					if cfg.MaxFailures > 0 && st.nFailures >= cfg.MaxFailures {
						cancel()
					}
				}
				st.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(progressDone)
	progressWG.Wait()
	final := st.snapshot()
	if cfg.Progress != nil {
		cfg.Progress(final)
	}

	sum := &Summary{
		Start: st.start, Duration: final.Elapsed, Seed: cfg.Seed, Workers: cfg.Workers,
		GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, NumCPU: runtime.NumCPU(),
		Failures: st.failures, FailuresOmitted: st.omitted,
		Interrupted: ctx.Err() != nil || (cfg.MaxFailures > 0 && st.nFailures >= cfg.MaxFailures),
	}
	sum.Commit, sum.Modified = buildCommit()
	for i, s := range scenarios {
		ss := ScenarioSummary{ScenarioStats: final.Scenarios[i], Doc: s.Doc()}
		for reason, n := range st.skips[i] {
			ss.SkipReasons = append(ss.SkipReasons, fmt.Sprintf("%s (%d×)", reason, n))
		}
		slices.Sort(ss.SkipReasons)
		sum.Scenarios = append(sum.Scenarios, ss)
	}
	return sum, nil
}

// runOne runs one iteration, turning a panic into a failure and a hang
// into a failure after timeout.
func runOne(ctx context.Context, s Scenario, it Iteration, timeout time.Duration) Outcome {
	ictx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan Outcome, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- failed(0, 0, "panic: %v\n%s", p, debug.Stack())
			}
		}()
		done <- s.Run(ictx, it)
	}()
	select {
	case out := <-done:
		return out
	case <-ictx.Done():
		if ctx.Err() != nil {
			// The run is ending: give the iteration a moment to notice.
			select {
			case out := <-done:
				return out
			case <-time.After(10 * time.Second):
				return skipped("run cancelled")
			}
		}
		return failed(0, 0, "iteration did not finish within %v (a hang: deadlock or lost wake-up); goroutines:\n%s", timeout, allStacks())
	}
}

func allStacks() string {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	s := string(buf[:n])
	if len(s) > 64<<10 {
		s = s[:64<<10] + "\n... (truncated)"
	}
	return s
}

// buildCommit returns the VCS revision the binary was built from, if the
// build recorded it, and whether the work tree was modified.
func buildCommit() (string, bool) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "", false
	}
	var rev string
	var modified bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	return rev, modified
}
