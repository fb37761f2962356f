// Package cli is the mtlog-audit command: verify, replay, export, recover,
// prove, keys, checkpoint and version. cmd/mtlog-audit is a thin main
// around Run.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/wal"
)

// Exit statuses. verify uses all four; the other commands use 0, 1 and 2.
const (
	// ExitOK: the command did what was asked (verify: the log verified and
	// every record is covered by a signed checkpoint).
	ExitOK = 0
	// ExitFailed: the log is tampered or corrupt (verify), a proof does
	// not verify (verify-proof), records were lost (recover), or the
	// operation failed part way.
	ExitFailed = 1
	// ExitUsage: usage or environment error: bad flags, a missing
	// directory, a directory that is not a log, an unreadable key, an
	// output file that exists.
	ExitUsage = 2
	// ExitUncovered: verify found nothing wrong, but records at the end
	// are not yet covered by a signed checkpoint.
	ExitUncovered = 3
)

// exitError carries an exit status with the error to print.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr marks err as a usage or environment error (exit 2).
func usageErr(format string, a ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, a...)}
}

// failErr marks err as a failed check (exit 1).
func failErr(err error) error { return &exitError{code: ExitFailed, err: err} }

// env is what every command gets: the streams and global flags.
type env struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	quiet          bool
	progress       string // auto, always, never
}

// Run runs the command line args (without the program name) and returns the
// exit status. It never panics on bad input and prints no stack traces.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr, stdin: stdin}
	root := newRoot(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	code := ExitFailed
	if errors.As(err, &ee) {
		code = ee.code
	} else {
		code = classify(err)
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(stderr, "mtlog-audit: %s\n", msg)
	}
	if code == ExitUsage && isFlagError(err) {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", commandPath(root, args))
	}
	return code
}

// Main is the program: it runs os.Args, cancels on SIGINT/SIGTERM and
// returns the exit status.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}

// flagError is a cobra flag or argument error.
type flagError struct{ err error }

func (e *flagError) Error() string { return e.err.Error() }
func (e *flagError) Unwrap() error { return e.err }

func isFlagError(err error) bool {
	var fe *flagError
	return errors.As(err, &fe)
}

// classify maps an error from the library to an exit status.
func classify(err error) int {
	switch {
	case errors.Is(err, wal.ErrNotWAL), errors.Is(err, wal.ErrUnknownVersion),
		errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission), isFlagError(err),
		errors.Is(err, integrity.ErrSameNameKeys):
		return ExitUsage
	case errors.Is(err, context.Canceled):
		return ExitFailed
	}
	return ExitFailed
}

// commandPath names the subcommand args select, for the usage hint.
func commandPath(root *cobra.Command, args []string) string {
	c, _, err := root.Find(args)
	if err != nil || c == nil {
		return root.Name()
	}
	return c.CommandPath()
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "mtlog-audit",
		Short: "Verify, read, export, recover and prove mtlog-audit logs",
		Long: `mtlog-audit works on the write-ahead log of an mtlog-audit sink: it
verifies that nothing acknowledged was lost or altered, prints and exports
events, salvages what is readable from a damaged log, and builds proofs a
third party can check with only the public key.

Every command reads the log without modifying it (recover writes a new log).
Long operations show a progress bar on stderr when stderr is a terminal.

One convention for every command:
  --json          a switch: print the result as JSON on stdout (snake_case
                  keys, documented in docs/cli-json.md) instead of text
  -o, --output F  the file (recover: the directory) to write; never a format
  --format NAME   the format of a file written (export: jsonl, csv, parquet)
  --wal DIR       the log to read
Messages, warnings and progress go to stderr, so stdout can be piped.
Renamed flags (replay --output text|json and --file, torture --json FILE and
--report) still work in this release and print a deprecation on stderr.

Exit status: 0 success; 1 a check failed (tampered or corrupt log, bad
proof, records lost); 2 usage or environment error, or no checkpoint is
signed by the key you gave (untrusted-key: if the key is right, tampering); 3 (verify only)
verified, but the newest records are not yet covered by a signed checkpoint.`,
		Example: `  mtlog-audit verify --wal ./audit-wal --key audit.pub
  mtlog-audit replay --wal ./audit-wal --since 1h --json | jq .message
  mtlog-audit export --wal ./audit-wal --format csv -o audit.csv
  source <(mtlog-audit completion bash)`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().BoolVarP(&e.quiet, "quiet", "q", false, "no progress bar and no informational messages on stderr")
	root.PersistentFlags().StringVar(&e.progress, "progress", "auto", "progress bar on stderr: auto (when stderr is a terminal), always or never")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &flagError{err} })
	root.AddCommand(
		verifyCmd(e), restoreCmd(e), replayCmd(e), exportCmd(e), recoverCmd(e), infoCmd(e),
		proveCmd(e), verifyProofCmd(e), keysCmd(e), backendCmd(e), shredCmd(e), checkpointCmd(e), benchCmd(e), tortureCmd(e), versionCmd(e),
		monitorCmd(e),
		complianceCmd(e),
	)
	root.AddCommand(retentionCmd(e), holdCmd(e))
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		warnDeprecated(e, cmd)
		switch e.progress {
		case "auto", "always", "never":
			return nil
		}
		return &flagError{fmt.Errorf("--progress %q: use auto, always or never", e.progress)}
	}
	// Add cobra's completion command now (it would be added at Execute) so
	// that it gets the same treatment as ours.
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	examples(root)
	groups(root)
	wrapArgs(root)
	registerCompletions(root)
	return root
}

