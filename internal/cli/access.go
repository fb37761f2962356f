package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// accessFlags are the flags of the commands that read a log, for access
// logging (docs/access-logging.md): who reads, the key that signs the
// access log, and whether a read that cannot be recorded may go on.
type accessFlags struct {
	actor           string
	keyFile         string
	allowUnrecorded bool
}

// accessHelp is the paragraph of --help of every reading command.
const accessHelp = `Access logging: when the log's Sink was opened with WithAccessLog (the log
directory then holds an access/ log), the read is recorded there, before
any data is shown, with the OS user, --actor, the command and its
selection. A read that cannot be recorded fails (exit 1), unless
--allow-unrecorded is given. --access-key signs the access log's
checkpoint with the log's signing key.`

// add registers the flags on cmd.
func (a *accessFlags) add(cmd *cobra.Command) {
	cmd.Long += "\n\n" + accessHelp
	f := cmd.Flags()
	f.StringVar(&a.actor, "actor", "", "who reads, recorded in the access log with the OS user (e.g. an auditor's name)")
	f.StringVar(&a.keyFile, "access-key", "", "the log's signing key file: signs the access log's checkpoint for this read")
	f.BoolVar(&a.allowUnrecorded, "allow-unrecorded", false, "read even when the read cannot be recorded in the access log (a warning is printed)")
}

// bind puts who reads into cmd's context, for a command that reads through
// the library (which records the read under the name command).
func (a *accessFlags) bind(cmd *cobra.Command, e *env, command string) {
	rc := audit.ReadContext{Actor: a.actor, Command: command, SigningKeyFile: a.keyFile, AllowUnrecorded: a.allowUnrecorded,
		OnUnrecorded: func(err error) {
			fmt.Fprintf(e.stderr, "mtlog-audit: warning: %v (--allow-unrecorded: reading anyway)\n", err)
		}}
	cmd.SetContext(audit.WithReadContext(cmd.Context(), rc))
}

// record records the read that command is about to make of the log in dir
// (what it reads is described by its flags), before it shows any data.
func (a *accessFlags) record(cmd *cobra.Command, e *env, dir, command string) error {
	a.bind(cmd, e, command)
	rng, filter := describeRead(cmd)
	if err := audit.RecordRead(cmd.Context(), vfs.OS(), dir, command, rng, filter); err != nil {
		return failErr(err)
	}
	return nil
}

// notSelection are the flags that do not say what is read.
var notSelection = map[string]bool{"wal": true, "actor": true, "access-key": true, "allow-unrecorded": true,
	"output": true, "file": true, "force": true, "json": true, "filter": true, "quiet": true, "progress": true}

// describeRead returns what cmd reads, as the flags given that select
// (Range, "all" when none) and the --filter expression.
func describeRead(cmd *cobra.Command) (rng, filter string) {
	var parts []string
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if f.Name == "filter" {
			filter = f.Value.String()
		} else if !notSelection[f.Name] {
			part := "--" + f.Name
			if f.Value.Type() != "bool" || f.Value.String() != "true" {
				part += " " + f.Value.String()
			}
			parts = append(parts, part)
		}
	})
	sort.Strings(parts)
	if len(parts) == 0 {
		return "all", filter
	}
	return strings.Join(parts, " "), filter
}
