package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/compliance/report"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// reportFormats are the formats of 'compliance report', by name.
var reportFormats = map[string]func(io.Writer, *report.Report) error{
	"html": report.WriteHTML, "pdf": report.WritePDF, "json": report.WriteJSON,
}

func complianceReportCmd(e *env) *cobra.Command {
	var dir, profile, period, output, format string
	var keys []string
	var heartbeat time.Duration
	var force, asJSON bool
	cmd := &cobra.Command{
		Use:   "report --wal DIR --profile P --period PERIOD (-o FILE [--format html|pdf|json] | --json) [--key PUBKEY]",
		Short: "Write a compliance report of a log over a period: HTML, PDF or JSON",
		Long: `report writes what an assessor asks for about an audit log over a period,
for one compliance profile (` + strings.Join(report.Profiles(), ", ") + `):

  1. controls: each control of the profile, with the standard's clause
     number, what it requires, the evidence from this log, and pass, fail
     or not applicable with the reason;
  2. integrity: the result of verify, the signed checkpoints and their
     signers, and every gap in the checkpoint heartbeat longer than
     --heartbeat (the sink's configured heartbeat);
  3. activity: the events of the period counted by Action, Outcome and
     Actor, failures, top actors, required fields missing;
  4. reads of the log: recorded in the log and in its access log
     (DIR/access) when there is one;
  5. retention deletions and legal holds;
  6. for each evidence item, the mtlog-audit command that re-checks it.

The format is the extension of --output (.html, .pdf, .json), or --format.
--json prints the JSON report on stdout (as well as writing --output, when
given). The HTML is one file with inline CSS and SVG charts: it opens offline. The
JSON is the report's data, documented in docs/compliance/reports.md.

The period is ` + report.PeriodHelp + `.

The log is read once for verification and once for the report, streaming:
memory does not grow with the log. A log or period without events gives an
empty report that says so. Give --key (the log's public key) so that
signatures are checked; without it the signing controls fail.

Exit status: 0 the report was written and no control fails; 1 the report
was written and a control fails (or writing failed); 2 usage error (bad
period, unknown profile, not a log, an output file that exists).`,
		Example: `  mtlog-audit compliance report --wal /var/lib/app/audit --key audit.pub --profile PCI-DSS --period 2026-Q1 -o q1.html
  mtlog-audit compliance report --wal ./audit-wal --key audit.pub --profile HIPAA --period 2026-03 -o march.pdf
  mtlog-audit compliance report --wal ./audit-wal --key audit.pub --profile SOX --period 2026-01-01..2026-06-30 -o h1.json
  mtlog-audit compliance report --wal ./audit-wal --profile GDPR --period 2026 --json | jq .summary`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "wal", "profile", "period"); err != nil {
				return err
			}
			if output == "" && !asJSON {
				return &flagError{errors.New("missing required flag(s) --output (or --json for the JSON report on stdout)")}
			}
			prof, err := report.LookupProfile(profile)
			if err != nil {
				return usageErr("--profile: %w", err)
			}
			per, err := report.ParsePeriod(period)
			if err != nil {
				return usageErr("--period: %w", err)
			}
			var write func(io.Writer, *report.Report) error
			if output != "" {
				if write, err = reportFormat(output, format); err != nil {
					return err
				}
			} else if format != "" {
				return usageErr("--format chooses the format of the --output file: give -o FILE too (--json prints JSON on stdout)")
			}
			if heartbeat < 0 {
				return usageErr("--heartbeat %v: give the sink's checkpoint heartbeat (audit.WithCheckpoints; default 1m), or 0 not to check it", heartbeat)
			}
			if err := checkLogDir("--wal", dir); err != nil {
				return err
			}
			vkeys, err := readKeys(keys)
			if err != nil {
				return err
			}
			key := ""
			if len(keys) > 0 {
				key = keys[0]
			}
			b := report.NewBuilder(report.Config{Profile: prof, Log: dir, Period: per, Now: time.Now(), Generator: "mtlog-audit " + toolVersion(),
				Heartbeat: heartbeat, Key: key})
			if err := gatherReport(cmd, e, b, dir, vkeys); err != nil {
				return err
			}
			r := b.Build()
			if output != "" {
				if err := writeReport(output, force, write, r); err != nil {
					return err
				}
				e.infof("wrote %s: %s %s: %d controls pass, %d fail, %d not applicable", output, r.Profile, r.Period.Text, r.Summary.Pass, r.Summary.Fail, r.Summary.NotApplicable)
			}
			if asJSON {
				if err := report.WriteJSON(e.stdout, r); err != nil {
					return err
				}
			}
			if r.Summary.Fail > 0 {
				return &exitError{code: ExitFailed, err: errors.New("")}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "wal", "", "the log's directory")
	f.StringVar(&profile, "profile", "", "the compliance profile: "+strings.Join(report.Profiles(), ", "))
	f.StringVar(&period, "period", "", "the period: 2026-Q1, 2026-03, 2026, 2026-03-05, or FROM..TO (dates or RFC 3339 times)")
	f.StringVarP(&output, "output", "o", "", "the report file to write (.html, .pdf or .json)")
	f.StringVar(&format, "format", "", "the format, instead of the extension of --output: html, pdf or json")
	f.StringArrayVar(&keys, "key", nil, "the log's public (genesis) key: a .pub file or the key text")
	f.DurationVar(&heartbeat, "heartbeat", time.Minute, "the sink's checkpoint heartbeat: gaps between checkpoints longer than this are listed (0: not checked)")
	f.BoolVar(&force, "force", false, "overwrite an existing output file")
	f.BoolVar(&asJSON, "json", false, "print the JSON report on stdout")
	// Registered before the root's registerCompletions, which leaves them.
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"html", "pdf", "json"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("profile", cobra.FixedCompletions(report.Profiles(), cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// reportFormat picks the renderer from --format, else from the extension
// of --output.
func reportFormat(output, format string) (func(io.Writer, *report.Report) error, error) {
	name := strings.ToLower(strings.TrimSpace(format))
	if name == "" {
		name = strings.TrimPrefix(strings.ToLower(filepath.Ext(output)), ".")
		if name == "htm" {
			name = "html"
		}
		if _, ok := reportFormats[name]; !ok {
			return nil, usageErr("--output %s: the extension says no format; name the file .html, .pdf or .json, or give --format", output)
		}
	}
	w, ok := reportFormats[name]
	if !ok {
		return nil, usageErr("--format %q: use html, pdf or json", format)
	}
	return w, nil
}

// gatherReport feeds b from the log in dir through the audit API: the
// verification result, every event, the access log's reads and its
// verification, and the stored checkpoints.
func gatherReport(cmd *cobra.Command, e *env, b *report.Builder, dir string, vkeys []string) error {
	ctx := cmd.Context()
	// Verification and the pass over the events read the log side by
	// side (each streams it): on two cores the report takes the time of
	// the longer one.
	type verified struct {
		rep *audit.IntegrityReport
		err error
	}
	done := make(chan verified, 1)
	go func() {
		rep, err := audit.Verify(ctx, dir, audit.WithTrustedKeys(vkeys...))
		done <- verified{rep, err}
	}()
	bar := e.newProgress("report", dir)
	var n uint64
	var rerr error
	for ev, err := range audit.Replay(ctx, dir, time.Time{}, time.Time{}) {
		if err != nil {
			rerr = err
			break
		}
		n++
		b.Add(ev)
	}
	bar.finish()
	v := <-done
	if v.rep == nil || (v.err != nil && v.rep.Problem == nil) {
		return wrapLogErr(dir, v.err)
	}
	if rerr != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.Note(fmt.Sprintf("Reading the log stopped after %d events: %v. The counts cover the events before.", n, rerr))
	}
	b.SetVerify(verifyResultOf(v.rep, len(vkeys) > 0))
	access := filepath.Join(dir, "access")
	if st, err := os.Stat(access); err == nil && st.IsDir() && checkLogDir("access", access) == nil {
		arep, _ := audit.Verify(ctx, access, audit.WithTrustedKeys(vkeys...))
		if arep != nil {
			b.SetAccessLog(access, verifyResultOf(arep, len(vkeys) > 0))
		}
		for ev, err := range audit.Replay(ctx, access, time.Time{}, time.Time{}) {
			if err != nil {
				b.Note(fmt.Sprintf("Reading the access log %s stopped: %v.", access, err))
				break
			}
			b.AddAccess(ev)
		}
	}
	cps, err := integrity.ReadCheckpointLog(vfs.OS(), filepath.Join(dir, integrity.CheckpointsFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		b.Note(fmt.Sprintf("The stored checkpoints cannot be read: %v.", err))
	}
	for _, raw := range cps {
		cp, err := parseAny(raw)
		if err != nil {
			continue // verify reports it
		}
		b.AddCheckpoint(cp.Time, cp.Size, noteSigners(raw))
	}
	return nil
}

// verifyResultOf is the report's form of a verification result.
func verifyResultOf(rep *audit.IntegrityReport, keys bool) report.VerifyResult {
	v := report.VerifyResult{OK: rep.OK, Uncovered: rep.UncoveredTail() > 0 || rep.TornTail != nil, Records: rep.Records, Events: rep.Events,
		FirstSeq: rep.FirstSeq, LastSeq: rep.LastSeq, Segments: rep.Segments, Bytes: rep.Bytes, KeysGiven: keys,
		CheckpointsVerified: rep.Checkpoints, Covered: rep.Covered}
	if rep.Problem != nil {
		v.OK, v.Problem = false, rep.Problem.Error()
		if rep.Problem.Code == integrity.CodeUntrustedKey {
			v.Problem += " (the key given is not the log's, or the checkpoints were re-signed)"
		}
	}
	return v
}

// writeReport renders r with write to the file output.
func writeReport(output string, force bool, write func(io.Writer, *report.Report) error, r *report.Report) error {
	out, err := createOutput(output, "--output", force)
	if err != nil {
		return err
	}
	if err := write(out, r); err != nil {
		return out.abort(err)
	}
	return out.commit()
}

// toolVersion is the version 'mtlog-audit version' prints.
func toolVersion() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
