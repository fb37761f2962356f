package report

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

// The section titles, shared by the HTML and PDF renderers (tests look
// for them).
const (
	TitleControls  = "1. Controls"
	TitleIntegrity = "2. Integrity"
	TitleActivity  = "3. Activity"
	TitleReads     = "4. Reads of the log"
	TitleRetention = "5. Retention and legal holds"
	TitleEvidence  = "6. Evidence and how to re-check it"
)

// WriteHTML writes r as one self-contained HTML file: inline CSS and SVG
// charts, no script, no external resource, so it opens offline and can be
// archived as it is.
func WriteHTML(w io.Writer, r *Report) error {
	data := struct {
		R                                                            *Report
		Titles                                                       []string
		Timeline                                                     chart
		Actions, Outcomes, Actors                                    chart
		Controls, Integrity, Activity, Reads, Retention, EvidenceSec string
	}{R: r, Timeline: timelineChart(r), Actions: barChart(r.Activity.ByAction, 10), Outcomes: barChart(r.Activity.ByOutcome, 10),
		Actors:   barChart(r.Activity.ByActor, 10),
		Controls: TitleControls, Integrity: TitleIntegrity, Activity: TitleActivity, Reads: TitleReads, Retention: TitleRetention, EvidenceSec: TitleEvidence}
	return htmlTemplate.Execute(w, data)
}

// chart is an SVG chart's geometry, computed here so the template only
// places it.
type chart struct {
	W, H  float64
	Bars  []chartBar
	Ticks []chartTick
	Empty bool
}

type chartBar struct {
	X, Y, W, H     float64 // the whole bar
	FX, FY, FW, FH float64 // its failure part (timeline)
	Label, Value   string
	LX, LY, VX     float64
	Title          string
}

type chartTick struct {
	X, Y  float64
	Label string
}

// timelineChart draws events (and failures) per bucket as vertical bars.
func timelineChart(r *Report) chart {
	tl := r.Activity.Timeline
	const w, h, left, bottom, top = 900.0, 200.0, 50.0, 28.0, 10.0
	c := chart{W: w, H: h, Empty: r.Activity.Events == 0}
	if len(tl) == 0 {
		c.Empty = true
		return c
	}
	var peak uint64 = 1
	for _, b := range tl {
		peak = max(peak, b.Events)
	}
	slot := (w - left - 10) / float64(len(tl))
	bw := max(slot*0.8, 1)
	scale := (h - bottom - top) / float64(peak)
	every := max(1, len(tl)/12)
	for i, b := range tl {
		x := left + float64(i)*slot
		bh := float64(b.Events) * scale
		fh := float64(b.Failures) * scale
		if b.Failures > 0 {
			fh = max(fh, 2)
		}
		c.Bars = append(c.Bars, chartBar{X: x, Y: h - bottom - bh, W: bw, H: bh, FX: x, FY: h - bottom - fh, FW: bw, FH: fh,
			Title: fmt.Sprintf("%s: %d events, %d failures", bucketLabel(r.Activity.Unit, b.Start), b.Events, b.Failures)})
		if i%every == 0 {
			c.Ticks = append(c.Ticks, chartTick{X: x, Y: h - 10, Label: bucketLabel(r.Activity.Unit, b.Start)})
		}
	}
	c.Ticks = append(c.Ticks, chartTick{X: 4, Y: top + 10, Label: fmt.Sprint(peak)}, chartTick{X: 4, Y: h - bottom, Label: "0"})
	return c
}

func bucketLabel(unit string, t time.Time) string {
	switch unit {
	case "day", "week":
		return t.Format("Jan 2")
	case "month":
		return t.Format("Jan 2006")
	}
	return t.Format("2006")
}

// barChart draws the first n counts as horizontal bars.
func barChart(cs []Count, n int) chart {
	const w, left, row = 430.0, 150.0, 22.0
	cs = cs[:min(len(cs), n)]
	c := chart{W: w, H: float64(len(cs))*row + 4, Empty: len(cs) == 0}
	var peak uint64 = 1
	for _, x := range cs {
		peak = max(peak, x.Count)
	}
	scale := (w - left - 60) / float64(peak)
	for i, x := range cs {
		y := float64(i) * row
		bw := max(float64(x.Count)*scale, 1)
		c.Bars = append(c.Bars, chartBar{X: left, Y: y + 4, W: bw, H: row - 6, Label: clip(x.Value, 22), LX: left - 6, LY: y + 16,
			Value: fmt.Sprint(x.Count), VX: left + bw + 4, Title: fmt.Sprintf("%s: %d", x.Value, x.Count)})
	}
	return c
}

// clip shortens s to n runes with an ellipsis.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

