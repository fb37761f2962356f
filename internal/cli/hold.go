package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/vfs"
)

func holdCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hold",
		Short: "Set, clear or list legal holds (retention deletes nothing they cover)",
		Long: `A legal hold keeps every segment holding an event in its time range
(or the whole log) from retention. Holds are recorded only as lifecycle
events in the log itself, chained and signed like every record: no file
outside the log can be edited to lift one (docs/retention.md).`,
		Example: `  mtlog-audit hold set --wal ./audit-wal --signing-key audit.key --reason "SEC inquiry 2026-14" CASE-14
  mtlog-audit hold list --wal ./audit-wal
  mtlog-audit hold clear --wal ./audit-wal --signing-key audit.key --reason "inquiry closed" CASE-14`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(holdSetCmd(e), holdClearCmd(e), holdListCmd(e))
	return cmd
}

func holdSetCmd(e *env) *cobra.Command {
	var dir, signingKey, reason, from, to string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "set --wal DIR --signing-key FILE --reason TEXT ID",
		Short: "Place a legal hold",
		Long: `set places legal hold ID (one word, such as a case number), covering the
events timed in [--from, --to] (RFC 3339; either may be left open, both
open covers the whole log). It opens the log for writing: when another
process holds it, call Sink.SetHold there.`,
		Example: `  mtlog-audit hold set --wal ./audit-wal --signing-key audit.key --reason "litigation hold" CASE-7
  mtlog-audit hold set --wal ./audit-wal --signing-key audit.key --reason "audit 2025" --from 2025-01-01T00:00:00Z --to 2025-12-31T23:59:59Z AUDIT-2025`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "wal", "signing-key", "reason"); err != nil {
				return err
			}
			if err := checkLogDir("--wal", dir); err != nil {
				return err
			}
			f, err := parseHoldTime("--from", from)
			if err != nil {
				return err
			}
			t, err := parseHoldTime("--to", to)
			if err != nil {
				return err
			}
			return changeHold(e, dir, signingKey, asJSON, args[0], "set", func(s *audit.Sink) (audit.Receipt, error) {
				return s.SetHold(cmd.Context(), args[0], reason, f, t)
			})
		},
	}
	holdFlags(cmd, &dir, &signingKey, &reason, &asJSON, "why the hold is placed (recorded in the log)")
	fl := cmd.Flags()
	fl.StringVar(&from, "from", "", "first event time covered (RFC 3339; default: open)")
	fl.StringVar(&to, "to", "", "last event time covered (RFC 3339; default: open)")
	return cmd
}

// holdChangeJSON is what hold set and clear print with --json.
type holdChangeJSON struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Seq   uint64 `json:"event_seq"`
}

// holdFlags adds the flags hold set and clear share.
func holdFlags(cmd *cobra.Command, dir, signingKey, reason *string, asJSON *bool, reasonHelp string) {
	fl := cmd.Flags()
	fl.StringVar(dir, "wal", "", "the log")
	fl.StringVar(signingKey, "signing-key", "", "the log's signing key file")
	fl.StringVar(reason, "reason", "", reasonHelp)
	fl.BoolVar(asJSON, "json", false, "print the result as JSON")
}

// changeHold opens the log for writing, runs change and prints the hold's
// new state.
func changeHold(e *env, dir, signingKey string, asJSON bool, id, state string, change func(*audit.Sink) (audit.Receipt, error)) error {
	s, err := openForRetention(dir, signingKey)
	if err != nil {
		return err
	}
	r, err := change(s)
	if cerr := s.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return retentionErr(err)
	}
	if asJSON {
		return writeJSON(e.stdout, holdChangeJSON{id, state, r.Seq})
	}
	fmt.Fprintf(e.stdout, "legal hold %s %s (event at sequence number %d)\n", id, state, r.Seq)
	return nil
}

func parseHoldTime(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usageErr("%s %q: give an RFC 3339 time such as 2025-01-01T00:00:00Z", flag, s)
	}
	return t, nil
}

func holdClearCmd(e *env) *cobra.Command {
	var dir, signingKey, reason string
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "clear --wal DIR --signing-key FILE --reason TEXT ID",
		Short:   "Lift a legal hold",
		Long:    `clear lifts legal hold ID, recording the reason in the log.`,
		Example: `  mtlog-audit hold clear --wal ./audit-wal --signing-key audit.key --reason "matter closed" CASE-7`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "wal", "signing-key", "reason"); err != nil {
				return err
			}
			if err := checkLogDir("--wal", dir); err != nil {
				return err
			}
			return changeHold(e, dir, signingKey, asJSON, args[0], "cleared", func(s *audit.Sink) (audit.Receipt, error) {
				return s.ClearHold(cmd.Context(), args[0], reason)
			})
		},
	}
	holdFlags(cmd, &dir, &signingKey, &reason, &asJSON, "why the hold is lifted (recorded in the log)")
	return cmd
}

// holdJSON is one hold in hold list --json.
type holdJSON struct {
	ID     string    `json:"id"`
	Reason string    `json:"reason"`
	Set    time.Time `json:"set"`
	From   time.Time `json:"from,omitzero"`
	To     time.Time `json:"to,omitzero"`
}

func holdListCmd(e *env) *cobra.Command {
	var dir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list --wal DIR",
		Short: "List the legal holds in force",
		Long:  `list reads the log (without opening it for writing) and prints the legal holds in force.`,
		Example: `  mtlog-audit hold list --wal ./audit-wal
  mtlog-audit hold list --wal ./audit-wal --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "wal"); err != nil {
				return err
			}
			if err := checkLogDir("--wal", dir); err != nil {
				return err
			}
			holds, err := audit.Holds(cmd.Context(), vfs.OS(), dir)
			if err != nil {
				return failErr(err)
			}
			if asJSON {
				out := make([]holdJSON, 0, len(holds))
				for _, h := range holds {
					out = append(out, holdJSON{h.ID, h.Reason, h.Set, h.From, h.To})
				}
				return writeJSON(e.stdout, out)
			}
			if len(holds) == 0 {
				fmt.Fprintln(e.stdout, "no legal hold in force")
			}
			for _, h := range holds {
				span := "the whole log"
				if !h.From.IsZero() || !h.To.IsZero() {
					span = fmt.Sprintf("events %s to %s", holdBound(h.From), holdBound(h.To))
				}
				fmt.Fprintf(e.stdout, "%s  set %s  covers %s  reason: %s\n", h.ID, h.Set.UTC().Format(time.RFC3339), span, h.Reason)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "wal", "", "the log")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the holds as JSON")
	return cmd
}

func holdBound(t time.Time) string {
	if t.IsZero() {
		return "(open)"
	}
	return t.UTC().Format(time.RFC3339)
}
