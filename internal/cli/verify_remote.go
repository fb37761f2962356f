package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/willibrandon/mtlog-audit/replica"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// anchorJSON is verify's "anchor" object with --anchor-from: the remote
// checkpoint taken as the anchor, and the objects passed over.
type anchorJSON struct {
	Backend    string          `json:"backend"`
	Checkpoint *checkpointJSON `json:"checkpoint"`
	Skipped    []badObjectJSON `json:"skipped"`
}

// remoteJSON is verify's "remote" object with --remote.
type remoteJSON struct {
	Backend     string     `json:"backend"`
	Segments    int        `json:"segments"`
	Matching    int        `json:"matching"`
	Pending     uint64     `json:"pending_segment,omitempty"`
	Differences []diffJSON `json:"differences"`
}

type diffJSON struct {
	Kind    string `json:"kind"`
	Segment uint64 `json:"segment,omitempty"`
	Key     string `json:"key,omitempty"`
	Offset  int64  `json:"offset,omitempty"`
	Detail  string `json:"detail"`
}

// remoteAnchor fetches the newest checkpoint of the backend at url that
// verifies with vkeys.
func remoteAnchor(cmd *cobra.Command, e *env, url string, vkeys []string) ([]byte, *anchorJSON, error) {
	b, err := openBackend(cmd.Context(), url)
	if err != nil {
		return nil, nil, err
	}
	defer b.Close()
	data, cp, bad, err := replica.NewestCheckpoint(cmd.Context(), b, vkeys)
	for _, bo := range bad {
		e.infof("anchor: skipped %s\n", bo)
	}
	if err != nil {
		if errors.Is(err, replica.ErrEmptyBackend) {
			return nil, nil, usageErr("--anchor-from: %w", err)
		}
		return nil, nil, usageErr("--anchor-from %s: %w", url, err)
	}
	return data, &anchorJSON{Backend: b.Name(), Checkpoint: checkpointJSONOf(cp, ""), Skipped: badJSON(bad)}, nil
}

// compareRemote compares the log in dir with the backend at url.
func compareRemote(cmd *cobra.Command, dir, url string) (*replica.Comparison, error) {
	b, err := openBackend(cmd.Context(), url)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	c, err := replica.Compare(cmd.Context(), vfs.OS(), dir, b)
	if err != nil {
		return nil, usageErr("--remote: %w", err)
	}
	return c, nil
}

func remoteJSONOf(c *replica.Comparison) *remoteJSON {
	if c == nil {
		return nil
	}
	j := &remoteJSON{Backend: c.Backend, Segments: c.Segments, Matching: c.Matching, Pending: c.Pending, Differences: []diffJSON{}}
	for _, d := range c.Diffs {
		j.Differences = append(j.Differences, diffJSON{Kind: string(d.Kind), Segment: d.Segment, Key: d.Key, Offset: d.Offset, Detail: d.Detail})
	}
	return j
}

func printAnchor(e *env, a *anchorJSON) {
	if a == nil {
		return
	}
	fmt.Fprintf(e.stdout, "  anchor:      %s size %d root %s from %s\n", a.Checkpoint.Origin, a.Checkpoint.Size, a.Checkpoint.Root, a.Backend)
	for _, s := range a.Skipped {
		fmt.Fprintf(e.stdout, "  skipped:     %s: %s: %s\n", s.Backend, s.Key, s.Reason)
	}
}

func printCompare(e *env, c *replica.Comparison) {
	if c == nil {
		return
	}
	w := e.stdout
	if len(c.Diffs) == 0 {
		fmt.Fprintf(w, "REMOTE MATCHES: %s: %d segment(s) compared\n", c.Backend, c.Segments)
	} else {
		fmt.Fprintf(w, "REMOTE DIFFERS: %s: %d difference(s) in %d segment(s) compared\n", c.Backend, len(c.Diffs), c.Segments)
	}
	if c.Pending > 0 {
		fmt.Fprintf(w, "  pending:     segment %d is not shipped yet (it is shipped when sealed)\n", c.Pending)
	}
	for _, d := range c.Diffs {
		where := d.Key
		if where == "" {
			where = "local"
		}
		fmt.Fprintf(w, "  %-14s %s: %s\n", string(d.Kind)+":", where, d.Detail)
	}
}
