// Command compare runs the same durable-logging workload against
// mtlog-audit, a minimal group-commit reference loop and peer libraries (see
// benchmarks/README.md), then measures audit.Sink at a steady paced rate
// against the disk's own fdatasync latency, and prints Markdown tables and
// the status of the project's performance targets.
//
//	cd benchmarks && go run ./cmd/compare [-duration 3s] [-writers 1,16,64,256] [-sizes 256,4096] [-json out.json]
//
// Logs are written under -dir (default $TMPDIR), in a directory of their
// own that is removed at the end.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/willibrandon/mtlog-audit/benchmarks/peers"
	"github.com/willibrandon/mtlog-audit/internal/benchrun"
)

type options struct {
	duration       time.Duration
	writers        []int
	sizes          []int
	targets        []string
	dir            string
	rounds         int
	jsonPath       string
	fsyncSamples   int
	steady         bool
	steadyRate     int
	steadyWriters  int
	steadySize     int
	steadyDuration time.Duration
	allocDuration  time.Duration
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var writers, sizes, targets string
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "how long each cell (row × writers × size) runs")
	fs.StringVar(&writers, "writers", "1,16,64,256", "comma-separated numbers of concurrent writers")
	fs.StringVar(&sizes, "sizes", "256,4096", "comma-separated event sizes in bytes (≥ 64)")
	fs.StringVar(&targets, "targets", "all", "comma-separated row IDs, or all ("+strings.Join(ids(peers.All()), ",")+")")
	fs.StringVar(&o.dir, "dir", "", "where to put the logs (default $TMPDIR); pick the disk to measure")
	fs.IntVar(&o.rounds, "rounds", 1, "run every cell this many times and report the median by events/s")
	fs.StringVar(&o.jsonPath, "json", "", "also write every measurement as JSON to this file")
	fs.IntVar(&o.fsyncSamples, "fdatasync-samples", 1000, "4 KiB write + fdatasync pairs timed for the disk's own latency")
	fs.BoolVar(&o.steady, "steady", true, "also measure audit.Sink at a steady paced rate and its allocations per event")
	fs.IntVar(&o.steadyRate, "steady-rate", 10000, "events/s of the paced run")
	fs.IntVar(&o.steadyWriters, "steady-writers", 64, "writers of the paced run")
	fs.IntVar(&o.steadySize, "steady-size", 256, "event size of the paced run")
	fs.DurationVar(&o.steadyDuration, "steady-duration", 10*time.Second, "length of the paced run")
	fs.DurationVar(&o.allocDuration, "alloc-duration", 3*time.Second, "length of each allocation run of Sink.Write (1 and 64 writers, as fast as possible)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.writers, err = ints(writers, 1); err != nil {
		return fmt.Errorf("-writers: %w", err)
	}
	if o.sizes, err = ints(sizes, benchrun.MinEventSize); err != nil {
		return fmt.Errorf("-sizes: %w", err)
	}
	if targets != "all" {
		o.targets = strings.Split(targets, ",")
	}
	if o.duration <= 0 || o.rounds < 1 || o.fsyncSamples < 1 {
		return errors.New("-duration, -rounds and -fdatasync-samples must be positive")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return compare(ctx, o, stdout, stderr)
}

// report is everything one run measured (the -json output).
type report struct {
	Started        time.Time           `json:"started"`
	GoVersion      string              `json:"go_version"`
	GOOS           string              `json:"goos"`
	GOARCH         string              `json:"goarch"`
	CPUs           int                 `json:"cpus"`
	Dir            string              `json:"dir"`
	CellSeconds    float64             `json:"cell_seconds"`
	Rounds         int                 `json:"rounds"`
	FdatasyncP50Ms float64             `json:"fdatasync_p50_ms"`
	FdatasyncP99Ms float64             `json:"fdatasync_p99_ms"`
	Targets        []targetInfo        `json:"targets"`
	Measurements   []peers.Measurement `json:"measurements"`
	AllRounds      []peers.Measurement `json:"all_rounds,omitempty"`
	Steady         json.RawMessage     `json:"steady,omitempty"`
	SteadyRows     []peers.Measurement `json:"steady_rows,omitempty"`
	AllocRuns      []json.RawMessage   `json:"alloc_runs,omitempty"`
	Goals          []goal              `json:"targets_status"`
	Versions       map[string]string   `json:"module_versions"`

	steadyRes *benchrun.Result
	allocRes  []*benchrun.Result
	byCell    map[cellKey]peers.Measurement
}

