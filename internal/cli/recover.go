package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/internal/recovery"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

func recoverCmd(e *env) *cobra.Command {
	var in, out, mode, signingKey, mirror string
	var keys []string
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

On a signed log given its own key as --signing-key, every salvaged batch must
also carry that key's authentication tag: records appended by someone without
the key (valid checksums, no such tag) are refused, not copied, and reported
(exit 1). Without the log's key the report says they were not checked.

With --mirror DIR (a copy kept by audit.WithRedundancy, or any copy of the
same log), recover instead copies the input to --output and repairs it from
the mirror: damaged or missing files are taken from the mirror, a segment
damaged in both copies at different places is pieced together, and the result
is the same log with its original numbering, hash chain and checkpoints,
verified (with --key, signed checkpoints too). Without --key, signatures
cannot be checked, but the records are compared with the roots of the stored
checkpoints: a copy that does not reproduce them is not taken, and when no
copy does, nothing is written and recover says it could not verify; the
report says when there was no stored checkpoint to compare with. Neither the
input nor the mirror is modified. If no verified log can be made from the
two, nothing is written and the damage is reported.

Keep the damaged input as evidence. The report is printed as text, or JSON
with --json.

Exit status: 0 nothing was lost; 1 records were lost (gaps) or recovery
failed; 2 usage or environment error.`,
		Example: `  mtlog-audit recover --input /var/lib/app/audit --output /var/lib/app/audit-recovered
  mtlog-audit recover --input /var/lib/app/audit --mirror /mnt/disk2/audit --output /var/lib/app/audit-repaired --key audit.pub
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
			check := checkLogDir
			if mirror != "" {
				check = checkDir // the mirror may hold the segments the input lost
			}
			if err := check("--input", in); err != nil {
				return err
			}
			if err := checkNotLive(in); err != nil {
				return err
			}
			if abs(in) == abs(out) {
				return usageErr("--output must differ from --input: recover never writes into the damaged log")
			}
			if mirror != "" {
				return repairFromMirror(cmd, e, in, mirror, out, keys, asJSON)
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
	f.StringVarP(&out, "output", "o", "", "directory for the new log (must not exist or be empty)")
	f.StringVar(&mode, "mode", "safe", "safe or aggressive")
	f.StringVar(&signingKey, "signing-key", "", "private key file to sign the new log's checkpoints")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON on stdout")
	f.StringVar(&mirror, "mirror", "", "repair from this mirror copy of the log instead of salvaging")
	f.StringArrayVar(&keys, "key", nil, "with --mirror: public key(s) to check signed checkpoints while repairing")
	return cmd
}

// repairFromMirror copies the input log to out and repairs the copy from
// mirror, leaving input and mirror untouched.
func repairFromMirror(cmd *cobra.Command, e *env, in, mirror, out string, keys []string, asJSON bool) error {
	if err := checkLogDir("--mirror", mirror); err != nil {
		return err
	}
	vkeys, err := readKeys(keys)
	if err != nil {
		return err
	}
	if ents, err := os.ReadDir(out); err == nil && len(ents) > 0 {
		return usageErr("%s is not empty: give a new or empty --output directory", out)
	}
	stage := out + ".repairing"
	os.RemoveAll(stage)
	if err := copyLogFiles(in, stage); err != nil {
		os.RemoveAll(stage)
		return fmt.Errorf("copy %s: %w", in, err)
	}
	var opts []audit.VerifyOption
	if len(vkeys) > 0 {
		opts = append(opts, audit.WithTrustedKeys(vkeys...))
	}
	rep, rerr := audit.RepairFromMirror(cmd.Context(), vfs.OS(), stage, mirror, opts...)
	renameStage(rep, stage, in, out)
	if rerr != nil {
		os.RemoveAll(stage)
		if rep != nil {
			if asJSON {
				writeJSON(e.stdout, rep)
			} else {
				fmt.Fprintln(e.stdout, rep.String())
			}
		}
		return failErr(fmt.Errorf("repair from %s: %w", mirror, rerr))
	}
	os.Remove(filepath.Join(stage, wal.LockName))
	os.Remove(out) // an empty directory
	if err := os.Rename(stage, out); err != nil {
		os.RemoveAll(stage)
		return fmt.Errorf("move the repaired log into place: %w", err)
	}
	if asJSON {
		return writeJSON(e.stdout, rep)
	}
	fmt.Fprintf(e.stdout, "Repaired copy of %s from mirror %s into %s\n%s\n", in, mirror, out, rep.String())
	return nil
}

// renameStage names, in rep, the staging copy of the input by what it
// stands for: the input as found (Copies) and the output it becomes
// (Actions), so that no report mentions the temporary directory.
func renameStage(rep *audit.RepairReport, stage, in, out string) {
	if rep == nil {
		return
	}
	for i := range rep.Copies {
		if rep.Copies[i].Dir == stage {
			rep.Copies[i].Dir = in
		}
	}
	for i := range rep.Actions {
		if rep.Actions[i].Dir == stage {
			rep.Actions[i].Dir = out
		}
	}
}

// copyLogFiles copies the regular files of src (not LOCK) into a new
// directory dst, fsyncing each, with their mode (at most 0640).
func copyLogFiles(src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o750); err != nil {
		return err
	}
	for _, ent := range ents {
		if !ent.Type().IsRegular() || ent.Name() == wal.LockName {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, ent.Name()))
		if err != nil {
			return err
		}
		info, err := ent.Info()
		if err != nil {
			return err
		}
		// A key file (0600) stays owner-only: the log refuses one that
		// others may read.
		f, err := os.OpenFile(filepath.Join(dst, ent.Name()), os.O_WRONLY|os.O_CREATE|os.O_EXCL, info.Mode().Perm()&0o640)
		if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return filepath.Clean(a)
}
