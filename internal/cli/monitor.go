package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/willibrandon/mtlog-audit/internal/monitor"
)

// monitorOpts are monitor's flags.
type monitorOpts struct {
	dir, metrics     string
	once, asJSON     bool
	interval, window time.Duration
}

func monitorCmd(e *env) *cobra.Command {
	var o monitorOpts
	var acc accessFlags
	cmd := &cobra.Command{
		Use:   "monitor (--wal DIR | --metrics URL) [--once [--json]]",
		Short: "Watch a live log, or a running sink's /metrics, in a terminal UI",
		Long: `monitor shows, refreshed every --interval, what an operator needs to know
about an audit log while a sink writes it.

--wal DIR reads the log's directory, read-only (it never writes to it,
creates nothing there and takes no lock), from the first record on, and
then every record as it is written (the reader of 'replay --follow'):
  events/s over the last --window, and the level mix of the events read;
  the last event; the segment files and their size;
  the newest stored checkpoint, its age and who claims to sign it (the
  signature is not checked here: 'verify --key' checks it);
  verification of what was read: every batch's checksums and chain, and
  the Merkle root the records produce at each stored checkpoint's size;
  the free space of the log's filesystem.
A log damaged while it is watched shows LOG DAMAGED and what to run; the
monitor stops reading at the damage.

--metrics URL scrapes a running process's /metrics endpoint (Prometheus
text format; audit.WithMetrics): the sink's state, writes/s, ack latency
p50/p99 and fsync p99 since the previous scrape, drops under fail-open,
corruptions, the integrity score, WAL size, checkpoint age, free disk,
mirrors, backends and their lag, and the alert conditions of
docs/monitoring.md that hold. An endpoint that refuses or answers garbage
is shown on screen, and scraped again at the next refresh.

The terminal UI needs stdout to be a terminal; it fits the window and
follows resizes; q, Esc or Ctrl+C quits. Otherwise use --once: it prints
one snapshot (as text, or with --json as one JSON object, documented in
docs/cli-json.md) and exits. With --wal it reads the log to its end, then
counts for --interval to measure events/s; with --metrics it scrapes twice,
--interval apart, for the rates.

Exit status (--once): 0 a snapshot was taken; 1 the log is damaged or
altered (the snapshot is printed first); 2 usage or environment error: no
such directory, not a log, a metrics URL that refuses or does not serve
mtlog-audit metrics.`,
		Example: `  mtlog-audit monitor --wal ./audit-wal
  mtlog-audit monitor --metrics http://localhost:9090/metrics
  mtlog-audit monitor --wal ./audit-wal --once --json | jq .wal.events_per_second`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(cmd, e); err != nil {
				return err
			}
			if o.dir != "" {
				if err := acc.record(cmd, e, o.dir, "monitor"); err != nil {
					return err
				}
				return monitorWAL(cmd.Context(), e, &o)
			}
			return monitorMetrics(cmd.Context(), e, &o)
		},
	}
	cmd.Flags().StringVar(&o.dir, "wal", "", "the log's directory (read-only)")
	cmd.Flags().StringVar(&o.metrics, "metrics", "", "the URL of a running process's /metrics endpoint")
	cmd.Flags().BoolVar(&o.once, "once", false, "print one snapshot and exit (no terminal UI)")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "with --once: print the snapshot as one JSON object")
	cmd.Flags().DurationVar(&o.interval, "interval", time.Second, "how often the screen is refreshed; with --once, how long rates are measured")
	cmd.Flags().DurationVar(&o.window, "window", 10*time.Second, "with --wal: the span events/s is averaged over")
	acc.add(cmd)
	return cmd
}

