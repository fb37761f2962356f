package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
	"golang.org/x/mod/module"
)

func proveCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "prove",
		Short: "Write a self-contained inclusion or consistency proof file",
		Long: `prove writes a proof file that anyone can check offline with
'mtlog-audit verify-proof FILE --key PUBKEY': it embeds the signed
checkpoint(s), the record's leaf (for inclusion) and the Merkle path.`,
		Example: `  mtlog-audit prove inclusion --wal ./audit-wal --seq 42 --output record-42.proof.json
  mtlog-audit prove consistency --wal ./audit-wal --from 1000 --to 5000 --output 1000-5000.proof.json`,
		Args: cobra.NoArgs,
	}
	var dir, cpFile, output string
	var seq, from, to uint64
	var force bool
	var acc accessFlags
	incl := &cobra.Command{
		Use:   "inclusion --wal DIR --seq N [--checkpoint FILE] [--output FILE]",
		Short: "Prove that record N is in the log a signed checkpoint commits to",
		Example: `  mtlog-audit prove inclusion --wal ./audit-wal --seq 42 --output record-42.proof.json
  mtlog-audit prove inclusion --wal ./audit-wal --seq 42 --checkpoint anchor.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "wal", "seq"); err != nil {
				return err
			}
			if err := checkLogDir("--wal", dir); err != nil {
				return err
			}
			var cp []byte
			if cpFile != "" {
				data, err := os.ReadFile(cpFile)
				if err != nil {
					return usageErr("read --checkpoint: %w", err)
				}
				cp = data
			}
			acc.bind(cmd, e, "prove")
			b, err := audit.ProveInclusion(cmd.Context(), vfs.OS(), dir, seq, cp)
			if err != nil {
				return proveErr(dir, err)
			}
			data, err := b.Marshal()
			if err != nil {
				return err
			}
			return writeProof(e, output, force, data, fmt.Sprintf("inclusion of record %d in tree size %d", seq, b.Size))
		},
	}
	incl.Flags().StringVar(&dir, "wal", "", "the log's directory")
	incl.Flags().Uint64Var(&seq, "seq", 0, "the record's sequence number (1 is the first)")
	incl.Flags().StringVar(&cpFile, "checkpoint", "", "prove against this signed checkpoint (default: the latest stored one)")
	incl.Flags().StringVarP(&output, "output", "o", "", "write the proof to this file (default: stdout)")
	incl.Flags().BoolVar(&force, "force", false, "overwrite --output if it exists")
	cons := &cobra.Command{
		Use:   "consistency --wal DIR --from SIZE --to SIZE [--output FILE]",
		Short: "Prove that the tree of SIZE records is a prefix of a later one",
		Long: `consistency proves that the log of --from records, as a stored signed
checkpoint committed to it, is a prefix of the log of --to records: nothing
the first checkpoint covered was changed or removed. Both sizes must be sizes
of stored signed checkpoints ('mtlog-audit checkpoint --all' lists them).`,
		Example: `  mtlog-audit prove consistency --wal ./audit-wal --from 1000 --to 5000 --output 1000-5000.proof.json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "wal", "from", "to"); err != nil {
				return err
			}
			if err := checkLogDir("--wal", dir); err != nil {
				return err
			}
			if from > to {
				return usageErr("--from %d is larger than --to %d", from, to)
			}
			acc.bind(cmd, e, "prove")
			b, err := audit.ProveConsistency(cmd.Context(), vfs.OS(), dir, from, to)
			if err != nil {
				return proveErr(dir, err)
			}
			data, err := b.Marshal()
			if err != nil {
				return err
			}
			return writeProof(e, output, force, data, fmt.Sprintf("consistency of tree size %d with %d", from, to))
		},
	}
	cons.Flags().StringVar(&dir, "wal", "", "the log's directory")
	cons.Flags().Uint64Var(&from, "from", 0, "the earlier tree size")
	cons.Flags().Uint64Var(&to, "to", 0, "the later tree size")
	cons.Flags().StringVarP(&output, "output", "o", "", "write the proof to this file (default: stdout)")
	cons.Flags().BoolVar(&force, "force", false, "overwrite --output if it exists")
	acc.add(incl)
	acc.add(cons)
	cmd.AddCommand(incl, cons)
	return cmd
}

