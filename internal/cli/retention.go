package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/compliance"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// retentionFlags are the flags retention status and apply share.
type retentionFlags struct {
	dir, retention, min, max, profile string
	asJSON                            bool
}

func (f *retentionFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.dir, "wal", "", "the log")
	fl.StringVar(&f.retention, "retention", "", "how long events are kept: a Go duration (8760h) or days/years (90d, 6y)")
	fl.StringVar(&f.min, "min", "", "the policy's minimum retention (deleting earlier is refused), such as 6y")
	fl.StringVar(&f.max, "max", "", "the policy's maximum retention (older data is overdue), such as 1y")
	fl.StringVar(&f.profile, "policy", "", "the policy's name, recorded in the retention checkpoint (such as GDPR)")
	fl.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
}

// parse checks the flags and returns the retention and policy.
func (f *retentionFlags) parse(cmd *cobra.Command) (time.Duration, compliance.RetentionPolicy, error) {
	var p compliance.RetentionPolicy
	if err := requireFlags(cmd, "wal", "retention"); err != nil {
		return 0, p, err
	}
	if err := checkLogDir("--wal", f.dir); err != nil {
		return 0, p, err
	}
	d, err := parseRetention("--retention", f.retention)
	if err != nil {
		return 0, p, err
	}
	if p.Min, err = parseRetention("--min", f.min); err != nil {
		return 0, p, err
	}
	if p.Max, err = parseRetention("--max", f.max); err != nil {
		return 0, p, err
	}
	p.Name = f.profile
	return d, p, nil
}

// parseRetention parses a duration: Go's syntax, or a whole number of days
// (90d) or 365-day years (6y). "" is 0.
func parseRetention(flag, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "y": 365 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			if v, err := strconv.ParseUint(n, 10, 16); err == nil && v > 0 {
				return time.Duration(v) * unit, nil
			}
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, usageErr("%s %q: give a positive duration such as 8760h, 90d or 6y", flag, s)
	}
	return d, nil
}

// retentionJSON is what retention status and apply print with --json.
type retentionJSON struct {
	DryRun   bool                     `json:"dry_run"`
	Policy   string                   `json:"policy"`
	Cutoff   time.Time                `json:"cutoff"`
	Pruned   uint64                   `json:"pruned_before"`
	Deleted  int                      `json:"deleted_segments"`
	Records  uint64                   `json:"deleted_records"`
	PrunedTo uint64                   `json:"pruned_to"`
	Overdue  bool                     `json:"overdue"`
	Segments []audit.RetentionSegment `json:"segments"`
}

func printRetention(e *env, rep *audit.RetentionReport, asJSON bool) error {
	if asJSON {
		return writeJSON(e.stdout, retentionJSON{rep.DryRun, rep.Policy, rep.Cutoff, rep.Pruned, rep.Deleted, rep.Records, rep.PrunedTo, rep.Overdue, rep.Segments})
	}
	verb := "deleted"
	if rep.DryRun {
		verb = "would delete"
	}
	fmt.Fprintf(e.stdout, "policy: %s; cutoff %s\n", rep.Policy, rep.Cutoff.UTC().Format(time.RFC3339))
	if rep.Pruned > 0 {
		fmt.Fprintf(e.stdout, "already pruned under retention: records 1 to %d\n", rep.Pruned)
	}
	for _, sg := range rep.Segments {
		what := "delete"
		if !sg.Deleted {
			what = "keep (" + string(sg.Kept)
			if sg.HoldID != "" {
				what += " " + sg.HoldID
			}
			what += ")"
		}
		fmt.Fprintf(e.stdout, "  segment %d  records %d-%d  %d bytes  %s\n", sg.Segment, sg.FirstSeq, sg.LastSeq, sg.Bytes, what)
	}
	fmt.Fprintf(e.stdout, "%s %d segments (%d records)\n", verb, rep.Deleted, rep.Records)
	if rep.Overdue {
		fmt.Fprintln(e.stdout, "OVERDUE: the log holds data older than the policy's maximum that no legal hold covers")
	}
	return nil
}

func retentionCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "retention",
		Short: "Show or apply the retention policy (delete old sealed segments)",
		Long: `retention deletes the oldest whole sealed segments of a log once every
event in them is older than the retention period, unless a legal hold
(mtlog-audit hold) covers them or, for a shipped log, the backends do not
hold them yet. Before deleting, it stores a retention checkpoint signed by
the log's key, so that verify still proves everything after the pruned
prefix (docs/retention.md).`,
		Example: `  mtlog-audit retention status --wal ./audit-wal --retention 1y --max 1y --policy GDPR
  mtlog-audit retention apply --wal ./audit-wal --retention 6y --min 6y --signing-key audit.key`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(retentionStatusCmd(e), retentionApplyCmd(e))
	return cmd
}

func retentionStatusCmd(e *env) *cobra.Command {
	var f retentionFlags
	cmd := &cobra.Command{
		Use:   "status --wal DIR --retention D",
		Short: "Show what retention would delete; exit 1 when data is overdue",
		Long: `status lists the sealed segments, what a retention run would delete and
why each other segment is kept. It reads the log without opening it for
writing. It exits 1 when the log holds data older than --max that no legal
hold covers (GDPR 5(1)(e): deletion is then required), 0 otherwise.`,
		Example: `  mtlog-audit retention status --wal ./audit-wal --retention 1y --max 1y --policy GDPR
  mtlog-audit retention status --wal ./audit-wal --retention 2190d --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, p, err := f.parse(cmd)
			if err != nil {
				return err
			}
			rep, err := audit.RetentionStatusOf(cmd.Context(), vfs.OS(), f.dir, audit.RetentionConfig{Retention: d, Policy: p})
			if err != nil {
				return retentionErr(err)
			}
			if err := printRetention(e, rep, f.asJSON); err != nil {
				return err
			}
			if rep.Overdue {
				return failErr(errors.New("retention overdue: run `mtlog-audit retention apply` (or Sink.ApplyRetention)"))
			}
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func retentionApplyCmd(e *env) *cobra.Command {
	var f retentionFlags
	var signingKey string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply --wal DIR --retention D --signing-key FILE",
		Short: "Delete the sealed segments past retention",
		Long: `apply verifies the log, records the deletion as a lifecycle event, stores
a signed retention checkpoint and deletes the segments past retention,
oldest first. It opens the log for writing: when another process holds
it open, call Sink.ApplyRetention in that process instead (or stop it and
run this again). A crash at any point leaves a log that opens and verifies;
running apply again finishes the removal.`,
		Example: `  mtlog-audit retention apply --wal ./audit-wal --retention 6y --min 6y --policy HIPAA --signing-key audit.key
  mtlog-audit retention apply --wal ./audit-wal --retention 1y --signing-key audit.key --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, p, err := f.parse(cmd)
			if err != nil {
				return err
			}
			if err := requireFlags(cmd, "signing-key"); err != nil {
				return err
			}
			s, err := openForRetention(f.dir, signingKey, audit.WithRetention(d), audit.WithRetentionPolicy(p))
			if err != nil {
				return err
			}
			rep, err := s.ApplyRetention(cmd.Context(), dryRun)
			if cerr := s.Close(); err == nil && cerr != nil {
				err = cerr
			}
			if err != nil {
				return retentionErr(err)
			}
			return printRetention(e, rep, f.asJSON)
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&signingKey, "signing-key", "", "the log's signing key file")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only show what would be deleted")
	return cmd
}

// openForRetention opens the log for writing, saying what to do when a
// running process holds it.
func openForRetention(dir, signingKey string, opts ...audit.Option) (*audit.Sink, error) {
	opts = append([]audit.Option{audit.WithWAL(dir), audit.WithSigningKeyFile(signingKey)}, opts...)
	s, err := audit.New(opts...)
	switch {
	case errors.Is(err, vfs.ErrLocked):
		return nil, usageErr("%s is open by another process: call Sink.ApplyRetention, SetHold or ClearHold in that process, or stop it and run this again (%w)", dir, err)
	case err != nil:
		return nil, usageErr("open %s: %w", dir, err)
	}
	return s, nil
}

// retentionErr classifies a retention error: a refusal by the policy is a
// usage error (exit 2), anything else a failure (exit 1).
func retentionErr(err error) error {
	if errors.Is(err, compliance.ErrRetentionTooShort) || errors.Is(err, compliance.ErrNoRetention) || errors.Is(err, audit.ErrHold) {
		return usageErr("%w", err)
	}
	return failErr(err)
}