// examples gives cobra's own commands (completion and help) an Example,
// as every command has one.
func examples(root *cobra.Command) {
	for _, c := range root.Commands() {
		switch c.Name() {
		case "help":
			c.Example = "  mtlog-audit help replay"
		case "completion":
			c.Example = "  source <(mtlog-audit completion bash)\n  mtlog-audit completion zsh > \"${fpath[1]}/_mtlog-audit\""
			for _, sh := range c.Commands() {
				switch sh.Name() {
				case "bash":
					sh.Example = "  source <(mtlog-audit completion bash)\n  mtlog-audit completion bash > /etc/bash_completion.d/mtlog-audit"
				case "zsh":
					sh.Example = "  mtlog-audit completion zsh > \"${fpath[1]}/_mtlog-audit\""
				case "fish":
					sh.Example = "  mtlog-audit completion fish > ~/.config/fish/completions/mtlog-audit.fish"
				case "powershell":
					sh.Example = "  mtlog-audit completion powershell | Out-String | Invoke-Expression"
				}
			}
		}
	}
}

// groups makes every command that only groups subcommands (the root, keys,
// prove, completion) refuse an unknown subcommand as a usage error; given
// none, it prints its help.
func groups(c *cobra.Command) {
	if !c.Runnable() && c.HasSubCommands() {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, ", "))
			}
			return errors.New(msg)
		}
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
	for _, sub := range c.Commands() {
		groups(sub)
	}
}

// wrapArgs makes argument-count errors usage errors, recursively.
func wrapArgs(c *cobra.Command) {
	if c.Args != nil {
		args := c.Args
		c.Args = func(cmd *cobra.Command, a []string) error {
			if err := args(cmd, a); err != nil {
				return &flagError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		wrapArgs(sub)
	}
}

// deprecatedKey is the flag annotation that marks the old spelling of a
// flag, kept for one release.
const deprecatedKey = "mtlog-audit-deprecated"

// deprecate marks the flag name of cmd as the old spelling of another, kept
// for one release: it is hidden from the help, and using it prints msg on
// stderr. (cobra's MarkDeprecated prints on the command's output stream,
// stdout here, where the message would corrupt --json output.)
func deprecate(cmd *cobra.Command, name, msg string) {
	f := cmd.Flags().Lookup(name)
	f.Hidden = true
	if f.Annotations == nil {
		f.Annotations = map[string][]string{}
	}
	f.Annotations[deprecatedKey] = []string{msg}
}

// warnDeprecated prints the deprecation message of every old flag spelling
// the command line of cmd used, on stderr (even with --quiet: the command
// line will break in the next release).
func warnDeprecated(e *env, cmd *cobra.Command) {
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if msg := f.Annotations[deprecatedKey]; len(msg) > 0 {
			fmt.Fprintf(e.stderr, "Flag --%s is deprecated: %s\n", f.Name, msg[0])
		}
	})
}

// requireFlags fails with a usage error naming the missing flags.
func requireFlags(cmd *cobra.Command, names ...string) error {
	var missing []string
	for _, n := range names {
		if f := cmd.Flags().Lookup(n); f == nil || !f.Changed {
			missing = append(missing, "--"+n)
		}
	}
	if len(missing) > 0 {
		return &flagError{fmt.Errorf("missing required flag(s) %s", strings.Join(missing, ", "))}
	}
	return nil
}

// needLog checks the --wal flag was given and names a log directory.
func needLog(cmd *cobra.Command, dir string) error {
	if err := requireFlags(cmd, "wal"); err != nil {
		return err
	}
	return checkLogDir("--wal", dir)
}

// checkLogDir gives a clear usage error for dir, given with flag, when it
// cannot be a log: it does not exist, is a file, or holds no segment files.
// Nothing is created or modified.
func checkLogDir(flag, dir string) error {
	if err := checkDir(flag, dir); err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return usageErr("cannot read %s: %w", dir, err)
	}
	for _, ent := range ents {
		if _, ok := wal.ParseSegmentName(ent.Name()); ok {
			return nil
		}
	}
	return notALog(dir)
}