// proveErr classifies errors from building a proof: a missing checkpoint
// or record is the user's to fix (2); a tree that does not match is a
// failed check (1).
func proveErr(dir string, err error) error {
	if errors.Is(err, audit.ErrIntegrity) || errors.Is(err, wal.ErrCorrupt) {
		return failErr(err)
	}
	if errors.Is(err, wal.ErrNotWAL) || errors.Is(err, wal.ErrUnknownVersion) {
		return wrapLogErr(dir, err)
	}
	return usageErr("%w", err)
}

func writeProof(e *env, output string, force bool, data []byte, what string) error {
	data = append(data, '\n')
	if output == "" || output == "-" {
		_, err := e.stdout.Write(data)
		return err
	}
	out, err := createOutput(output, "--output", force)
	if err != nil {
		return err
	}
	if _, err := out.Write(data); err != nil {
		return out.abort(err)
	}
	if err := out.commit(); err != nil {
		return err
	}
	e.infof("wrote proof of %s to %s", what, output)
	return nil
}

func verifyProofCmd(e *env) *cobra.Command {
	var keys []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify-proof FILE --key PUBKEY [--key PUBKEY ...] [--json]",
		Short: "Check a proof file offline with only the public key",
		Long: `verify-proof checks a file written by 'mtlog-audit prove': the embedded
signed checkpoint(s) must carry a valid signature by a --key, and the Merkle
path must lead from the record (inclusion) or the earlier tree (consistency)
to the signed root. It needs no access to the log.

It prints what it proved: for an inclusion proof the record's sequence
number, the tree size, the leaf hash, the checkpoint's origin and the key
IDs of the given keys that signed it; for a consistency proof both tree
sizes. A proof's index is the record's position in the tree, which starts
at 0: index = seq-1 (the proof of record seq 42 has index 41). With --json
the same as one JSON object (snake_case keys; "verified" is false and
"error" says why when the proof fails).

Exit status: 0 the proof verifies; 1 it does not; 2 usage error (unreadable
file or key).`,
		Example: `  mtlog-audit verify-proof record-42.proof.json --key audit.pub
  mtlog-audit verify-proof record-42.proof.json --key audit.pub --json | jq .verified`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "key"); err != nil {
				return err
			}
			vkeys, err := readKeys(keys)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return usageErr("read proof: %w", err)
			}
			res := &proofResult{File: args[0]}
			if err := audit.VerifyProof(data, vkeys...); err != nil {
				if asJSON {
					res.Error = err.Error()
					if err := writeJSON(e.stdout, res); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(e.stdout, "FAILED: %s: %v\n", args[0], err)
				}
				return &exitError{code: ExitFailed, err: errors.New("")}
			}
			res.Verified = true
			if err := describeProof(res, data, vkeys); err != nil {
				return failErr(fmt.Errorf("%s verifies but cannot be described: %w", args[0], err))
			}
			if asJSON {
				return writeJSON(e.stdout, res)
			}
			writeProofText(e.stdout, res)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keys, "key", nil, "a trusted public key: a .pub file or the key text (repeatable)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON on stdout")
	return cmd
}

func keysCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Generate and show signing keys (Ed25519, signed-note format)",
		Example: `  mtlog-audit keys generate --name billing.example.com/audit
  mtlog-audit keys show --key billing.example.com_audit.key`,
		Args: cobra.NoArgs,
	}
	var name, dir, keyFile string
	var force, asJSON, public bool
	gen := &cobra.Command{
		Use:   "generate --name NAME [--dir DIR] [--json]",
		Short: "Generate a key pair: NAME.key (private, mode 0600) and NAME.pub",
		Long: `generate writes a new Ed25519 key pair in the signed-note key format: the
private key to DIR/NAME.key with permissions 0600 and the public key to
DIR/NAME.pub, and prints the public key. Give the private key to the sink
(audit.WithSigningKey) and the public key to auditors. NAME is also the
origin line of the log's checkpoints: use something that names the log, such
as billing.example.com/audit. Existing files are refused unless --force.`,
		Example: `  mtlog-audit keys generate --name billing.example.com/audit --dir /etc/myapp`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "name"); err != nil {
				return err
			}
			skey, vkey, err := integrity.GenerateKey(name)
			if err != nil {
				return usageErr("--name %q: %w", name, err)
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return usageErr("--dir %s: %w", dir, err)
			}
			base := filepath.Join(dir, fileSafe(name))
			if err := writeKeyFile(base+".key", skey, 0o600, force); err != nil {
				return err
			}
			if err := writeKeyFile(base+".pub", vkey, 0o644, force); err != nil {
				os.Remove(base + ".key")
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, keyJSONOf(vkey, false, base+".key", base+".pub"))
			}
			fmt.Fprintln(e.stdout, vkey)
			e.infof("wrote private key %s (mode 0600) and public key %s", base+".key", base+".pub")
			return nil
		},
	}
	gen.Flags().StringVar(&name, "name", "", "the key's name (the log's origin), e.g. billing.example.com/audit")
	gen.Flags().StringVar(&dir, "dir", ".", "directory to write the key files to (created with mode 0700 if missing)")
	gen.Flags().BoolVar(&force, "force", false, "overwrite existing key files")
	gen.Flags().BoolVar(&asJSON, "json", false, "print the key's name, ID, public key and files as JSON on stdout")
	show := &cobra.Command{
		Use:   "show --key FILE [--json | --public]",
		Short: "Print the public key of a private or public key file",
		Long: `show prints the name, key ID and public key of a private or public key
file. With --public it prints the public key alone, as a .pub file holds
it, so that a lost public key file can be made again from the private key.`,
		Example: `  mtlog-audit keys show --key billing.key
  mtlog-audit keys show --key billing.pub --json | jq -r .key_id
  mtlog-audit keys show --key billing.key --public > billing.pub`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "key"); err != nil {
				return err
			}
			if asJSON && public {
				return usageErr("--json and --public cannot be used together: --public prints the public key as a .pub file holds it, --json the key's name, ID and public key")
			}
			data, err := os.ReadFile(keyFile)
			if err != nil {
				return usageErr("read key: %w", err)
			}
			k := strings.TrimSpace(string(data))
			vkey := k
			private := strings.HasPrefix(k, "PRIVATE+KEY+")
			if private {
				if vkey, err = integrity.PublicKeyOf(k); err != nil {
					return usageErr("%s is not a signing key: %w", keyFile, err)
				}
			} else if _, err := integrity.NewVerifiers(k); err != nil {
				return usageErr("%s is not a key in signed-note format: %w", keyFile, err)
			}
			if asJSON {
				return writeJSON(e.stdout, keyJSONOf(vkey, private, keyFile, ""))
			}
			if public {
				fmt.Fprintln(e.stdout, vkey)
				return nil
			}
			parts := strings.Split(vkey, "+")
			kind := "public"
			if private {
				kind = "private (public key shown)"
			}
			fmt.Fprintf(e.stdout, "name:   %s\nkey id: %s\nfile:   %s, %s\n%s\n", parts[0], parts[1], keyFile, kind, vkey)
			return nil
		},
	}
	show.Flags().StringVar(&keyFile, "key", "", "the key file")
	show.Flags().BoolVar(&asJSON, "json", false, "print the key's name, ID and public key as JSON on stdout")
	show.Flags().BoolVar(&public, "public", false, "print only the public key, one line as in a .pub file")
	cmd.AddCommand(gen, show)
	return cmd
}

