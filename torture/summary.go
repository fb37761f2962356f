package torture

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

// Summary is the result of a Run.
type Summary struct {
	// Start is when the run started; Duration how long it took.
	Start    time.Time
	Duration time.Duration
	// Seed is the base seed (see Config.Seed); Workers the number of
	// iterations run at once.
	Seed    int64
	Workers int
	// GoVersion, GOOS, GOARCH and NumCPU describe the machine and the
	// toolchain; Commit is the VCS revision the binary was built from ("" if
	// the build did not record it) and Modified whether its work tree had
	// changes.
	GoVersion, GOOS, GOARCH string
	NumCPU                  int
	Commit                  string
	Modified                bool
	// Scenarios has one entry per scenario run, in the order of All.
	Scenarios []ScenarioSummary
	// Failures lists the failed iterations (up to
	// Config.MaxRecordedFailures; FailuresOmitted counts the rest).
	Failures        []Failure
	FailuresOmitted int
	// Interrupted is set when the run stopped early: its context ended or
	// MaxFailures was reached.
	Interrupted bool
}

// ScenarioSummary is one scenario's part of a Summary.
type ScenarioSummary struct {
	ScenarioStats
	// Doc is the scenario's description and pass criteria.
	Doc string
	// SkipReasons lists the distinct reasons iterations were skipped, with
	// their counts.
	SkipReasons []string
}

// Failure is one failed iteration.
type Failure struct {
	Scenario string
	Index    int
	Seed     int64
	// Detail says which criterion failed and how.
	Detail string
	// Replay and ReplayTest are the command lines that run this iteration
	// alone (with mtlog-audit and with go test).
	Replay, ReplayTest string
	Duration           time.Duration
}

// Failed reports whether any iteration failed.
func (s *Summary) Failed() bool {
	for _, sc := range s.Scenarios {
		if sc.Failures > 0 {
			return true
		}
	}
	return false
}

// Totals returns the counts summed over every scenario.
func (s *Summary) Totals() ScenarioStats {
	t := ScenarioStats{Name: "total"}
	for _, sc := range s.Scenarios {
		t.Iterations += sc.Iterations
		t.Passes += sc.Passes
		t.Failures += sc.Failures
		t.Skipped += sc.Skipped
		t.Faults += sc.Faults
		t.Acked += sc.Acked
		t.Busy += sc.Busy
	}
	return t
}

type jsonScenario struct {
	Name                  string   `json:"name"`
	Doc                   string   `json:"doc"`
	Iterations            int64    `json:"iterations"`
	Passes                int64    `json:"passes"`
	Failures              int64    `json:"failures"`
	Skipped               int64    `json:"skipped"`
	Faults                int64    `json:"faults_injected"`
	Acked                 int64    `json:"events_acknowledged"`
	BusySeconds           float64  `json:"busy_seconds"`
	MeanIterationMicros   float64  `json:"mean_iteration_microseconds"`
	IterationsPerWorkerPS float64  `json:"iterations_per_second_per_worker"`
	SkipReasons           []string `json:"skip_reasons"`
}

type jsonFailure struct {
	Scenario        string  `json:"scenario"`
	Index           int     `json:"index"`
	Seed            int64   `json:"seed"`
	Replay          string  `json:"replay"`
	ReplayTest      string  `json:"replay_test"`
	DurationSeconds float64 `json:"duration_seconds"`
	Detail          string  `json:"detail"`
}

type jsonSummary struct {
	Start           time.Time      `json:"start"`
	DurationSeconds float64        `json:"duration_seconds"`
	Seed            int64          `json:"seed"`
	Workers         int            `json:"workers"`
	GoVersion       string         `json:"go_version"`
	GOOS            string         `json:"goos"`
	GOARCH          string         `json:"goarch"`
	NumCPU          int            `json:"num_cpu"`
	Commit          string         `json:"commit"`
	Modified        bool           `json:"modified"`
	Interrupted     bool           `json:"interrupted"`
	Passed          bool           `json:"passed"`
	Iterations      int64          `json:"iterations"`
	Failures        int64          `json:"failures"`
	Scenarios       []jsonScenario `json:"scenarios"`
	FailureList     []jsonFailure  `json:"failure_list"`
	FailuresOmitted int            `json:"failures_omitted"`
}

