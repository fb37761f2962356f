//go:build torture

package torture_test

import (
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/torture"
)

// Default iterations of the full run (go test -tags=torture ./torture):
// each in-process scenario, the tmpfs scenario and the SIGKILL scenario.
// -torture.iterations or -torture.duration override them. Give a long run
// a -timeout (the default is 10 minutes; the run stops early, reporting
// what it did, shortly before the timeout).
const (
	fullInProcess = 10_000
	fullTmpfs     = 1_000
	fullKill9     = 300
)

// TestTorture runs every scenario (or those of -torture.scenarios) as a
// subtest, TestTorture/<Scenario>. -torture.duration is split equally
// among the selected scenarios.
func TestTorture(t *testing.T) {
	scenarios := selected(t)
	for _, s := range scenarios {
		t.Run(s.Name(), func(t *testing.T) {
			n := fullInProcess
			switch s.Name() {
			case "Kill9DuringWrite":
				n = fullKill9
			case "DiskFullTmpfs":
				n = fullTmpfs
			}
			cfg := testConfig(s.Name(), n, len(scenarios))
			runAndReport(t, cfg, s.Name())
		})
	}
}

// testConfig is the Config of one scenario's subtest: n iterations unless
// the flags say otherwise (-torture.iterations, or -torture.duration split
// among of scenarios).
func testConfig(name string, n, of int) torture.Config {
	cfg := torture.Config{Scenarios: []string{name}, Iterations: n}
	switch {
	case *flagIterations > 0:
		cfg.Iterations = *flagIterations
	case *flagDuration > 0:
		cfg.Iterations, cfg.Duration = 0, *flagDuration/time.Duration(of)
	}
	return cfg
}
