//go:build !torture

package torture_test

import (
	"testing"

	"github.com/willibrandon/mtlog-audit/torture"
)

// Iterations of the quick pass. Without the race detector: 20,000
// iterations in total across the in-process scenarios and 50 SIGKILL rounds
// (about 80 s on 2 cores). Under -race the iterations are about ten
// times slower, so the race build runs a smaller sample of every scenario
// (and the same 50 SIGKILL rounds); run the full quick pass without -race:
//
//	go test -count=1 -run TestQuickPass ./torture/
const (
	quickInProcess     = 3_334 // × 6 in-process scenarios on simulated disks
	quickTmpfs         = 200
	quickKill9         = 50
	quickRaceInProcess = 500
	quickRaceTmpfs     = 40
	quickForged        = 500 // ForgedTail: a small sample (make torture runs 1,000,000)
	quickRaceForged    = 100
	quickHung          = 200 // HungMirror: each iteration waits out a copy's timeout (about 0.25 s)
	quickRaceHung      = 50
	quickShipping      = 100 // NetworkPartition, ByzantineBackend: real backend files (make torture runs 10,000)
	quickRaceShipping  = 20
	quickRetention     = 300 // RetentionCrash: each iteration writes and verifies a log several times
	quickRaceRetention = 60
)

// quickCounts returns the quick pass's iterations of each scenario.
func quickCounts() map[string]int {
	counts := map[string]int{}
	for _, s := range torture.All() {
		switch s.Name() {
		case "Kill9DuringWrite":
			counts[s.Name()] = quickKill9
		case "ForgedTail":
			counts[s.Name()] = quickForged
			if raceEnabled {
				counts[s.Name()] = quickRaceForged
			}
		case "NetworkPartition", "ByzantineBackend":
			counts[s.Name()] = quickShipping
			if raceEnabled {
				counts[s.Name()] = quickRaceShipping
			}
		case "RetentionCrash":
			counts[s.Name()] = quickRetention
			if raceEnabled {
				counts[s.Name()] = quickRaceRetention
			}
		case "DiskFullTmpfs":
			counts[s.Name()] = quickTmpfs
			if raceEnabled {
				counts[s.Name()] = quickRaceTmpfs
			}
		case "HungMirror":
			counts[s.Name()] = quickHung
			if raceEnabled {
				counts[s.Name()] = quickRaceHung
			}
		default:
			counts[s.Name()] = quickInProcess
			if raceEnabled {
				counts[s.Name()] = quickRaceInProcess
			}
		}
	}
	return counts
}

// TestQuickPass runs every scenario: at least 20,000 iterations in total
// across the in-process ones and 50 SIGKILL rounds (fewer in-process
// iterations under -race; see quickInProcess). The flags -torture.* select
// scenarios, override the counts, fix the seed or write reports.
func TestQuickPass(t *testing.T) {
	if testing.Short() {
		t.Skip("the torture quick pass takes about a minute")
	}
	cfg := torture.Config{ScenarioIterations: map[string]int{}}
	counts := quickCounts()
	for _, s := range selected(t) {
		cfg.Scenarios = append(cfg.Scenarios, s.Name())
		n := counts[s.Name()]
		if *flagIterations > 0 {
			n = *flagIterations
		}
		cfg.ScenarioIterations[s.Name()] = n
	}
	if *flagDuration > 0 && *flagIterations == 0 {
		cfg.ScenarioIterations, cfg.Duration = nil, *flagDuration
	}
	sum := runAndReport(t, cfg, "quick")
	var inProcess int64
	for _, sc := range sum.Scenarios {
		if sc.Name != "Kill9DuringWrite" && sc.Name != "DiskFullTmpfs" {
			inProcess += sc.Iterations
		}
	}
	t.Logf("%d in-process iterations", inProcess)
}