// checkDir gives a clear usage error for dir, given with flag, when it
// does not exist or is not a directory.
func checkDir(flag, dir string) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return usageErr("%s does not exist: give the log's directory with %s", dir, flag)
	case err != nil:
		return usageErr("cannot read %s: %w", dir, err)
	case !st.IsDir():
		return usageErr("%s is a file, not a log directory: give the directory that holds the NNNN.wal segments with %s", dir, flag)
	}
	return nil
}

// notALog is the error for a directory that holds no segment files.
func notALog(dir string) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf("%s is not an mtlog-audit log (no segment files): give the log's directory, the one that holds the NNNNNNNNNNNNNNNNNNNN.wal segments (%w)", dir, wal.ErrNotWAL)}
}

// wrapLogErr turns a library error about a log directory into one with an
// exit status and advice.
func wrapLogErr(dir string, err error) error {
	switch {
	case errors.Is(err, wal.ErrUnknownVersion):
		return usageErr("%w", err)
	case errors.Is(err, wal.ErrNotWAL):
		return notALog(dir)
	case errors.Is(err, wal.ErrCorrupt):
		return failErr(fmt.Errorf("%w\n  the log is damaged: run 'mtlog-audit verify --wal %s' for details, 'mtlog-audit recover' to salvage what is readable", err, dir))
	case errors.Is(err, integrity.ErrCheckpointLogCorrupt):
		return failErr(fmt.Errorf("%w\n  the stored checkpoints are damaged: keep %s unchanged as evidence, and repair it from a copy with 'mtlog-audit recover --mirror' or rebuild it from the backends with 'mtlog-audit restore' (docs/recovery.md)", err, dir))
	}
	return err
}

// readKeys reads public keys given with --key: each value is a file
// holding a key, or a key itself (name+hash+base64).
func readKeys(values []string) ([]string, error) {
	var keys []string
	for _, v := range values {
		k, err := readKey(v)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func readKey(v string) (string, error) {
	data, err := os.ReadFile(v)
	if err != nil {
		if _, perr := integrity.NewVerifiers(v); perr == nil {
			return v, nil
		}
		if errors.Is(err, fs.ErrNotExist) {
			return "", usageErr("key %q: no such file, and not a public key (name+hash+base64); give the .pub file 'mtlog-audit keys generate' wrote", v)
		}
		return "", usageErr("key %s: %w", v, err)
	}
	k := strings.TrimSpace(string(data))
	if strings.HasPrefix(k, "PRIVATE+KEY+") {
		return "", usageErr("key %s is a private signing key; give the public key (the .pub file, or 'mtlog-audit keys show --key %s')", v, v)
	}
	if _, err := integrity.NewVerifiers(k); err != nil {
		return "", usageErr("key %s is not a public key in signed-note format (name+hash+base64): %v", v, err)
	}
	return k, nil
}

// outFile is an output file being written: commit keeps it, abort removes
// the partial file.
type outFile struct {
	*os.File
	path string
	done bool
}

// createOutput creates path, given with the flag named flag, for writing,
// refusing an existing file unless force.
func createOutput(path, flag string, force bool) (*outFile, error) {
	if path == "" || path == "-" {
		return nil, nil
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil, usageErr("%s exists; choose another %s or pass --force to overwrite it", path, flag)
	}
	if err != nil {
		return nil, usageErr("create %s: %w", path, err)
	}
	return &outFile{File: f, path: path}, nil
}

// commit syncs and closes the file and keeps it.
func (o *outFile) commit() error {
	if err := o.Sync(); err != nil {
		return o.abort(fmt.Errorf("write %s: %w", o.path, err))
	}
	if err := o.Close(); err != nil {
		return o.abort(fmt.Errorf("write %s: %w", o.path, err))
	}
	o.done = true
	return nil
}

// abort closes and removes the partial file, returning err (with advice for
// a full disk).
func (o *outFile) abort(err error) error {
	if o.done {
		return err
	}
	o.done = true
	o.Close()
	os.Remove(o.path)
	if errors.Is(err, syscall.ENOSPC) {
		return failErr(fmt.Errorf("%w\n  the disk is full; the partial file %s was removed: free space or write elsewhere", err, o.path))
	}
	return failErr(fmt.Errorf("%w (partial file %s removed)", err, o.path))
}

// infof prints an informational line on stderr unless --quiet.
func (e *env) infof(format string, a ...any) {
	if !e.quiet {
		fmt.Fprintf(e.stderr, format+"\n", a...)
	}
}
