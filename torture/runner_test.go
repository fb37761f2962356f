package torture_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/torture"
)

func TestIterationSeed(t *testing.T) {
	if got := torture.IterationSeed(123, 0); got != 123 {
		t.Fatalf("iteration 0 has seed %d, want the base seed", got)
	}
	seen := map[int64]bool{}
	for i := range 1000 {
		s := torture.IterationSeed(123, i)
		if s != torture.IterationSeed(123, i) {
			t.Fatal("not deterministic")
		}
		if seen[s] || s == 0 {
			t.Fatalf("iteration %d: seed %d repeats or is zero", i, s)
		}
		seen[s] = true
	}
}

func TestLookup(t *testing.T) {
	all, err := torture.Lookup(nil)
	if err != nil || len(all) != len(torture.All()) {
		t.Fatalf("Lookup(nil) = %d scenarios, %v", len(all), err)
	}
	got, err := torture.Lookup([]string{"powerloss, DiskFull", "CLOCKJUMP"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.Name())
	}
	if strings.Join(names, ",") != "PowerLoss,DiskFull,ClockJump" {
		t.Fatalf("Lookup = %v", names)
	}
	if _, err := torture.Lookup([]string{"PowerLoss", "Nope"}); err == nil || !strings.Contains(err.Error(), "nope") || !strings.Contains(err.Error(), "PowerLoss") {
		t.Fatalf("unknown scenario: %v", err)
	}
	for _, s := range torture.All() {
		if s.Doc() == "" || strings.ContainsAny(s.Name(), " ,") {
			t.Errorf("scenario %q: bad name or no doc", s.Name())
		}
	}
}

// fake is a scenario whose outcome is a function of the seed.
type fake struct{ runs *atomic.Int64 }

func (fake) Name() string { return "Fake" }
func (fake) Doc() string  { return "fails when seed%5==0, skips when seed%7==0, panics when seed%11==0" }
func (f fake) Run(ctx context.Context, it torture.Iteration) torture.Outcome {
	f.runs.Add(1)
	r := it.Rand().Uint64()
	switch s := uint64(it.Seed); {
	case s%11 == 0:
		panic("boom")
	case s%5 == 0:
		return torture.Outcome{Detail: fmt.Sprintf("failed with draw %d", r), Faults: 1, Acked: 2}
	case s%7 == 0:
		return torture.Outcome{Skipped: true, Detail: "not here"}
	}
	return torture.Outcome{Pass: true, Faults: 1, Acked: 2}
}

func TestRunAndReplay(t *testing.T) {
	var runs atomic.Int64
	cfg := torture.Config{Iterations: 500, Seed: 99, Workers: 4}
	sum, err := torture.RunScenarios(context.Background(), cfg, fake{&runs})
	if err != nil {
		t.Fatal(err)
	}
	sc := sum.Scenarios[0]
	if sc.Iterations != 500 || runs.Load() != 500 || sc.Passes+sc.Failures+sc.Skipped != 500 {
		t.Fatalf("counts %+v after %d runs", sc.ScenarioStats, runs.Load())
	}
	if sc.Failures == 0 || sc.Skipped == 0 || !sum.Failed() || len(sum.Failures) != int(sc.Failures) {
		t.Fatalf("counts %+v, %d failures recorded", sc.ScenarioStats, len(sum.Failures))
	}
	for _, f := range sum.Failures {
		if !strings.Contains(f.Replay, fmt.Sprintf("--scenarios Fake --seed %d --iterations 1", f.Seed)) ||
			!strings.Contains(f.ReplayTest, fmt.Sprintf("-torture.seed=%d -torture.iterations=1", f.Seed)) {
			t.Fatalf("replay commands %q, %q", f.Replay, f.ReplayTest)
		}
		// Replaying the failure alone reproduces it exactly.
		again, err := torture.RunScenarios(context.Background(), torture.Config{Seed: f.Seed, Iterations: 1}, fake{&runs})
		if err != nil {
			t.Fatal(err)
		}
		if len(again.Failures) != 1 || again.Failures[0].Detail[:10] != f.Detail[:10] || (!strings.HasPrefix(f.Detail, "panic") && again.Failures[0].Detail != f.Detail) {
			t.Fatalf("replay of seed %d: %+v, want %q", f.Seed, again.Failures, f.Detail)
		}
	}
}