type targetInfo struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Guarantee string `json:"guarantee"`
	Detail    string `json:"detail"`
}

type cellKey struct {
	target        string
	writers, size int
}

func compare(ctx context.Context, o options, stdout, stderr io.Writer) error {
	all := peers.All()
	ts := all
	if o.targets != nil {
		var err error
		if ts, err = peers.Select(o.targets); err != nil {
			return err
		}
	}
	parent := o.dir
	if parent == "" {
		parent = os.TempDir()
	}
	root, err := os.MkdirTemp(parent, "mtlog-audit-peers-*")
	if err != nil {
		return fmt.Errorf("create work directory: %w", err)
	}
	defer os.RemoveAll(root)

	rep := &report{
		Started: time.Now().UTC(), GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
		CPUs: runtime.NumCPU(), Dir: root, CellSeconds: o.duration.Seconds(), Rounds: o.rounds,
		Versions: moduleVersions(), byCell: map[cellKey]peers.Measurement{},
	}
	for _, t := range ts {
		rep.Targets = append(rep.Targets, targetInfo{t.ID, t.Name, t.Guarantee, t.Detail})
	}
	cells := len(ts) * len(o.writers) * len(o.sizes) * o.rounds
	fmt.Fprintf(stderr, "compare: %d cells of %v each (about %v), logs under %s\n",
		cells, o.duration, (time.Duration(cells) * (o.duration + time.Second)).Round(time.Minute), root)

	p50, p99, err := benchrun.MeasureFdatasync(ctx, root, o.fsyncSamples)
	if err != nil {
		return err
	}
	rep.FdatasyncP50Ms, rep.FdatasyncP99Ms = msf(p50), msf(p99)
	fmt.Fprintf(stderr, "disk: 4 KiB write + fdatasync p50 %.3f ms, p99 %.3f ms (%d samples)\n", rep.FdatasyncP50Ms, rep.FdatasyncP99Ms, o.fsyncSamples)

	for _, size := range o.sizes {
		w, err := peers.NewWorkload(size)
		if err != nil {
			return err
		}
		for _, n := range o.writers {
			rounds := map[string][]peers.Measurement{}
			for r := range o.rounds {
				for _, t := range ts {
					m, err := peers.Measure(ctx, t, root, w, n, o.duration, 0)
					if ctx.Err() != nil {
						return fmt.Errorf("interrupted: %w", ctx.Err())
					}
					if err != nil {
						fmt.Fprintf(stderr, "  %s: %v\n", t.ID, err)
					}
					fmt.Fprintf(stderr, "size=%d writers=%d round=%d %-14s %10.0f events/s  p50 %7.3f  p99 %7.3f  p99.9 %7.3f ms  %6.2f allocs/event %s\n",
						size, n, r+1, t.ID, m.EventsPerSecond, m.P50Ms, m.P99Ms, m.P999Ms, m.AllocsPerEvent, m.Note)
					rounds[t.ID] = append(rounds[t.ID], m)
					if o.rounds > 1 {
						rep.AllRounds = append(rep.AllRounds, m)
					}
				}
			}
			var ref float64
			if ms, ok := rounds[peers.IDReference]; ok {
				m, _ := peers.Median(ms)
				ref = m.EventsPerSecond
			}
			for _, t := range ts {
				m, err := peers.Median(rounds[t.ID])
				if err != nil {
					return err
				}
				if ref > 0 {
					m.RatioToReference = m.EventsPerSecond / ref
				}
				rep.Measurements = append(rep.Measurements, m)
				rep.byCell[cellKey{t.ID, n, size}] = m
			}
		}
	}

	if o.steady {
		if err := measureSteady(ctx, o, root, rep, stderr); err != nil {
			return err
		}
	}
	rep.Goals = evaluate(rep, o)

	if err := writeMarkdown(stdout, rep, o, ts); err != nil {
		return err
	}
	if o.jsonPath != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return fmt.Errorf("encode JSON: %w", err)
		}
		if err := os.WriteFile(o.jsonPath, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write JSON: %w", err)
		}
	}
	return nil
}

