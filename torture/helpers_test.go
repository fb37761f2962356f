package torture_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/torture"
)

// selected returns the scenarios chosen with -torture.scenarios.
func selected(t *testing.T) []torture.Scenario {
	t.Helper()
	var names []string
	if *flagScenarios != "" {
		names = strings.Split(*flagScenarios, ",")
	}
	s, err := torture.Lookup(names)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// runAndReport runs cfg, logs the summary and reports every failure (with
// its replay commands) as a test error. It returns the summary.
func runAndReport(t *testing.T, cfg torture.Config, report string) *torture.Summary {
	t.Helper()
	ctx := t.Context()
	if dl, ok := t.Deadline(); ok {
		// Stop in time to report what was done rather than be killed by
		// the test timeout.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-max(time.Until(dl)/20, 5*time.Second)))
		defer cancel()
	}
	if *flagSeed != 0 {
		cfg.Seed = *flagSeed
	}
	if *flagWorkers != 0 {
		cfg.Workers = *flagWorkers
	}
	cfg.ChildCommand = torture.ChildCommand(os.Args[0], "-test.run=^$")
	cfg.TempDir = t.TempDir()
	cfg.MaxRecordedFailures = 50
	if testing.Verbose() {
		cfg.ProgressInterval = 10 * time.Second
		cfg.Progress = func(st torture.Stats) { t.Log(torture.FormatProgress(st)) }
	}
	sum, err := torture.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	failures := sum.Failures
	sum.Failures = nil // logged below, one error each
	sum.WriteText(&text)
	sum.Failures = failures
	t.Logf("seed %d (replay the whole run with -torture.seed=%d)\n%s", sum.Seed, sum.Seed, text.String())
	if *flagReport != "" {
		writeReports(t, sum, filepath.Join(*flagReport, report))
	}
	shown := map[string]int{}
	for _, f := range sum.Failures {
		if shown[f.Scenario]++; shown[f.Scenario] > 5 {
			continue
		}
		t.Errorf("%s iteration %d FAILED (seed %d)\n  replay: %s\n  replay: %s\n  %s", f.Scenario, f.Index, f.Seed, f.Replay, f.ReplayTest, f.Detail)
	}
	for name, n := range shown {
		if n > 5 {
			t.Errorf("%s: %d more failures not shown (see the summary)", name, n-5)
		}
	}
	if sum.Interrupted && ctx.Err() != nil && t.Context().Err() == nil {
		t.Logf("stopped early to report before the test timeout (-timeout); the counts above are what ran")
	}
	return sum
}

func writeReports(t *testing.T, sum *torture.Summary, base string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
		t.Fatal(err)
	}
	for ext, write := range map[string]func(*os.File) error{
		".json": func(f *os.File) error { return sum.WriteJSON(f) },
		".html": func(f *os.File) error { return sum.WriteHTML(f) },
	} {
		f, err := os.Create(base + ext)
		if err != nil {
			t.Fatal(err)
		}
		if err := write(f); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", base+ext)
	}
}