// hang never returns until its context ends... and then not even.
type hang struct{}

func (hang) Name() string { return "Hang" }
func (hang) Doc() string  { return "hangs" }
func (hang) Run(ctx context.Context, it torture.Iteration) torture.Outcome {
	<-ctx.Done()
	time.Sleep(time.Hour)
	return torture.Outcome{}
}

func TestTimeoutIsAFailure(t *testing.T) {
	sum, err := torture.RunScenarios(context.Background(), torture.Config{Iterations: 1, IterationTimeout: 50 * time.Millisecond}, hang{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Failures) != 1 || !strings.Contains(sum.Failures[0].Detail, "did not finish") {
		t.Fatalf("failures %+v", sum.Failures)
	}
}

func TestDurationAndProgress(t *testing.T) {
	var runs atomic.Int64
	var calls atomic.Int64
	var last torture.Stats
	sum, err := torture.RunScenarios(context.Background(), torture.Config{Duration: 200 * time.Millisecond, ProgressInterval: 20 * time.Millisecond,
		Progress: func(st torture.Stats) { calls.Add(1); last = st }}, fake{&runs})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Scenarios[0].Iterations < 10 || calls.Load() < 3 || last.Iterations != sum.Scenarios[0].Iterations {
		t.Fatalf("%d iterations, %d progress calls, last %+v", sum.Scenarios[0].Iterations, calls.Load(), last)
	}
	line := torture.FormatProgress(last)
	if !strings.Contains(line, "iterations") || !strings.Contains(line, "/s") || !strings.Contains(line, "Fake") || strings.Contains(line, "\n") {
		t.Fatalf("progress line %q", line)
	}
}

func TestReports(t *testing.T) {
	var runs atomic.Int64
	sum, err := torture.RunScenarios(context.Background(), torture.Config{Iterations: 40, Seed: 5}, fake{&runs})
	if err != nil {
		t.Fatal(err)
	}
	var js bytes.Buffer
	if err := sum.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(js.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"start", "duration_seconds", "seed", "go_version", "commit", "scenarios", "failure_list"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if fl := m["failure_list"].([]any); len(fl) == 0 || fl[0].(map[string]any)["replay"] == "" {
		t.Errorf("JSON failure list %v", fl)
	}
	var html bytes.Buffer
	if err := sum.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	h := html.String()
	for _, want := range []string{"<svg", "<style>", "Fake", "FAILED", "--scenarios Fake --seed"} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "src=", "href=", "<link"} {
		if strings.Contains(h, bad) {
			t.Errorf("HTML is not self-contained: it has %q", bad)
		}
	}
	var text bytes.Buffer
	if err := sum.WriteText(&text); err != nil || !strings.Contains(text.String(), "Fake") {
		t.Fatalf("text report: %v\n%s", err, text.String())
	}
}

// slowEnd is a scenario whose iterations outlast the run's Duration and
// fail if their context ends first.
type slowEnd struct{}

func (slowEnd) Name() string { return "SlowEnd" }
func (slowEnd) Doc() string  { return "takes 300 ms; fails if its context ends first" }
func (slowEnd) Run(ctx context.Context, it torture.Iteration) torture.Outcome {
	select {
	case <-time.After(300 * time.Millisecond):
		return torture.Outcome{Pass: true}
	case <-ctx.Done():
		return torture.Outcome{Detail: "context ended: " + ctx.Err().Error()}
	}
}

// TestDurationLetsIterationsFinish: --duration stops starting iterations;
// the ones in flight run to their end (an iteration cut off at the deadline
// used to be counted as a failure).
func TestDurationLetsIterationsFinish(t *testing.T) {
	sum, err := torture.RunScenarios(context.Background(), torture.Config{Duration: 100 * time.Millisecond, Workers: 2}, slowEnd{})
	if err != nil {
		t.Fatal(err)
	}
	st := sum.Scenarios[0]
	if st.Iterations == 0 || st.Failures != 0 || st.Passes != st.Iterations || sum.Interrupted {
		t.Fatalf("%+v, interrupted %v, failures %+v", st, sum.Interrupted, sum.Failures)
	}
}
