// Package torture is the torture suite of mtlog-audit: it tries to make the
// audit log lose or silently alter an acknowledged event, a million times
// over, reproducibly.
//
// A Scenario is one way of hurting the log (a SIGKILL, a power loss, a full
// disk, a failing fsync, bit rot, a jumping clock, corruption under a
// running writer). Each run of a scenario is an Iteration whose every random
// choice (workload, fault, crash point, damage) is drawn from its Seed, and
// whose Outcome says whether the scenario's pass criteria held. Run drives
// the scenarios from a pool of workers and returns a Summary that lists every
// failure with the seed and the exact command that replays it alone:
//
//	mtlog-audit torture --scenarios PowerLoss --seed 123 --iterations 1
//	go test -tags=torture ./torture -run 'TestTorture/^PowerLoss$' -torture.seed=123 -torture.iterations=1
//
// The seed fixes every choice the scenario makes, not the interleaving of
// goroutines (nor, for Kill9DuringWrite, the exact moment the kernel
// delivers the signal): a replay runs the same workload against the same
// faults, which in practice reproduces a failure or a close neighbour of it.
//
// Adding a scenario is one file: a type with Name, Doc and Run, and a line
// in All.
package torture

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
)

// Scenario is one kind of torture.
type Scenario interface {
	// Name is the scenario's name, as given to Config.Scenarios and the
	// -torture.scenarios flag: a Go identifier such as "PowerLoss".
	Name() string
	// Doc describes what the scenario does and its pass criteria.
	Doc() string
	// Run runs one iteration. Every random choice must be drawn from
	// it.Seed (see Iteration.Rand), never from it.Index, so that an
	// iteration replays alone from its seed. Run should return promptly
	// when ctx is done (an Outcome then counts as skipped).
	Run(ctx context.Context, it Iteration) Outcome
}

// Iteration is one run of a scenario.
type Iteration struct {
	// Seed determines every random choice of the iteration.
	Seed int64
	// Index is the iteration's position in its run (0 for a replay); it
	// is for reports only.
	Index int
	// TempDir is where scenarios that need real files create their
	// directories ("" means os.TempDir()).
	TempDir string
	// ChildCommand, if set, returns the command that runs ChildMain(dir,
	// seed) in a new process (see Config.ChildCommand).
	ChildCommand func(dir string, seed int64) *exec.Cmd
}

// Rand returns a new random source seeded with the iteration's seed.
func (it Iteration) Rand() *rand.Rand {
	return rand.New(rand.NewPCG(uint64(it.Seed), 0x746f72747572650a))
}

// Outcome is the result of one iteration.
type Outcome struct {
	// Pass is true when every pass criterion held.
	Pass bool
	// Skipped is true when the iteration could not test anything (a
	// missing privilege or tool, a cancelled run); Detail says why.
	Skipped bool
	// Detail says what failed (or why the iteration was skipped); for a
	// pass it may describe what was done.
	Detail string
	// Faults is the number of faults injected (crashes, errors, damaged
	// spots, clock jumps, signals).
	Faults int
	// Acked is the number of events acknowledged (Sink.Write returned a
	// Receipt) whose survival the iteration checked.
	Acked int
}

// Failed reports whether the outcome is a failure (neither a pass nor a
// skip).
func (o Outcome) Failed() bool { return !o.Pass && !o.Skipped }

func passed(faults, acked int, format string, args ...any) Outcome {
	return Outcome{Pass: true, Faults: faults, Acked: acked, Detail: fmt.Sprintf(format, args...)}
}

func failed(faults, acked int, format string, args ...any) Outcome {
	return Outcome{Faults: faults, Acked: acked, Detail: fmt.Sprintf(format, args...)}
}

func skipped(format string, args ...any) Outcome {
	return Outcome{Skipped: true, Detail: fmt.Sprintf(format, args...)}
}

// All returns every scenario, in the order reports list them.
func All() []Scenario {
	return []Scenario{
		Kill9DuringWrite{},
		PowerLoss{},
		DiskFull{},
		DiskFullTmpfs{},
		FsyncFailure{},
		RandomCorruption{Mirror: RedundancyCheck()},
		ClockJump{},
		ConcurrentCorruption{},
		ForgedTail{},
		HungMirror{},
		NetworkPartition{},
		ByzantineBackend{},
		RetentionCrash{},
	}
}

// Names returns the names of every scenario.
func Names() []string {
	var names []string
	for _, s := range All() {
		names = append(names, s.Name())
	}
	return names
}

// Lookup returns the scenarios with the given names (case-insensitive; each
// element may also be a comma-separated list), in the order of All. No
// names, or the name "all", select every scenario. An unknown name is an
// error that lists the known ones.
func Lookup(names []string) ([]Scenario, error) {
	all := All()
	want := map[string]bool{}
	for _, n := range names {
		for _, part := range strings.Split(n, ",") {
			if part = strings.TrimSpace(part); part != "" {
				want[strings.ToLower(part)] = true
			}
		}
	}
	if len(want) == 0 || want["all"] {
		return all, nil
	}
	var out []Scenario
	for _, s := range all {
		if want[strings.ToLower(s.Name())] {
			out = append(out, s)
			delete(want, strings.ToLower(s.Name()))
		}
	}
	if len(want) > 0 {
		unknown := make([]string, 0, len(want))
		for n := range want {
			unknown = append(unknown, n)
		}
		slices.Sort(unknown)
		return nil, fmt.Errorf("torture: unknown scenario %s (known: %s)", strings.Join(unknown, ", "), strings.Join(Names(), ", "))
	}
	return out, nil
}
