package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/replica"
	"github.com/willibrandon/mtlog-audit/vfs"
)

func restoreCmd(e *env) *cobra.Command {
	var from, keys []string
	var to string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "restore --from URL [--from URL ...] --to DIR [--key PUBKEY] [--json]",
		Short: "Rebuild a log from the copies shipped to backends, choosing by quorum and verification",
		Long: `restore rebuilds a log in --to (a new or empty directory) from the sealed
segments and signed checkpoints shipped to one or more backends (file://,
s3://, azure://, gs:// URLs; docs/replication.md gives the object layout).

Nothing in a backend is trusted: each object's bytes must have the SHA-256 its
name carries, and with --key each checkpoint must be signed by the log's key.
Per segment, the version that most backends agree with is taken (the longest
on a tie: a segment continued after a restart is shipped again, longer); a
version with which the restored log does not verify is replaced by the next,
whatever the vote. The result is verified, and every object not taken is
named with the reason.

Exit status: 0 restored and verified; 1 the result does not verify or is not
complete (the files are left in --to for inspection); 2 usage or environment
error (a URL that does not parse, an unknown scheme, a backend holding no
log, a --to that is not empty).`,
		Example: `  mtlog-audit restore --from file:///mnt/nfs/audit --to ./restored --key audit.pub
  mtlog-audit restore --from s3://audit-bucket/app --from gs://audit-copy/app --to ./restored --key audit.pub --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "from", "to"); err != nil {
				return err
			}
			vkeys, err := readKeys(keys)
			if err != nil {
				return err
			}
			var srcs []backends.Backend
			defer func() {
				for _, b := range srcs {
					b.Close()
				}
			}()
			for _, u := range from {
				b, err := openBackend(cmd.Context(), u)
				if err != nil {
					return err
				}
				srcs = append(srcs, b)
			}
			rep, err := audit.Restore(cmd.Context(), vfs.OS(), to, srcs, audit.WithTrustedKeys(vkeys...))
			if rep == nil || errors.Is(err, replica.ErrEmptyBackend) {
				if errors.Is(err, replica.ErrNotEmpty) || errors.Is(err, replica.ErrEmptyBackend) {
					return usageErr("%w", err)
				}
				return failErr(err)
			}
			if asJSON {
				if werr := writeJSON(e.stdout, restoreJSONOf(rep, len(vkeys) > 0)); werr != nil {
					return werr
				}
			} else {
				printRestore(e, rep, len(vkeys) > 0)
			}
			if err != nil {
				return &exitError{code: ExitFailed, err: errors.New("")}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&from, "from", nil, "a backend URL holding the shipped log (repeat for several copies)")
	f.StringVar(&to, "to", "", "the directory to restore into (new or empty)")
	f.StringArrayVar(&keys, "key", nil, "the log's public (genesis) key: a .pub file or the key text")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON on stdout")
	return cmd
}

// restoreJSON is the JSON form of restore's report.
type restoreJSON struct {
	Dir         string          `json:"dir"`
	Status      string          `json:"status"` // verified, failed
	OK          bool            `json:"ok"`
	KeysGiven   bool            `json:"keys_given"`
	Sources     []string        `json:"sources"`
	Segments    []restoredJSON  `json:"segments"`
	Checkpoints int             `json:"checkpoints"`
	LastSeq     uint64          `json:"last_seq"`
	Bad         []badObjectJSON `json:"bad_objects"`
	Unreachable []badObjectJSON `json:"unreachable,omitempty"`
	Problem     string          `json:"problem,omitempty"`
}

type restoredJSON struct {
	Segment  uint64   `json:"segment"`
	FirstSeq uint64   `json:"first_seq"`
	LastSeq  uint64   `json:"last_seq"`
	Bytes    int64    `json:"bytes"`
	Key      string   `json:"key"`
	Holders  []string `json:"holders"`
	Versions int      `json:"versions"`
}

type badObjectJSON struct {
	Backend string `json:"backend"`
	Key     string `json:"key,omitempty"`
	Reason  string `json:"reason"`
}

func badJSON(bs []replica.BadObject) []badObjectJSON {
	out := []badObjectJSON{}
	for _, b := range bs {
		out = append(out, badObjectJSON{Backend: b.Backend, Key: b.Key, Reason: b.Reason})
	}
	return out
}

func restoreJSONOf(rep *audit.RestoreReport, keys bool) restoreJSON {
	j := restoreJSON{Dir: rep.Dir, Status: "verified", OK: rep.Verified, KeysGiven: keys, Sources: rep.Sources, Segments: []restoredJSON{},
		Checkpoints: rep.Checkpoints, LastSeq: rep.LastSeq, Bad: badJSON(rep.Bad)}
	if len(rep.Unreachable) > 0 {
		j.Unreachable = badJSON(rep.Unreachable)
	}
	if !rep.Verified {
		j.Status = "failed"
	}
	if rep.Problem != nil {
		j.Problem = rep.Problem.Text
	}
	for _, s := range rep.Segments {
		j.Segments = append(j.Segments, restoredJSON{Segment: s.Segment, FirstSeq: s.FirstSeq, LastSeq: s.LastSeq, Bytes: s.Size, Key: s.Key, Holders: s.Holders, Versions: s.Versions})
	}
	return j
}

func printRestore(e *env, rep *audit.RestoreReport, keys bool) {
	w := e.stdout
	if rep.Verified {
		fmt.Fprintf(w, "RESTORED AND VERIFIED: %s\n", rep.Dir)
	} else {
		fmt.Fprintf(w, "RESTORED, NOT VERIFIED: %s\n", rep.Dir)
	}
	fmt.Fprintf(w, "  sources:     %d\n", len(rep.Sources))
	fmt.Fprintf(w, "  segments:    %d, up to sequence number %d\n", len(rep.Segments), rep.LastSeq)
	fmt.Fprintf(w, "  checkpoints: %d", rep.Checkpoints)
	if !keys {
		fmt.Fprintf(w, " (signatures not checked: no --key given)")
	}
	fmt.Fprintln(w)
	for _, u := range rep.Unreachable {
		fmt.Fprintf(w, "  unreachable: %s: %s\n", u.Backend, u.Reason)
	}
	for _, b := range rep.Bad {
		fmt.Fprintf(w, "  bad object:  %s\n", b)
	}
	if p := rep.Problem; p != nil {
		fmt.Fprintf(w, "  problem:     %s\n", p.Text)
		fmt.Fprintf(w, "The files are left in %s for inspection; keep the backends unchanged as evidence.\n", rep.Dir)
	}
}