// check refuses flag combinations that make no sense, and a terminal UI
// without a terminal.
func (o *monitorOpts) check(cmd *cobra.Command, e *env) error {
	switch {
	case o.dir == "" && o.metrics == "":
		return &flagError{errors.New("give --wal DIR (a log's directory) or --metrics URL (a process's /metrics)")}
	case o.dir != "" && o.metrics != "":
		return &flagError{errors.New("--wal and --metrics: give one; run two monitors to watch both")}
	case o.asJSON && !o.once:
		return &flagError{errors.New("--json needs --once: the terminal UI is not JSON")}
	case o.interval <= 0:
		return &flagError{fmt.Errorf("--interval %s: give a positive duration, e.g. 1s", o.interval)}
	case o.window <= 0:
		return &flagError{fmt.Errorf("--window %s: give a positive duration, e.g. 10s", o.window)}
	}
	if o.dir != "" {
		if err := needLog(cmd, o.dir); err != nil {
			return err
		}
	} else if err := checkMetricsURL(o.metrics); err != nil {
		return err
	}
	if !o.once {
		f, ok := e.stdout.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return usageErr("stdout is not a terminal, so there is no screen for the monitor: use --once to print one snapshot (add --json for JSON)")
		}
	}
	return nil
}

// checkMetricsURL refuses a --metrics value that cannot be an HTTP URL.
func checkMetricsURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErr("--metrics %q is not an http(s) URL: give the address of the process's /metrics handler, e.g. http://localhost:9090/metrics", raw)
	}
	return nil
}

// monitorWAL watches the log in o.dir.
func monitorWAL(ctx context.Context, e *env, o *monitorOpts) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := monitor.NewWAL(monitor.WALOptions{Dir: o.dir, Window: o.window, Lock: lockHolder})
	go w.Run(ctx)
	defer func() { cancel(); <-w.Done() }()
	if !o.once {
		return runUI(ctx, e, func(context.Context) monitor.Snapshot { return w.Snapshot() }, o.interval)
	}
	select {
	case <-w.CaughtUp():
	case <-ctx.Done():
		return ctx.Err()
	}
	if w.Err() == nil {
		// Count new events for one interval, unless reading ends first.
		t := time.NewTimer(o.interval)
		select {
		case <-t.C:
		case <-w.Done():
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	snap := w.Snapshot()
	if err := printSnapshot(e, o, snap); err != nil {
		return err
	}
	if err := w.Err(); err != nil {
		return wrapLogErr(o.dir, err)
	}
	if snap.Status == monitor.StatusDamaged {
		return failErr(fmt.Errorf("the log is altered: run 'mtlog-audit verify --wal %s --key KEY' for details", o.dir))
	}
	return nil
}

// monitorMetrics watches the /metrics endpoint at o.metrics.
func monitorMetrics(ctx context.Context, e *env, o *monitorOpts) error {
	s := monitor.NewScraper(o.metrics, nil, nil)
	if !o.once {
		return runUI(ctx, e, func(ctx context.Context) monitor.Snapshot {
			snap, _ := s.Scrape(ctx) // the snapshot says what failed
			return snap
		}, o.interval)
	}
	snap, err := s.Scrape(ctx)
	if err == nil {
		t := time.NewTimer(o.interval)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		snap, err = s.Scrape(ctx)
	}
	if perr := printSnapshot(e, o, snap); perr != nil {
		return perr
	}
	if err != nil {
		return &exitError{code: ExitUsage, err: err}
	}
	return nil
}

// printSnapshot prints one snapshot, as --json asks.
func printSnapshot(e *env, o *monitorOpts, snap monitor.Snapshot) error {
	if o.asJSON {
		return writeJSON(e.stdout, snap)
	}
	_, err := fmt.Fprint(e.stdout, monitor.Text(snap, 0))
	return err
}

// runUI runs the terminal UI over source until the user quits or ctx ends.
func runUI(ctx context.Context, e *env, source func(context.Context) monitor.Snapshot, interval time.Duration) error {
	p := tea.NewProgram(monitor.NewModel(ctx, source, interval),
		tea.WithContext(ctx), tea.WithInput(e.stdin), tea.WithOutput(e.stdout))
	_, err := p.Run()
	if err != nil && ctx.Err() == nil {
		return failErr(fmt.Errorf("terminal UI: %w", err))
	}
	return nil
}
