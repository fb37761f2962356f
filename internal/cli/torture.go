package cli

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/willibrandon/mtlog-audit/torture"
)

func tortureCmd(e *env) *cobra.Command {
	var cfg torture.Config
	var scenarios, report, jsonFile string
	var force bool
	cmd := &cobra.Command{
		Use:   "torture [--scenarios LIST] [--iterations N] [--duration D] [--seed S] [--report FILE.html] [--json FILE]",
		Short: "Try to make the log lose or alter an acknowledged event, with injected faults",
		Long: `torture runs the torture suite: scenarios that crash, kill, fill, fail,
corrupt and confuse the log, each iteration deterministic from its seed, and
checks that no acknowledged event is ever lost or silently altered. Every
failure is printed with its seed and the command that replays exactly that
iteration. A progress line shows on a terminal; --report writes an HTML page
with a chart, --json a JSON summary.

Scenarios: ` + strings.Join(torture.Names(), ", ") + `
(go doc github.com/willibrandon/mtlog-audit/torture NAME gives each one's
pass criteria). DiskFullTmpfs mounts a real tmpfs and needs root; it is
reported as skipped otherwise.

Exit status: 0 every iteration passed; 1 an iteration failed; 2 usage error.`,
		Example: `  mtlog-audit torture --iterations 1000
  mtlog-audit torture --scenarios PowerLoss,RandomCorruption --duration 10m --report torture.html --json torture.json
  mtlog-audit torture --scenarios PowerLoss --seed 123 --iterations 1     # replay one failure`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if scenarios != "" {
				cfg.Scenarios = strings.Split(scenarios, ",")
			}
			if _, err := torture.Lookup(cfg.Scenarios); err != nil {
				return &flagError{err}
			}
			if cfg.Iterations < 0 || cfg.Duration < 0 {
				return &flagError{fmt.Errorf("--iterations and --duration must not be negative")}
			}
			if cmd.Flags().Changed("iterations") && cfg.Iterations == 0 {
				return &flagError{fmt.Errorf("--iterations 0 runs nothing: give a positive count (without --iterations and --duration, 100 run)")}
			}
			if cmd.Flags().Changed("duration") && cfg.Duration == 0 {
				return &flagError{fmt.Errorf("--duration 0 runs nothing: give a positive duration such as 10m")}
			}
			if cfg.Iterations == 0 && cfg.Duration == 0 {
				cfg.Iterations = 100
			}
			var htmlOut, jsonOut *outFile
			var err error
			if htmlOut, err = createOutput(report, "--report", force); err != nil {
				return err
			}
			if jsonOut, err = createOutput(jsonFile, "--json", force); err != nil {
				if htmlOut != nil {
					htmlOut.abort(err)
				}
				return err
			}
			if exe, err := os.Executable(); err == nil {
				cfg.ChildCommand = torture.ChildCommand(exe)
			}
			tty := e.showProgress()
			if tty {
				cfg.Progress = func(st torture.Stats) {
					fmt.Fprintf(e.stderr, "\r\x1b[K%s", torture.FormatProgress(st))
				}
				cfg.ProgressInterval = 250 * time.Millisecond
			}
			sum, runErr := torture.Run(cmd.Context(), cfg)
			if tty {
				fmt.Fprint(e.stderr, "\r\x1b[K")
			}
			if sum == nil {
				if htmlOut != nil {
					htmlOut.abort(runErr)
				}
				if jsonOut != nil {
					jsonOut.abort(runErr)
				}
				return failErr(runErr)
			}
			if err := sum.WriteText(e.stdout); err != nil {
				return err
			}
			for _, o := range []struct {
				f     *outFile
				write func(*torture.Summary, *os.File) error
			}{
				{htmlOut, func(s *torture.Summary, f *os.File) error { return s.WriteHTML(f) }},
				{jsonOut, func(s *torture.Summary, f *os.File) error { return s.WriteJSON(f) }},
			} {
				if o.f == nil {
					continue
				}
				if err := o.write(sum, o.f.File); err != nil {
					return o.f.abort(err)
				}
				if err := o.f.commit(); err != nil {
					return err
				}
				e.infof("wrote %s", o.f.path)
			}
			if runErr != nil {
				return failErr(runErr)
			}
			if sum.Interrupted && !sum.Failed() {
				return &exitError{code: ExitFailed, err: fmt.Errorf("interrupted before every iteration ran (the counts above are what ran)")}
			}
			if sum.Failed() {
				return &exitError{code: ExitFailed, err: fmt.Errorf("%d iteration(s) failed; replay each with the command printed above", sum.Totals().Failures)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&scenarios, "scenarios", "", "comma-separated scenarios to run (default: all)")
	f.IntVar(&cfg.Iterations, "iterations", 0, "iterations of each scenario (default 100, or as many as --duration allows)")
	f.DurationVar(&cfg.Duration, "duration", 0, "stop after this long (scenarios run round robin)")
	f.Int64Var(&cfg.Seed, "seed", 0, "base seed (0: from the clock, printed); iteration 0 uses the seed itself")
	f.IntVar(&cfg.Workers, "workers", 0, "iterations run at once (default: the number of CPUs)")
	f.StringVar(&report, "report", "", "write an HTML report (with a chart) to this file")
	f.StringVar(&jsonFile, "json", "", "write a JSON summary to this file")
	f.BoolVar(&force, "force", false, "overwrite --report and --json files")
	return cmd
}
