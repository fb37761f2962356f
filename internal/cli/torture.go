package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/willibrandon/mtlog-audit/torture"
)

func tortureCmd(e *env) *cobra.Command {
	var cfg torture.Config
	var scenarios, report, format string
	var outputs []string
	var js jsonSwitch
	var force bool
	cmd := &cobra.Command{
		Use:   "torture [--scenarios LIST] [--iterations N] [--duration D] [--seed S] [--json] [--output FILE ...]",
		Short: "Try to make the log lose or alter an acknowledged event, with injected faults",
		Long: `torture runs the torture suite: scenarios that crash, kill, fill, fail,
corrupt and confuse the log, each iteration deterministic from its seed, and
checks that no acknowledged event is ever lost or silently altered. Every
failure is printed with its seed and the command that replays exactly that
iteration. A progress line shows on a terminal. The summary is printed as
text, or as JSON with --json. --output FILE (repeatable) also writes it to a
file, in the format --format names or, without --format, the file's
extension: .html an HTML page with a chart, .json the JSON summary, anything
else text.

Scenarios: ` + strings.Join(torture.Names(), ", ") + `
(go doc github.com/willibrandon/mtlog-audit/torture NAME gives each one's
pass criteria). DiskFullTmpfs mounts a real tmpfs and needs root; it is
reported as skipped otherwise.

Exit status: 0 every iteration passed; 1 an iteration failed; 2 usage error.`,
		Example: `  mtlog-audit torture --iterations 1000
  mtlog-audit torture --scenarios PowerLoss,RandomCorruption --duration 10m -o torture.html -o torture.json
  mtlog-audit torture --iterations 100 --json | jq .scenarios
  mtlog-audit torture --scenarios PowerLoss --seed 123 --iterations 1     # replay one failure`,
		Args: func(cmd *cobra.Command, args []string) error {
			// Until the next release, --json FILE (the old spelling, a
			// file) still works: the switch leaves FILE as an argument.
			if len(args) == 1 && js.on && js.file == "" {
				return nil
			}
			return cobra.NoArgs(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				js.on, js.file = false, args[0]
			}
			files, err := tortureOutputs(e, outputs, format, report, js.file)
			if err != nil {
				return err
			}
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
			for i := range files {
				if files[i].out, err = createOutput(files[i].path, "--output", force); err != nil {
					for _, f := range files[:i] {
						f.out.abort(err)
					}
					return err
				}
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
				for _, f := range files {
					f.out.abort(runErr)
				}
				return failErr(runErr)
			}
			if js.on {
				err = sum.WriteJSON(e.stdout)
			} else {
				err = sum.WriteText(e.stdout)
			}
			if err != nil {
				return err
			}
			for _, f := range files {
				if err := writeSummary(sum, f.format, f.out.File); err != nil {
					return f.out.abort(err)
				}
				if err := f.out.commit(); err != nil {
					return err
				}
				e.infof("wrote %s", f.path)
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
	f.VarP(&js, "json", "", "print the summary as JSON on stdout instead of text")
	f.Lookup("json").NoOptDefVal = "true"
	f.StringArrayVarP(&outputs, "output", "o", nil, "also write the summary to this file (repeatable; the format from --format or the extension: .html, .json, else text)")
	f.StringVar(&format, "format", "", "the format of the --output files: html (a page with a chart), json or text (default: from each file's extension)")
	f.StringVar(&report, "report", "", "the old spelling of --output FILE.html")
	deprecate(cmd, "report", "use --output FILE.html (-o FILE.html); --report goes away in the next release")
	f.BoolVar(&force, "force", false, "overwrite --output files")
	return cmd
}

// tortureFormats are the formats of torture's --output files.
var tortureFormats = []string{"html", "json", "text"}

// tortureFile is one file torture writes its summary to.
type tortureFile struct {
	path, format string
	out          *outFile
}

// tortureOutputs resolves the files torture writes: --output (format from
// --format or the extension), and the old spellings --report FILE and
// --json FILE, each with a deprecation message.
func tortureOutputs(e *env, outputs []string, format, report, jsonFile string) ([]tortureFile, error) {
	switch format {
	case "", "html", "json", "text":
	default:
		return nil, &flagError{fmt.Errorf("--format %q: use html, json or text", format)}
	}
	if format != "" && len(outputs) == 0 {
		return nil, &flagError{errors.New("--format is the format of the --output files: give --output FILE too (--json prints JSON on stdout)")}
	}
	var files []tortureFile
	for _, p := range outputs {
		if p == "" || p == "-" {
			return nil, &flagError{errors.New("--output must name a file (the summary is printed on stdout anyway)")}
		}
		fm := format
		if fm == "" {
			switch strings.ToLower(filepath.Ext(p)) {
			case ".html", ".htm":
				fm = "html"
			case ".json":
				fm = "json"
			default:
				fm = "text"
			}
		}
		files = append(files, tortureFile{path: p, format: fm})
	}
	if report != "" {
		files = append(files, tortureFile{path: report, format: "html"})
	}
	if jsonFile != "" {
		fmt.Fprintf(e.stderr, "Flag --json FILE is deprecated: --json is now a switch (JSON on stdout); use --output %s; --json takes no value from the next release\n", jsonFile)
		files = append(files, tortureFile{path: jsonFile, format: "json"})
	}
	return files, nil
}

func writeSummary(sum *torture.Summary, format string, w io.Writer) error {
	switch format {
	case "html":
		return sum.WriteHTML(w)
	case "json":
		return sum.WriteJSON(w)
	}
	return sum.WriteText(w)
}

// jsonSwitch is torture's --json: a switch (--json, --json=true,
// --json=false) that, for one release, also takes a file name, the old
// meaning (--json=FILE).
type jsonSwitch struct {
	on   bool
	file string
}

func (j *jsonSwitch) String() string {
	if j.file != "" {
		return j.file
	}
	return strconv.FormatBool(j.on)
}

func (j *jsonSwitch) Set(s string) error {
	if b, err := strconv.ParseBool(s); err == nil {
		j.on, j.file = b, ""
		return nil
	}
	j.on, j.file = false, s
	return nil
}

// Type is "bool": --json is a switch; a value is the deprecated spelling.
func (j *jsonSwitch) Type() string { return "bool" }