var htmlFuncs = template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"date":   func(t time.Time) string { return t.UTC().Format(time.DateOnly) },
	"upper":  strings.ToUpper,
	"join":   strings.Join,
	"kv":     kvText,
	"counts": countsText,
	"add":    func(a, b float64) float64 { return a + b },
	"arr":    func(a ...any) []any { return a },
	"rows":   countRows,
	"cell":   countCell,
}

// kvText writes properties as "k=v, …", sorted.
func kvText(m map[string]string) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ", ")
}

var htmlTemplate = template.Must(template.New("report").Funcs(htmlFuncs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="generator" content="{{.R.Generator}}">
<meta name="schema" content="{{.R.Schema}}">
<title>{{.R.Profile}} compliance report, {{.R.Period.Text}}: {{.R.Summary.Verdict}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1000px;padding:0 1em;color:#1b1f24}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #d0d7de;padding-bottom:.2em}
h3{font-size:1.05em;margin:1.2em 0 .4em}
.badge{display:inline-block;padding:.05em .55em;border-radius:4px;color:#fff;font-weight:600;font-size:.85em;text-transform:uppercase;white-space:nowrap}
.pass{background:#1a7f37} .fail{background:#cf222e} .not-applicable{background:#6e7781}
.verified{background:#1a7f37} .uncovered{background:#9a6700} .failed{background:#cf222e}
table{border-collapse:collapse;width:100%;margin:.5em 0} th,td{padding:.3em .5em;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600} td.n{text-align:right;font-variant-numeric:tabular-nums}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.15em 1em} dl.facts dt{color:#57606a} dl.facts dd{margin:0}
code,pre{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f6f8fa;border-radius:4px}
code{padding:.1em .3em} pre{padding:.5em .6em;margin:.3em 0;white-space:pre-wrap;word-break:break-all}
.note{border-left:4px solid #9a6700;background:#fff8c5;padding:.4em .8em;margin:.8em 0}
.muted{color:#57606a} .small{font-size:.9em}
.cards{display:flex;gap:1em;margin:1em 0} .card{flex:1;border:1px solid #d0d7de;border-radius:6px;padding:.6em .9em}
.card .big{font-size:1.6em;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:1.5em} .charts figure{margin:0} figcaption{font-weight:600;margin-bottom:.3em}
.legend span{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 1em;vertical-align:middle}
@media print{body{margin:0;max-width:none} h2{break-after:avoid} tr{break-inside:avoid}}
</style></head><body>
<h1>{{.R.Profile}} compliance report <span class="badge {{.R.Summary.Verdict}}">{{.R.Summary.Verdict}}</span></h1>
<p class="muted">{{.R.Standard}}</p>
<dl class="facts">
<dt>log</dt><dd><code>{{.R.Log}}</code></dd>
<dt>period</dt><dd>{{.R.Period.Text}}: {{ts .R.Period.From}} to {{ts .R.Period.To}} (end excluded)</dd>
<dt>generated</dt><dd>{{ts .R.GeneratedAt}} by {{.R.Generator}}</dd>
<dt>schema</dt><dd><code>{{.R.Schema}}</code></dd>
</dl>
{{range .R.Notes}}<p class="note">{{.}}</p>{{end}}
<div class="cards">
<div class="card"><div class="big">{{.R.Summary.Pass}}</div>controls pass</div>
<div class="card"><div class="big">{{.R.Summary.Fail}}</div>controls fail</div>
<div class="card"><div class="big">{{.R.Summary.NotApplicable}}</div>not applicable</div>
<div class="card"><div class="big">{{.R.Activity.Events}}</div>events in the period</div>
<div class="card"><div class="big">{{.R.Reads.Count}}</div>reads of the log</div>
</div>

<h2 id="controls">{{.Controls}}</h2>
<table>
<tr><th>control</th><th>requires</th><th>evidence</th><th>status</th></tr>
{{range .R.Controls}}<tr><td><strong>{{.ID}}</strong><br><span class="small">{{.Title}}</span><br><span class="small muted">{{.Clause}}</span></td>
<td class="small">{{.Requires}}</td>
<td class="small">{{.Reason}}<br><span class="muted">evidence: {{range $i, $e := .Evidence}}{{if $i}}, {{end}}<a href="#ev-{{$e}}">{{$e}}</a>{{end}}</span></td>
<td><span class="badge {{.Status}}">{{.Status}}</span></td></tr>
{{end}}</table>

<h2 id="integrity">{{.Integrity}}</h2>
{{with .R.Integrity}}<p><span class="badge {{.Status}}">{{.Status}}</span> {{.Detail}}</p>
<dl class="facts">
<dt>records</dt><dd>{{.Records}} (seq {{.FirstSeq}} to {{.LastSeq}}; {{.Events}} events) in {{.Segments}} segments, {{.Bytes}} bytes</dd>
<dt>signatures</dt><dd>{{if .KeysGiven}}{{.CheckpointsVerified}} stored checkpoints verified with the given key; they cover {{.Covered}} records{{else}}not checked: no public key was given{{end}}</dd>
<dt>checkpoints</dt><dd>{{.Checkpoints.Stored}} stored, {{.Checkpoints.InPeriod}} made in the period</dd>
<dt>signers in the period</dt><dd>{{if .Checkpoints.Signers}}{{counts .Checkpoints.Signers}}{{else}}none{{end}}</dd>
<dt>heartbeat</dt><dd>{{if .Heartbeat.Interval}}every {{.Heartbeat.Interval}}: {{.Heartbeat.Missed}} longer gaps, {{.Heartbeat.Stopped}} of them while the sink was stopped{{else}}not checked{{end}}</dd>
{{with .AccessLog}}<dt>access log</dt><dd><code>{{.Dir}}</code>: <span class="badge {{.Status}}">{{.Status}}</span> {{.Records}} records{{if .Problem}}; {{.Problem}}{{end}}</dd>{{end}}
</dl>
{{if .Heartbeat.Gaps}}<h3>Gaps in the heartbeat</h3>
<table><tr><th>from</th><th>to</th><th>length</th><th>why</th></tr>
{{range .Heartbeat.Gaps}}<tr><td>{{ts .From}}</td><td>{{ts .To}}</td><td>{{.Length}}</td><td>{{if .Stopped}}the sink was stopped{{else}}<strong>no checkpoint while the sink ran</strong>{{end}}</td></tr>
{{end}}</table>{{end}}
{{if .Checkpoints.Newest}}<h3>Newest checkpoints of the period</h3>
<table><tr><th>time</th><th class="n">tree size</th><th>signed by</th></tr>
{{range .Checkpoints.Newest}}<tr><td>{{ts .Time}}</td><td class="n">{{.Size}}</td><td><code>{{join .Signers ", "}}</code></td></tr>
{{end}}</table>{{end}}{{end}}

<h2 id="activity">{{.Activity}}</h2>
{{with .R.Activity}}<p>{{.Events}} events ({{.Failures}} failures) and {{.Lifecycle}} of the sink's own events{{if .LifecycleKinds}} ({{counts .LifecycleKinds}}){{end}}. Required fields: {{join .RequiredFields ", "}}; {{.EventsMissingFields}} events miss one.</p>{{end}}
<figure><figcaption>Events per {{.R.Activity.Unit}}</figcaption>
<p class="legend small"><span style="background:#54aeff"></span>events<span style="background:#cf222e"></span>failures</p>
{{if .Timeline.Empty}}<p class="muted">No event in the period.</p>{{else}}<svg xmlns="http://www.w3.org/2000/svg" width="{{.Timeline.W}}" height="{{.Timeline.H}}" viewBox="0 0 {{.Timeline.W}} {{.Timeline.H}}" role="img" aria-label="events per {{.R.Activity.Unit}}">
<line x1="48" y1="{{add .Timeline.H -28}}" x2="{{.Timeline.W}}" y2="{{add .Timeline.H -28}}" stroke="#8c959f"/>
{{range .Timeline.Bars}}<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" fill="#54aeff"><title>{{.Title}}</title></rect>{{if .FH}}<rect x="{{.FX}}" y="{{.FY}}" width="{{.FW}}" height="{{.FH}}" fill="#cf222e"><title>{{.Title}}</title></rect>{{end}}
{{end}}{{range .Timeline.Ticks}}<text x="{{.X}}" y="{{.Y}}" font-size="11" font-family="system-ui,sans-serif" fill="#57606a">{{.Label}}</text>
{{end}}</svg>{{end}}</figure>
<div class="charts">
{{template "bars" (arr "By action" .Actions)}}{{template "bars" (arr "By outcome" .Outcomes)}}{{template "bars" (arr "Top actors" .Actors)}}
</div>
{{with .R.Activity}}<h3>Counts</h3>
<table><tr><th>action</th><th class="n">events</th><th>outcome</th><th class="n">events</th><th>actor</th><th class="n">events</th></tr>
{{template "rows" .}}</table>
{{if .FailureSamples}}<h3>Failures (first {{len .FailureSamples}} of {{.Failures}})</h3>
<table><tr><th>time</th><th>actor</th><th>action</th><th>resource</th><th>outcome</th><th>message</th></tr>
{{range .FailureSamples}}<tr class="small"><td>{{ts .Time}}</td><td>{{.Actor}}</td><td>{{.Action}}</td><td>{{.Resource}}</td><td>{{.Outcome}}</td><td>{{.Message}}</td></tr>
{{end}}</table>{{end}}{{end}}

<h2 id="reads">{{.Reads}}</h2>
{{with .R.Reads}}<p>{{.Count}} reads recorded in the period: {{.FromLog}} in the log, {{.FromAccessLog}} in its access log{{if not .AccessLogPresent}} (the log has no access log){{end}}.</p>
{{if .Records}}<table><tr><th>time</th><th>user</th><th>actor</th><th>command</th><th>range</th><th>filter</th><th>pid</th><th>recorded in</th></tr>
{{range .Records}}<tr class="small"><td>{{ts .Time}}</td><td>{{.User}}</td><td>{{.Actor}}</td><td>{{.Command}}</td><td>{{.Range}}</td><td>{{if .Filter}}<code>{{.Filter}}</code>{{end}}</td><td>{{.PID}}</td><td>{{.Where}}</td></tr>
{{end}}</table>{{end}}{{end}}

<h2 id="retention">{{.Retention}}</h2>
{{with .R.Retention}}<dl class="facts">
<dt>profile</dt><dd>{{if .Minimum}}keep at least {{.Minimum}}{{end}}{{if .Maximum}}keep at most {{.Maximum}}{{end}}{{if not (or .Minimum .Maximum)}}no bound{{end}}</dd>
<dt>oldest record kept</dt><dd>{{with .OldestEvent}}{{ts .}}{{else}}none{{end}}</dd>
<dt>deletions</dt><dd>{{len .Deletions}} in the period, {{.DeletionsEver}} in the whole log</dd>
<dt>legal holds</dt><dd>{{len .HoldsSet}} set and {{len .HoldsCleared}} cleared in the period; {{len .HoldsInForce}} in force at its end</dd>
</dl>
{{template "lifecycle" (arr "Retention deletions" .Deletions)}}{{template "lifecycle" (arr "Legal holds set" .HoldsSet)}}{{template "lifecycle" (arr "Legal holds cleared" .HoldsCleared)}}{{template "lifecycle" (arr "Legal holds in force at the end of the period" .HoldsInForce)}}{{end}}

<h2 id="evidence">{{.EvidenceSec}}</h2>
<p class="small">Each finding can be checked without trusting this report: run the commands with the log and its public key.</p>
{{range .R.Evidence}}<h3 id="ev-{{.ID}}">{{.Title}} <span class="muted small">({{.ID}})</span></h3>
<p>{{.Finding}}</p>{{range .Recheck}}<pre>{{.}}</pre>{{end}}
{{end}}
</body></html>
{{define "bars"}}<figure><figcaption>{{index . 0}}</figcaption>{{$c := index . 1}}{{if $c.Empty}}<p class="muted">none</p>{{else}}<svg xmlns="http://www.w3.org/2000/svg" width="{{$c.W}}" height="{{$c.H}}" viewBox="0 0 {{$c.W}} {{$c.H}}" role="img">
{{range $c.Bars}}<text x="{{.LX}}" y="{{.LY}}" text-anchor="end" font-size="12" font-family="system-ui,sans-serif">{{.Label}}</text><rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" fill="#54aeff"><title>{{.Title}}</title></rect><text x="{{.VX}}" y="{{.LY}}" font-size="11" font-family="system-ui,sans-serif" fill="#57606a">{{.Value}}</text>
{{end}}</svg>{{end}}</figure>{{end}}
{{define "rows"}}{{$a := .ByAction}}{{$o := .ByOutcome}}{{$u := .ByActor}}{{range $i, $_ := rows $a $o $u}}<tr><td>{{cell $a $i "v"}}</td><td class="n">{{cell $a $i "n"}}</td><td>{{cell $o $i "v"}}</td><td class="n">{{cell $o $i "n"}}</td><td>{{cell $u $i "v"}}</td><td class="n">{{cell $u $i "n"}}</td></tr>
{{end}}{{end}}
{{define "lifecycle"}}{{$l := index . 1}}{{if $l}}<h3>{{index . 0}}</h3><table><tr><th>time</th><th>message</th><th>properties</th></tr>
{{range $l}}<tr class="small"><td>{{ts .Time}}</td><td>{{.Message}}</td><td><code>{{kv .Properties}}</code></td></tr>
{{end}}</table>{{end}}{{end}}
`))

// countRows returns the row indices of the side-by-side counts table: as
// many as the longest list, at most 20.
func countRows(lists ...[]Count) []int {
	n := 0
	for _, l := range lists {
		n = max(n, len(l))
	}
	rows := make([]int, min(n, 20))
	for i := range rows {
		rows[i] = i
	}
	return rows
}

// countCell returns the value ("v") or count ("n") of row i of cs, or ""
// past its end.
func countCell(cs []Count, i int, what string) string {
	if i >= len(cs) {
		return ""
	}
	if what == "n" {
		return fmt.Sprint(cs[i].Count)
	}
	return cs[i].Value
}