// measureSteady runs audit.Sink paced at o.steadyRate (its p99 against the
// disk's p99 fdatasync, measured by benchrun in the same directory right
// before), and as fast as possible with 1 and 64 writers for allocations
// per event after warm-up.
func measureSteady(ctx context.Context, o options, root string, rep *report, stderr io.Writer) error {
	progress := func(s benchrun.Snapshot) {
		fmt.Fprintf(stderr, "  %5.1fs %9d events %9.0f events/s\n", s.Elapsed.Seconds(), s.Events, s.EventsPerSecond)
	}
	cfg := benchrun.Config{
		Dir: filepath.Join(root, "steady"), Duration: o.steadyDuration, Concurrency: o.steadyWriters,
		EventSize: o.steadySize, Rate: o.steadyRate, FdatasyncSamples: o.fsyncSamples, Progress: progress,
	}
	fmt.Fprintf(stderr, "steady: audit.Sink at %d events/s, %d writers, %d B, %v\n", o.steadyRate, o.steadyWriters, o.steadySize, o.steadyDuration)
	res, err := benchrun.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("steady run: %w", err)
	}
	rep.steadyRes = res
	if rep.Steady, err = res.JSON(); err != nil {
		return err
	}
	// The same pacing through this package's harness, for the reference
	// loop (the floor of any group commit with one fdatasync in flight) and
	// for the Sink again, so the two can be compared at the same rate.
	w, err := peers.NewWorkload(o.steadySize)
	if err != nil {
		return err
	}
	ts, err := peers.Select([]string{peers.IDReference, peers.IDAudit})
	if err != nil {
		return err
	}
	for _, t := range ts {
		m, err := peers.Measure(ctx, t, root, w, o.steadyWriters, o.steadyDuration, o.steadyRate)
		if err != nil {
			return fmt.Errorf("steady %s: %w", t.ID, err)
		}
		fmt.Fprintf(stderr, "steady %-10s %9.0f events/s  p50 %7.3f  p99 %7.3f  p99.9 %7.3f ms\n", t.ID, m.EventsPerSecond, m.P50Ms, m.P99Ms, m.P999Ms)
		rep.SteadyRows = append(rep.SteadyRows, m)
	}
	for _, n := range []int{1, 64} {
		fmt.Fprintf(stderr, "allocs: audit.Sink.Write, %d writers, %d B, %v\n", n, o.steadySize, o.allocDuration)
		res, err := benchrun.Run(ctx, benchrun.Config{
			Dir: filepath.Join(root, "allocs-"+strconv.Itoa(n)), Duration: o.allocDuration, Concurrency: n,
			EventSize: o.steadySize, FdatasyncSamples: 1,
		})
		if err != nil {
			return fmt.Errorf("allocation run: %w", err)
		}
		rep.allocRes = append(rep.allocRes, res)
		b, err := res.JSON()
		if err != nil {
			return err
		}
		rep.AllocRuns = append(rep.AllocRuns, b)
	}
	return nil
}

// goal is one performance target and whether this run met it.
type goal struct {
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Status   string `json:"status"` // "met", "missed" or "not measured"
}