func (sc ScenarioSummary) perWorkerRate() float64 {
	if sc.Busy <= 0 {
		return 0
	}
	return float64(sc.Iterations) / sc.Busy.Seconds()
}

// WriteJSON writes the summary as one indented JSON object with snake_case
// names (durations in seconds).
func (s *Summary) WriteJSON(w io.Writer) error {
	t := s.Totals()
	j := jsonSummary{
		Start: s.Start, DurationSeconds: s.Duration.Seconds(), Seed: s.Seed, Workers: s.Workers,
		GoVersion: s.GoVersion, GOOS: s.GOOS, GOARCH: s.GOARCH, NumCPU: s.NumCPU, Commit: s.Commit, Modified: s.Modified,
		Interrupted: s.Interrupted, Passed: !s.Failed(), Iterations: t.Iterations, Failures: t.Failures,
		Scenarios: []jsonScenario{}, FailureList: []jsonFailure{}, FailuresOmitted: s.FailuresOmitted,
	}
	for _, sc := range s.Scenarios {
		reasons := sc.SkipReasons
		if reasons == nil {
			reasons = []string{}
		}
		j.Scenarios = append(j.Scenarios, jsonScenario{
			Name: sc.Name, Doc: sc.Doc, Iterations: sc.Iterations, Passes: sc.Passes, Failures: sc.Failures, Skipped: sc.Skipped,
			Faults: sc.Faults, Acked: sc.Acked, BusySeconds: sc.Busy.Seconds(),
			MeanIterationMicros: float64(sc.PerIteration()) / 1e3, IterationsPerWorkerPS: sc.perWorkerRate(), SkipReasons: reasons,
		})
	}
	for _, f := range s.Failures {
		j.FailureList = append(j.FailureList, jsonFailure{Scenario: f.Scenario, Index: f.Index, Seed: f.Seed, Replay: f.Replay,
			ReplayTest: f.ReplayTest, DurationSeconds: f.Duration.Seconds(), Detail: f.Detail})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(j)
}

// WriteText writes a plain-text report: a table of the scenarios and every
// recorded failure with its replay commands.
func (s *Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	verdict := "PASSED"
	if s.Failed() {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "torture %s: seed %d, %d workers, %s, %s %s/%s", verdict, s.Seed, s.Workers, s.Duration.Round(time.Millisecond), s.GoVersion, s.GOOS, s.GOARCH)
	if s.Commit != "" {
		fmt.Fprintf(&b, ", commit %.12s", s.Commit)
		if s.Modified {
			b.WriteString(" (modified)")
		}
	}
	if s.Interrupted {
		b.WriteString(", INTERRUPTED")
	}
	b.WriteString("\n\n")
	fmt.Fprintf(&b, "%-22s %10s %10s %9s %8s %10s %12s %12s\n", "scenario", "iterations", "passes", "failures", "skipped", "faults", "acked", "µs/iter")
	for _, sc := range append(s.Scenarios, ScenarioSummary{ScenarioStats: s.Totals()}) {
		fmt.Fprintf(&b, "%-22s %10d %10d %9d %8d %10d %12d %12.0f\n", sc.Name, sc.Iterations, sc.Passes, sc.Failures, sc.Skipped, sc.Faults, sc.Acked, float64(sc.PerIteration())/1e3)
	}
	for _, sc := range s.Scenarios {
		for _, r := range sc.SkipReasons {
			fmt.Fprintf(&b, "\n%s skipped: %s", sc.Name, r)
		}
	}
	for _, f := range s.Failures {
		fmt.Fprintf(&b, "\n\nFAIL %s iteration %d seed %d\n  replay: %s\n  replay: %s\n  %s", f.Scenario, f.Index, f.Seed, f.Replay, f.ReplayTest, strings.ReplaceAll(f.Detail, "\n", "\n  "))
	}
	if s.FailuresOmitted > 0 {
		fmt.Fprintf(&b, "\n\n(%d more failures not recorded)", s.FailuresOmitted)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// FormatProgress formats counts as one line for a terminal (a CLI prints it
// after "\r"): elapsed time, iterations per second, failures, and each
// scenario's iterations (with its failures, if any).
func FormatProgress(st Stats) string {
	var b strings.Builder
	rate := 0.0
	if st.Elapsed > 0 {
		rate = float64(st.Iterations) / st.Elapsed.Seconds()
	}
	fmt.Fprintf(&b, "%s  %d iterations  %.0f/s  %d failures", st.Elapsed.Round(time.Second), st.Iterations, rate, st.Failures)
	if st.Skipped > 0 {
		fmt.Fprintf(&b, "  %d skipped", st.Skipped)
	}
	b.WriteString("  |")
	for _, sc := range st.Scenarios {
		fmt.Fprintf(&b, " %s %d", sc.Name, sc.Iterations)
		if sc.Failures > 0 {
			fmt.Fprintf(&b, " (%d FAILED)", sc.Failures)
		}
	}
	return b.String()
}

// WriteHTML writes a self-contained HTML report (inline CSS and an inline
// SVG chart; no scripts, no external resources): run facts, a bar per
// scenario of its passes, failures and skips, a table of counts and
// timings, the pass criteria, and every recorded failure with its replay
// commands.
func (s *Summary) WriteHTML(w io.Writer) error {
	type bar struct {
		Name                      string
		Y, PassW, FailW, SkipW    float64
		FailX, SkipX, LabelX      float64
		Iterations, Fail, Skipped int64
	}
	const chartW, left, rowH = 760.0, 190.0, 28.0
	var maxIt int64 = 1
	for _, sc := range s.Scenarios {
		maxIt = max(maxIt, sc.Iterations)
	}
	scale := (chartW - left - 120) / float64(maxIt)
	var bars []bar
	for i, sc := range s.Scenarios {
		b := bar{Name: sc.Name, Y: float64(i) * rowH, Iterations: sc.Iterations, Fail: sc.Failures, Skipped: sc.Skipped}
		b.PassW = float64(sc.Passes) * scale
		b.FailW = float64(sc.Failures) * scale
		if sc.Failures > 0 {
			b.FailW = max(b.FailW, 3) // a single failure must be visible
		}
		b.SkipW = float64(sc.Skipped) * scale
		b.FailX = left + b.PassW
		b.SkipX = b.FailX + b.FailW
		b.LabelX = b.SkipX + 6
		bars = append(bars, b)
	}
	data := struct {
		S         *Summary
		Total     ScenarioStats
		Bars      []bar
		ChartW    float64
		ChartH    float64
		Left      float64
		Verdict   string
		StartText string
	}{s, s.Totals(), bars, chartW, float64(len(bars))*rowH + 10, left, "passed", s.Start.UTC().Format(time.RFC3339)}
	if s.Failed() {
		data.Verdict = "FAILED"
	}
	return reportTemplate.Execute(w, data)
}

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"micros":  func(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/1e3) },
	"dur":     func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"rate":    func(sc ScenarioSummary) string { return fmt.Sprintf("%.0f", sc.perWorkerRate()) },
	"add":     func(a, b float64) float64 { return a + b },
	"shortID": func(s string) string { return s[:min(len(s), 12)] },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>mtlog-audit torture report: {{.Verdict}}</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1000px;padding:0 1em;color:#1b1f24}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #d0d7de;padding-bottom:.2em}
.verdict{display:inline-block;padding:.1em .6em;border-radius:4px;color:#fff;font-weight:600}
.passed{background:#1a7f37} .FAILED{background:#cf222e}
table{border-collapse:collapse;width:100%;margin:.6em 0} th,td{padding:.3em .6em;border-bottom:1px solid #eaeef2;text-align:right}
th:first-child,td:first-child{text-align:left} th{background:#f6f8fa}
tr.total td{font-weight:600;border-top:2px solid #d0d7de}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.15em 1em} dl.facts dt{color:#57606a} dl.facts dd{margin:0}
code,pre{font:13px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f6f8fa;border-radius:4px}
code{padding:.1em .3em} pre{padding:.6em;overflow-x:auto;white-space:pre-wrap}
.fail{border-left:4px solid #cf222e;padding-left:.8em;margin:1em 0}
.doc{color:#3d444d;margin:.3em 0 1em} .legend span{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 1em;vertical-align:middle}
.bad{color:#cf222e;font-weight:600}
</style></head><body>
<h1>mtlog-audit torture report <span class="verdict {{.Verdict}}">{{.Verdict}}</span></h1>
<dl class="facts">
<dt>started</dt><dd>{{.StartText}}</dd>
<dt>duration</dt><dd>{{dur .S.Duration}}</dd>
<dt>iterations</dt><dd>{{.Total.Iterations}} ({{.Total.Failures}} failed, {{.Total.Skipped}} skipped)</dd>
<dt>faults injected</dt><dd>{{.Total.Faults}}</dd>
<dt>events acknowledged and checked</dt><dd>{{.Total.Acked}}</dd>
<dt>base seed</dt><dd><code>{{.S.Seed}}</code></dd>
<dt>workers</dt><dd>{{.S.Workers}} on {{.S.NumCPU}} CPUs</dd>
<dt>Go</dt><dd>{{.S.GoVersion}} {{.S.GOOS}}/{{.S.GOARCH}}</dd>
<dt>commit</dt><dd>{{if .S.Commit}}<code>{{shortID .S.Commit}}</code>{{if .S.Modified}} (modified){{end}}{{else}}not recorded in the build{{end}}</dd>
{{if .S.Interrupted}}<dt>note</dt><dd class="bad">the run was interrupted before it finished</dd>{{end}}
</dl>

<h2>Iterations and outcomes per scenario</h2>
<p class="legend"><span style="background:#2da44e"></span>passed<span style="background:#cf222e"></span>failed<span style="background:#afb8c1"></span>skipped</p>
<svg xmlns="http://www.w3.org/2000/svg" width="{{.ChartW}}" height="{{.ChartH}}" viewBox="0 0 {{.ChartW}} {{.ChartH}}" role="img" aria-label="iterations per scenario">
{{range .Bars}}<g>
<text x="{{add $.Left -8}}" y="{{add .Y 17}}" text-anchor="end" font-size="13" font-family="system-ui,sans-serif">{{.Name}}</text>
<rect x="{{$.Left}}" y="{{add .Y 4}}" width="{{.PassW}}" height="18" fill="#2da44e"><title>{{.Name}}: passed</title></rect>
<rect x="{{.FailX}}" y="{{add .Y 4}}" width="{{.FailW}}" height="18" fill="#cf222e"><title>{{.Name}}: {{.Fail}} failed</title></rect>
<rect x="{{.SkipX}}" y="{{add .Y 4}}" width="{{.SkipW}}" height="18" fill="#afb8c1"><title>{{.Name}}: {{.Skipped}} skipped</title></rect>
<text x="{{.LabelX}}" y="{{add .Y 17}}" font-size="12" font-family="system-ui,sans-serif" fill="#57606a">{{.Iterations}}{{if .Fail}} ({{.Fail}} failed){{end}}</text>
</g>
{{end}}</svg>

<h2>Counts</h2>
<table>
<tr><th>scenario</th><th>iterations</th><th>passes</th><th>failures</th><th>skipped</th><th>faults</th><th>acked events</th><th>µs / iteration</th><th>iterations/s per worker</th></tr>
{{range .S.Scenarios}}<tr><td>{{.Name}}</td><td>{{.Iterations}}</td><td>{{.Passes}}</td><td{{if .Failures}} class="bad"{{end}}>{{.Failures}}</td><td>{{.Skipped}}</td><td>{{.Faults}}</td><td>{{.Acked}}</td><td>{{micros .PerIteration}}</td><td>{{rate .}}</td></tr>
{{end}}<tr class="total"><td>total</td><td>{{.Total.Iterations}}</td><td>{{.Total.Passes}}</td><td>{{.Total.Failures}}</td><td>{{.Total.Skipped}}</td><td>{{.Total.Faults}}</td><td>{{.Total.Acked}}</td><td></td><td></td></tr>
</table>

<h2>Failures</h2>
{{if .S.Failures}}{{range .S.Failures}}<div class="fail">
<p><strong>{{.Scenario}}</strong> iteration {{.Index}}, seed <code>{{.Seed}}</code>, {{dur .Duration}}</p>
<p>Replay alone:</p><pre>{{.Replay}}
{{.ReplayTest}}</pre>
<pre>{{.Detail}}</pre>
</div>{{end}}{{if .S.FailuresOmitted}}<p>{{.S.FailuresOmitted}} more failures were not recorded.</p>{{end}}{{else}}<p>None.</p>{{end}}

<h2>Scenarios and their pass criteria</h2>
{{range .S.Scenarios}}<h3>{{.Name}}</h3><p class="doc">{{.Doc}}</p>{{range .SkipReasons}}<p>Skipped: {{.}}</p>{{end}}
{{end}}
</body></html>
`))
