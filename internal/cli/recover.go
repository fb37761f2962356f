package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/willibrandon/mtlog-audit/internal/recovery"
	"github.com/willibrandon/mtlog-audit/wal"
)

func recoverCmd(e *env) *cobra.Command {
	var in, out, mode, signingKey string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "recover --input DIR --output DIR [--mode safe|aggressive] [--json]",
		Short: "Copy every record that still verifies from a damaged log into a new log",
		Long: `recover reads a damaged log (never modifying it) and writes every event
record that still verifies into a fresh log in --output, which must not exist
or be empty. The new log gets new, contiguous sequence numbers and its own
hash chain and tree (signed with --signing-key if given).

  --mode safe        stop at the first damage: the new log is exactly the
                     intact prefix
  --mode aggressive  after damage, look for the next intact batch and carry
                     on; every gap is reported (segment, offset, length and
                     the sequence numbers missing)

Keep the damaged input as evidence. The report is printed as text, or JSON
with --json.

Exit status: 0 nothing was lost; 1 records were lost (gaps) or recovery
failed; 2 usage or environment error.`,
		Example: `  mtlog-audit recover --input /var/lib/app/audit --output /var/lib/app/audit-recovered
  mtlog-audit recover --input ./damaged --output ./salvaged --mode aggressive --json > report.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "input", "output"); err != nil {
				return err
			}
			var m wal.SalvageMode
			switch mode {
			case "safe":
				m = wal.SalvageSafe
			case "aggressive":
				m = wal.SalvageAggressive
			default:
				return &flagError{fmt.Errorf("--mode %q: use safe or aggressive", mode)}
			}
			if err := checkLogDir(in); err != nil {
				return err
			}
			if abs(in) == abs(out) {
				return usageErr("--output must differ from --input: recover never writes into the damaged log")
			}
			var skey string
			if signingKey != "" {
				data, err := os.ReadFile(signingKey)
				if err != nil {
					return usageErr("read --signing-key: %w", err)
				}
				skey = strings.TrimSpace(string(data))
			}
			bar := e.newProgress("recover", in)
			if bar != nil {
				_, total := segmentOffsets(in)
				bar.bar.ChangeMax64(total)
			}
			rep, err := recovery.Recover(cmd.Context(), in, out, recovery.Options{Mode: m, SigningKey: skey, Progress: bar.bytes})
			bar.finish()
			if err != nil && rep == nil {
				// Recover fails before salvaging anything only for
				// problems with its inputs: the output directory, the
				// input log, the key.
				if errors.Is(err, context.Canceled) {
					return err
				}
				werr := wrapLogErr(in, err)
				var ee *exitError
				if errors.As(werr, &ee) {
					return werr
				}
				return usageErr("%w", err)
			}
			if asJSON {
				if werr := rep.WriteJSON(e.stdout); werr != nil {
					return werr
				}
			} else if werr := rep.WriteText(e.stdout); werr != nil {
				return werr
			}
			if err != nil {
				return failErr(err)
			}
			if rep.Lost() {
				return &exitError{code: ExitFailed, err: errors.New("")}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&in, "input", "", "the damaged log's directory (read only)")
	f.StringVar(&out, "output", "", "directory for the new log (must not exist or be empty)")
	f.StringVar(&mode, "mode", "safe", "safe or aggressive")
	f.StringVar(&signingKey, "signing-key", "", "private key file to sign the new log's checkpoints")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON on stdout")
	return cmd
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return filepath.Clean(a)
}