func status(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

func evaluate(rep *report, o options) []goal {
	var gs []goal
	get := func(id string, n, size int) (peers.Measurement, bool) {
		m, ok := rep.byCell[cellKey{id, n, size}]
		return m, ok && m.Events > 0
	}

	// 64 writers × 256 B: ≥ 0.75 × reference.
	if a, ok := get(peers.IDAudit, 64, 256); ok {
		if r, ok := get(peers.IDReference, 64, 256); ok {
			ratio := a.EventsPerSecond / r.EventsPerSecond
			gs = append(gs, goal{"64 writers × 256 B: audit.Sink ≥ 0.75 × reference loop",
				fmt.Sprintf("%s vs %s events/s = %.2f×", thousands(a.EventsPerSecond), thousands(r.EventsPerSecond), ratio), status(ratio >= 0.75)})
		} else {
			gs = append(gs, goal{"64 writers × 256 B: audit.Sink ≥ 0.75 × reference loop", "reference not run", "not measured"})
		}
		// ≥ 5 × the best peer row with the same guarantee, as shipped and
		// with this benchmark's group commit added.
		var best, bestGC peers.Measurement
		for _, t := range peers.All() {
			if t.Guarantee != peers.GuaranteeFdatasync || t.ID == peers.IDAudit || t.ID == peers.IDReference || strings.HasPrefix(t.ID, "audit") {
				continue
			}
			m, ok := get(t.ID, 64, 256)
			if !ok {
				continue
			}
			gc := strings.Contains(t.Name, "group commit")
			if !gc && m.EventsPerSecond > best.EventsPerSecond {
				best = m
			}
			if gc && m.EventsPerSecond > bestGC.EventsPerSecond {
				bestGC = m
			}
		}
		if best.Events > 0 {
			x := a.EventsPerSecond / best.EventsPerSecond
			gs = append(gs, goal{"64 writers × 256 B: audit.Sink ≥ 5 × best peer with the same guarantee (" + peers.GuaranteeFdatasync + "), peers as shipped",
				fmt.Sprintf("%.1f× %s (%s events/s)", x, best.Name, thousands(best.EventsPerSecond)), status(x >= 5)})
		}
		if bestGC.Events > 0 {
			x := a.EventsPerSecond / bestGC.EventsPerSecond
			gs = append(gs, goal{"(same, against peers given this benchmark's group commit)",
				fmt.Sprintf("%.1f× %s (%s events/s)", x, bestGC.Name, thousands(bestGC.EventsPerSecond)), status(x >= 5)})
		}
	}

	// 256 writers: ≥ 150,000 durable events/s.
	for _, size := range o.sizes {
		if a, ok := get(peers.IDAudit, 256, size); ok {
			gs = append(gs, goal{fmt.Sprintf("256 writers × %d B: audit.Sink ≥ 150,000 durable events/s", size),
				thousands(a.EventsPerSecond) + " events/s", status(a.EventsPerSecond >= 150000)})
		}
	}

	if s := rep.steadyRes; s != nil {
		gs = append(gs, goal{fmt.Sprintf("p99 at a steady %s events/s ≤ 2 × disk p99 fdatasync", thousands(float64(o.steadyRate))),
			fmt.Sprintf("p99 %.3f ms vs disk p99 %.3f ms (2× = %.3f ms); achieved %s events/s, p50 %.3f ms",
				s.P99Ms, s.FdatasyncP99Ms, 2*s.FdatasyncP99Ms, thousands(s.EventsPerSecond), s.P50Ms),
			status(s.P99Ms <= 2*s.FdatasyncP99Ms)})
	}
	var parts []string
	worst := -1.0
	for _, r := range rep.allocRes {
		parts = append(parts, fmt.Sprintf("%d writers: %.2f", r.Config.Concurrency, r.AllocsPerEvent))
		worst = max(worst, r.AllocsPerEvent)
	}
	for _, n := range o.writers {
		for _, size := range o.sizes {
			if m, ok := get(peers.IDAudit, n, size); ok {
				parts = append(parts, fmt.Sprintf("matrix %dw×%dB: %.2f", n, size, m.AllocsPerEvent))
				worst = max(worst, m.AllocsPerEvent)
			}
		}
	}
	if worst >= 0 {
		gs = append(gs, goal{"allocations per event on Sink.Write after warm-up ≤ 2 (every run)", strings.Join(parts, "; "), status(worst <= 2)})
	}
	return gs
}

func writeMarkdown(w io.Writer, rep *report, o options, ts []peers.Target) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Durable logging: mtlog-audit vs peers\n\n")
	fmt.Fprintf(&b, "Run %s; %s %s/%s, %d CPUs; logs under %s (removed).\n", rep.Started.Format(time.RFC3339), rep.GoVersion, rep.GOOS, rep.GOARCH, rep.CPUs, rep.Dir)
	fmt.Fprintf(&b, "Each cell: %v after %d warm-up writes per writer; %d round(s), median by events/s. ", o.duration, peers.WarmupWrites, o.rounds)
	fmt.Fprintf(&b, "Latency = time for one call to return (HDR histogram); allocs/event = process-wide mallocs during the cell ÷ events; MB/s counts event bytes; × ref = events/s ÷ the reference loop's in the same cell.\n\n")
	fmt.Fprintf(&b, "Disk at start: 4 KiB write + fdatasync p50 %.3f ms, p99 %.3f ms (%d samples).\n\n", rep.FdatasyncP50Ms, rep.FdatasyncP99Ms, o.fsyncSamples)

	fmt.Fprintf(&b, "## Rows\n\n| id | row | guarantee when the call returns |\n| --- | --- | --- |\n")
	for _, t := range ts {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", t.ID, t.Name, t.Guarantee)
	}
	fmt.Fprintf(&b, "\nRows marked \"+ benchmark group commit\" wrap the library in this benchmark's own group commit; the others use the library as its documentation shows. Details: benchmarks/README.md.\n")

	for _, size := range o.sizes {
		fmt.Fprintf(&b, "\n## %d-byte events\n\n", size)
		fmt.Fprintf(&b, "| writers | row | guarantee | events/s | MB/s | p50 ms | p99 ms | p99.9 ms | allocs/event | × ref | note |\n")
		fmt.Fprintf(&b, "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
		for _, n := range o.writers {
			for _, t := range ts {
				m, ok := rep.byCell[cellKey{t.ID, n, size}]
				if !ok {
					continue
				}
				ratio := "–"
				if m.RatioToReference > 0 {
					ratio = fmt.Sprintf("%.2f", m.RatioToReference)
				}
				note := m.Note
				if m.Error != "" {
					note = strings.TrimSpace(note + " error: " + m.Error)
				}
				fmt.Fprintf(&b, "| %d | %s | %s | %s | %.1f | %.3f | %.3f | %.3f | %.1f | %s | %s |\n",
					n, t.Name, t.Guarantee, thousands(m.EventsPerSecond), m.MBPerSecond, m.P50Ms, m.P99Ms, m.P999Ms, m.AllocsPerEvent, ratio, note)
			}
		}
	}

	if s := rep.steadyRes; s != nil {
		fmt.Fprintf(&b, "\n## audit.Sink at a steady rate\n\n```\n")
		if err := s.WriteText(&b); err != nil {
			return err
		}
		fmt.Fprintf(&b, "```\n")
		if len(rep.SteadyRows) > 0 {
			fmt.Fprintf(&b, "\nThe same pacing (%s events/s, %d writers, %d B, %v) through the peers harness, run right after:\n\n",
				thousands(float64(o.steadyRate)), o.steadyWriters, o.steadySize, o.steadyDuration)
			fmt.Fprintf(&b, "| row | events/s | p50 ms | p99 ms | p99.9 ms | max ms |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
			for _, m := range rep.SteadyRows {
				fmt.Fprintf(&b, "| %s | %s | %.3f | %.3f | %.3f | %.3f |\n", m.Name, thousands(m.EventsPerSecond), m.P50Ms, m.P99Ms, m.P999Ms, m.MaxMs)
			}
		}
		for _, r := range rep.allocRes {
			fmt.Fprintf(&b, "\nAllocations, Sink.Write as fast as possible:\n\n```\n")
			if err := r.WriteText(&b); err != nil {
				return err
			}
			fmt.Fprintf(&b, "```\n")
		}
	}

	if len(rep.Goals) > 0 {
		fmt.Fprintf(&b, "\n## Targets\n\n| target | measured | status |\n| --- | --- | --- |\n")
		for _, g := range rep.Goals {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", g.Goal, g.Measured, g.Status)
		}
	}
	fmt.Fprintf(&b, "\nModules: ")
	keys := make([]string, 0, len(rep.Versions))
	for k := range rep.Versions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %s", k, rep.Versions[k])
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// moduleVersions returns the versions of the compared modules built in.
func moduleVersions() map[string]string {
	out := map[string]string{}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return out
	}
	want := []string{"go.etcd.io/etcd/server/v3", "github.com/tidwall/wal", "github.com/hashicorp/raft-wal", "go.uber.org/zap", "github.com/willibrandon/mtlog"}
	for _, d := range bi.Deps {
		for _, p := range want {
			if d.Path == p {
				out[p] = d.Version
			}
		}
	}
	return out
}

func ids(ts []peers.Target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

func ints(s string, least int) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", f, err)
		}
		if n < least {
			return nil, fmt.Errorf("%d is below %d", n, least)
		}
		out = append(out, n)
	}
	return out, nil
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// thousands formats v rounded to an integer with thousands separators.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