// fileSafe turns a key name (which may contain / and :) into a file name.
func fileSafe(name string) string {
	return strings.NewReplacer("/", "_", ":", "_", "\\", "_").Replace(name)
}

func writeKeyFile(path, content string, mode os.FileMode, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, mode)
	if errors.Is(err, fs.ErrExist) {
		return usageErr("%s exists; pass --force to replace it (the old key then no longer signs)", path)
	}
	if err != nil {
		return usageErr("write key: %w", err)
	}
	if err := f.Chmod(mode); err != nil { // umask and an existing file's mode
		f.Close()
		return err
	}
	if _, err := f.WriteString(content + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func checkpointCmd(e *env) *cobra.Command {
	var dir string
	var keys []string
	var all, asJSON bool
	cmd := &cobra.Command{
		Use:   "checkpoint --wal DIR [--key PUBKEY] [--all] [--json]",
		Short: "Print the latest signed checkpoint, to hand to a third party as an anchor",
		Long: `checkpoint prints the newest signed checkpoint stored beside the log,
verbatim (a signed note: origin, tree size, root hash, time, signature). Give
it to an auditor; later, 'mtlog-audit verify --anchor FILE' proves the log
still contains everything it covered. With --key the signature is checked
first; with --all every stored checkpoint's size and time is listed. With
--json the checkpoint's fields (and the note itself, in "note") are printed
as JSON.`,
		Example: `  mtlog-audit checkpoint --wal ./audit-wal --key audit.pub > anchor-$(date +%F).txt
  mtlog-audit checkpoint --wal ./audit-wal --all --json | jq '.[].size'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needLog(cmd, dir); err != nil {
				return err
			}
			vkeys, err := readKeys(keys)
			if err != nil {
				return err
			}
			cps, err := integrity.ReadCheckpointLog(vfs.OS(), filepath.Join(dir, integrity.CheckpointsFile))
			if errors.Is(err, fs.ErrNotExist) || (err == nil && len(cps) == 0) {
				return usageErr("%s has no signed checkpoint: the sink writes them only when it has a signing key (audit.WithSigningKey)", dir)
			}
			if err != nil {
				return failErr(err)
			}
			if all {
				list := []*checkpointJSON{}
				for _, raw := range cps {
					c, err := parseAny(raw)
					if err != nil {
						return failErr(err)
					}
					if asJSON {
						list = append(list, checkpointJSONOf(c, ""))
						continue
					}
					fmt.Fprintf(e.stdout, "%s\t%d\t%s\n", c.Origin, c.Size, c.Time.UTC().Format("2006-01-02T15:04:05.000000000Z"))
				}
				if asJSON {
					return writeJSON(e.stdout, list)
				}
				return nil
			}
			latest := cps[len(cps)-1]
			if len(vkeys) > 0 {
				if _, err := integrity.NewGenesisVerifiers(vkeys...); err != nil {
					return usageErr("%w", err)
				}
				if _, err := audit.OpenCheckpoint(cmd.Context(), vfs.OS(), dir, latest, vkeys...); err != nil {
					var ce *integrity.CheckpointError
					if errors.As(err, &ce) && ce.Reason == integrity.ReasonUnknownKey && !errors.Is(err, audit.ErrIntegrity) {
						fmt.Fprintf(e.stderr, "mtlog-audit: the latest checkpoint is not signed by a key you trust (%v); if the key you gave is this log's genesis key, this is tampering\n", err)
						return &exitError{code: ExitUsage, err: errors.New("")}
					}
					fmt.Fprintf(e.stderr, "mtlog-audit: the latest checkpoint does not verify with the given key: %v\n", err)
					return &exitError{code: ExitFailed, err: errors.New("")}
				}
			}
			if asJSON {
				c, err := parseAny(latest)
				if err != nil {
					return failErr(err)
				}
				return writeJSON(e.stdout, checkpointJSONOf(c, string(latest)))
			}
			_, err = e.stdout.Write(latest)
			return err
		},
	}
	cmd.Flags().StringVar(&dir, "wal", "", "the log's directory")
	cmd.Flags().StringArrayVar(&keys, "key", nil, "check the signature with this public key first")
	cmd.Flags().BoolVar(&all, "all", false, "list every stored checkpoint (origin, size, time)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the checkpoint (with --all, the list) as JSON on stdout")
	return cmd
}

// parseAny parses a signed checkpoint's body without checking signatures.
func parseAny(raw []byte) (integrity.Checkpoint, error) {
	text := string(raw)
	if i := strings.Index(text, "\n\n"); i >= 0 {
		text = text[:i+1]
	}
	return integrity.ParseCheckpointBody(text)
}

// Version and Revision, when set at build time with
//
//	go build -ldflags "-X github.com/willibrandon/mtlog-audit/internal/cli.Version=v1.2.3 -X github.com/willibrandon/mtlog-audit/internal/cli.Revision=$(git rev-parse HEAD)"
//
// (as `make build` does), are what `mtlog-audit version` prints instead of
// the module version and VCS revision in the build information, which a
// build outside a git checkout, with -buildvcs=false, or of a dependency
// lacks.
var (
	Version  string
	Revision string
)

// moduleRevision is the revision a module version names when the build
// information has no VCS settings, as in a binary `go install
// MODULE@VERSION` built from the module proxy: the commit prefix a
// pseudo-version carries, or for a release version the commit its tag
// names. It is "" for "(devel)" and anything else.
func moduleRevision(version string) string {
	if module.IsPseudoVersion(version) {
		if rev, err := module.PseudoVersionRev(version); err == nil {
			return rev
		}
	}
	if err := module.Check("github.com/willibrandon/mtlog-audit", version); err == nil && version != "" {
		return "the commit tagged " + version
	}
	return ""
}

func versionCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the module version and VCS revision",
		Long: `version prints the version, the VCS revision the binary was built from, the
Go version and the WAL format version. The version and revision come from
-ldflags -X (make build sets them) or from the VCS information the go
command stamps when it builds in a git checkout.`,
		Example: `  mtlog-audit version
  mtlog-audit version --json | jq -r .revision`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bi, ok := debug.ReadBuildInfo()
			if !ok {
				bi = &debug.BuildInfo{}
			}
			settings := map[string]string{}
			for _, s := range bi.Settings {
				settings[s.Key] = s.Value
			}
			version := Version
			if version == "" {
				version = bi.Main.Version
			}
			if version == "" {
				version = "(devel)"
			}
			rev := Revision
			if rev == "" {
				rev = settings["vcs.revision"]
				if rev != "" && settings["vcs.modified"] == "true" {
					rev += " (modified)"
				}
			}
			if rev == "" {
				rev = moduleRevision(version)
			}
			if asJSON {
				return writeJSON(e.stdout, versionJSON{Version: version, Module: bi.Main.Path, Revision: rev, Time: settings["vcs.time"], Go: bi.GoVersion, WALFormatVersion: wal.FormatVersion})
			}
			if rev == "" {
				rev = "unknown (built without VCS information: build in a git checkout, or set it with -ldflags -X, see 'make build')"
			}
			fmt.Fprintf(e.stdout, "mtlog-audit %s\n", version)
			if bi.Main.Path != "" {
				fmt.Fprintf(e.stdout, "  module:   %s\n", bi.Main.Path)
			}
			fmt.Fprintf(e.stdout, "  revision: %s\n", rev)
			if t := settings["vcs.time"]; t != "" {
				fmt.Fprintf(e.stdout, "  time:     %s\n", t)
			}
			if bi.GoVersion != "" {
				fmt.Fprintf(e.stdout, "  go:       %s\n", bi.GoVersion)
			}
			fmt.Fprintf(e.stdout, "  wal format version: %s\n", strconv.Itoa(wal.FormatVersion))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the version information as JSON on stdout (revision is \"\" when unknown)")
	return cmd
}
