package torture_test

import (
	"flag"
	"os"
	"testing"

	"github.com/willibrandon/mtlog-audit/torture"
)

// Flags of the torture tests (see TestTorture and TestQuickPass).
var (
	flagIterations = flag.Int("torture.iterations", 0, "iterations of each scenario (0: the test's default)")
	flagSeed       = flag.Int64("torture.seed", 0, "base seed (0: from the clock; printed)")
	flagScenarios  = flag.String("torture.scenarios", "", "comma-separated scenarios to run (default all)")
	flagDuration   = flag.Duration("torture.duration", 0, "run the scenarios round robin for this long (with -torture.iterations 0)")
	flagWorkers    = flag.Int("torture.workers", 0, "iterations run at once (0: GOMAXPROCS)")
	flagReport     = flag.String("torture.report", "", "directory to write summary.json and summary.html to")
)

// TestMain lets the test binary be the child process of Kill9DuringWrite.
func TestMain(m *testing.M) {
	torture.MaybeChild()
	os.Exit(m.Run())
}
