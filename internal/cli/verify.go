package cli

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/replica"
)

func verifyCmd(e *env) *cobra.Command {
	var dir, anchor, anchorFrom, remote string
	var keys []string
	var asJSON bool
	var acc accessFlags
	cmd := &cobra.Command{
		Use:   "verify --wal DIR [--key PUBKEY ...] [--anchor CHECKPOINT | --anchor-from URL] [--remote URL] [--json]",
		Short: "Check that nothing acknowledged was lost, inserted, reordered or altered",
		Long: `verify streams the whole log and recomputes every checksum, the sequence,
the hash chain and the Merkle tree; with --key it checks every stored signed
checkpoint's signature and that each is consistent with the log and with the
one before; with --anchor it also checks the log against a checkpoint you
kept from earlier (it must reproduce that checkpoint's root); with
--anchor-from URL the anchor is the newest checkpoint in a backend the log is
shipped to that verifies with --key (a local rollback or rewrite is then
caught: docs/replication.md); with --remote URL it also compares the log with
that backend segment by segment and names every difference (a difference is
a failure, exit status 1).

A checkpoint that carries no valid signature by a --key is a failure, never
skipped. --key is the log's genesis key (the key it was created with); with
forward security the later epochs' keys are learnt from the log's signed
rotation statements, and two different keys with the same name are refused. Without --key no checkpoint counts, so the whole log is reported as
not covered (exit status 3).

Exit status:
  0  verified, and every record is covered by a verified signed checkpoint
  1  tampered or corrupt: the first bad index (or segment and offset) and a
     reason code are printed
  2  usage or environment error (missing directory, not a log, unreadable
     key or anchor), or untrusted-key: no checkpoint is signed by a key you
     gave (the wrong key; if the key is right, the checkpoints were re-signed
     by someone else: tampering)
  3  verified, but the newest records are not yet covered by a signed
     checkpoint, or the log ends in bytes that do not verify and were never
     acknowledged: a torn tail a crash left, or a batch being written
     (normal on a live log, which verify reads safely while a sink writes it)`,
		Example: `  mtlog-audit verify --wal /var/lib/app/audit --key audit.pub
  mtlog-audit verify --wal ./audit-wal --key audit.pub --anchor checkpoint-2026-11-01.txt
  mtlog-audit verify --wal ./audit-wal --key audit.pub --json | jq .problem
  mtlog-audit verify --wal /var/lib/app/audit --key audit.pub --anchor-from s3://audit-bucket/app --remote s3://audit-bucket/app`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needLog(cmd, dir); err != nil {
				return err
			}
			vkeys, err := readKeys(keys)
			if err != nil {
				return err
			}
			opts := []audit.VerifyOption{audit.WithTrustedKeys(vkeys...)}
			if anchor != "" {
				if len(vkeys) == 0 {
					return usageErr("--anchor needs the public key that signed it: add --key")
				}
				data, err := os.ReadFile(anchor)
				if err != nil {
					return usageErr("read anchor: %w", err)
				}
				opts = append(opts, audit.WithAnchor(data))
			}
			var anchorInfo *anchorJSON
			if anchorFrom != "" {
				if anchor != "" {
					return usageErr("give --anchor or --anchor-from, not both")
				}
				if len(vkeys) == 0 {
					return usageErr("--anchor-from needs the log's public key to check the remote checkpoints: add --key")
				}
				data, info, err := remoteAnchor(cmd, e, anchorFrom, vkeys)
				if err != nil {
					return err
				}
				anchorInfo = info
				opts = append(opts, audit.WithAnchor(data))
			}
			acc.bind(cmd, e, "verify")
			bar := e.newProgress("verify", dir)
			opts = append(opts, audit.WithProgress(func(p audit.Progress) { bar.at(p.Segment, p.Offset, p.Records) }))
			rep, verr := audit.Verify(cmd.Context(), dir, opts...)
			bar.finish()
			if rep == nil || (verr != nil && rep.Problem == nil) {
				return wrapLogErr(dir, verr)
			}
			var cmp *replica.Comparison
			if remote != "" {
				if cmp, err = compareRemote(cmd, dir, remote); err != nil {
					return err
				}
			}
			if asJSON {
				out := verifyJSON(dir, rep, len(vkeys) > 0)
				out.Anchor, out.Remote = anchorInfo, remoteJSONOf(cmp)
				if cmp != nil && len(cmp.Diffs) > 0 && out.Status != "untrusted-key" {
					out.Status, out.OK = "failed", false
				}
				if err := writeJSON(e.stdout, out); err != nil {
					return err
				}
			} else {
				printVerify(e, dir, rep, len(vkeys) > 0)
				printAnchor(e, anchorInfo)
				printCompare(e, cmp)
			}
			switch {
			case rep.Problem != nil && rep.Problem.Code == integrity.CodeUntrustedKey:
				return &exitError{code: ExitUsage, err: errors.New("")}
			case rep.Problem != nil, cmp != nil && len(cmp.Diffs) > 0:
				return &exitError{code: ExitFailed, err: errors.New("")}
			case rep.UncoveredTail() > 0 || rep.TornTail != nil:
				return &exitError{code: ExitUncovered, err: errors.New("")}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "wal", "", "the log's directory")
	f.StringArrayVar(&keys, "key", nil, "the log's public (genesis) key: a .pub file or the key text (repeat for several logs' keys)")
	f.StringVar(&anchor, "anchor", "", "a signed checkpoint obtained earlier that the log must still contain")
	f.StringVar(&anchorFrom, "anchor-from", "", "a backend URL (file://, s3://, azure://, gs://) whose newest checkpoint that verifies with --key is the anchor")
	f.StringVar(&remote, "remote", "", "a backend URL to compare the log with, segment by segment")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON on stdout")
	acc.add(cmd)
	return cmd
}

// verifyReport is the JSON form of verify's report.
type verifyReport struct {
	Dir           string          `json:"dir"`
	Status        string          `json:"status"` // verified, uncovered-tail, failed
	OK            bool            `json:"ok"`
	Segments      int             `json:"segments"`
	Records       uint64          `json:"records"`
	Events        uint64          `json:"events"`
	FirstSeq      uint64          `json:"first_seq"`
	LastSeq       uint64          `json:"last_seq"`
	Bytes         int64           `json:"bytes"`
	KeysGiven     bool            `json:"keys_given"`
	Checkpoints   int             `json:"checkpoints_verified"`
	Covered       uint64          `json:"covered"`
	UncoveredTail uint64          `json:"uncovered_tail"`
	Latest        *checkpointJSON `json:"latest_checkpoint,omitempty"`
	Epoch         uint64          `json:"epoch,omitempty"`
	NodesChecked  uint64          `json:"tree_nodes_checked"`
	TornTail      *tornTailJSON   `json:"torn_tail,omitempty"`
	Problem       *problemJSON    `json:"problem,omitempty"`
	Pruned        *prunedJSON     `json:"pruned,omitempty"` // records deleted under retention
	Anchor        *anchorJSON     `json:"anchor,omitempty"` // --anchor-from
	Remote        *remoteJSON     `json:"remote,omitempty"` // --remote
}

// prunedJSON is the retention checkpoint verify started from.
type prunedJSON struct {
	Records uint64 `json:"records"`
	Time    string `json:"time"`
	Policy  string `json:"policy"`
}

type checkpointJSON struct {
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	Root   string `json:"root"`
	Time   string `json:"time,omitempty"`
	Epoch  uint64 `json:"epoch,omitempty"`
	Note   string `json:"note,omitempty"` // checkpoint --json: the signed note itself
}

type tornTailJSON struct {
	Segment uint64 `json:"segment"`
	Offset  int64  `json:"offset"`
	Bytes   int64  `json:"bytes"`
}

type problemJSON struct {
	Code     string `json:"code"`
	Index    uint64 `json:"index"`
	Seq      uint64 `json:"seq"`
	Exact    bool   `json:"exact"`
	NoRecord bool   `json:"no_record,omitempty"` // no record is implicated (index = records proven good)
	RangeEnd uint64 `json:"range_end,omitempty"`
	Segment  uint64 `json:"segment,omitempty"`
	Offset   int64  `json:"offset,omitempty"`
	Detail   string `json:"detail"`
}

func verifyStatus(rep *audit.IntegrityReport) string {
	switch {
	case rep.Problem != nil && rep.Problem.Code == integrity.CodeUntrustedKey:
		return "untrusted-key"
	case rep.Problem != nil:
		return "failed"
	case rep.UncoveredTail() > 0 || rep.TornTail != nil:
		return "uncovered-tail"
	}
	return "verified"
}

func verifyJSON(dir string, rep *audit.IntegrityReport, keys bool) verifyReport {
	out := verifyReport{
		Dir: dir, Status: verifyStatus(rep), OK: rep.OK, Segments: rep.Segments, Records: rep.Records,
		Events: rep.Events, FirstSeq: rep.FirstSeq, LastSeq: rep.LastSeq, Bytes: rep.Bytes, KeysGiven: keys,
		Checkpoints: rep.Checkpoints, Covered: rep.Covered, UncoveredTail: rep.UncoveredTail(),
		Epoch: rep.Epoch, NodesChecked: rep.NodesChecked,
	}
	if c := rep.Latest; c != nil {
		out.Latest = &checkpointJSON{Origin: c.Origin, Size: c.Size, Root: base64.StdEncoding.EncodeToString(c.Root[:]), Epoch: c.Epoch}
		if !c.Time.IsZero() {
			out.Latest.Time = c.Time.UTC().Format(time.RFC3339Nano)
		}
	}
	if rc := rep.Retention; rc != nil {
		out.Pruned = &prunedJSON{Records: rc.Size, Time: rc.Time.UTC().Format(time.RFC3339Nano), Policy: rc.Policy}
	}
	if t := rep.TornTail; t != nil {
		out.TornTail = &tornTailJSON{Segment: t.Segment, Offset: t.Offset, Bytes: t.Bytes}
	}
	if p := rep.Problem; p != nil {
		out.Problem = &problemJSON{Code: string(p.Code), Index: p.Index, Seq: p.Index + 1, Exact: p.Exact, NoRecord: p.NoRecord(), RangeEnd: p.RangeEnd, Segment: p.Segment, Offset: p.Offset, Detail: p.Detail}
	}
	return out
}

func printVerify(e *env, dir string, rep *audit.IntegrityReport, keys bool) {
	w := e.stdout
	if p := rep.Problem; p != nil && p.Code == integrity.CodeUntrustedKey {
		fmt.Fprintf(w, "NOT VERIFIED: %s\n", dir)
		fmt.Fprintf(w, "  reason:          %s (no checkpoint is signed by a key you trust)\n", p.Code)
		fmt.Fprintf(w, "  detail:          %s\n", p.Detail)
		fmt.Fprintf(w, "Check that --key is this log's public key (the genesis key with forward security). If it is, this is tampering: keep this directory unchanged as evidence.\n")
		return
	}
	if p := rep.Problem; p != nil {
		fmt.Fprintf(w, "FAILED: %s\n", dir)
		fmt.Fprintf(w, "  reason:          %s\n", p.Code)
		switch {
		case p.Exact:
			fmt.Fprintf(w, "  first bad index: %d (sequence number %d)\n", p.Index, p.Index+1)
		case p.NoRecord():
			fmt.Fprintf(w, "  first bad index: none (no record is shown to be bad)\n")
		default:
			fmt.Fprintf(w, "  first bad index: in [%d, %d) (sequence numbers %d to %d)\n", p.Index, p.RangeEnd, p.Index+1, p.RangeEnd)
		}
		if p.Segment != 0 || p.Offset != 0 {
			fmt.Fprintf(w, "  location:        segment %d, offset %d\n", p.Segment, p.Offset)
		}
		fmt.Fprintf(w, "  detail:          %s\n", p.Detail)
		fmt.Fprintf(w, "  records before the damage verified: %d\n", p.Index)
		fmt.Fprintf(w, "Keep this directory unchanged as evidence; 'mtlog-audit recover' copies what is readable into a new log.\n")
		return
	}
	status := "VERIFIED"
	if rep.UncoveredTail() > 0 || rep.TornTail != nil {
		status = "VERIFIED (uncovered tail)"
	}
	fmt.Fprintf(w, "%s: %s\n", status, dir)
	fmt.Fprintf(w, "  records:     %d (%d events) in %d segment(s), %s\n", rep.Records, rep.Events, rep.Segments, humanBytes(rep.Bytes))
	if rep.Records > 0 {
		fmt.Fprintf(w, "  sequence:    %d to %d\n", rep.FirstSeq, rep.LastSeq)
	}
	if rc := rep.Retention; rc != nil {
		fmt.Fprintf(w, "  pruned:      %d records pruned under retention at %s by policy %s\n", rc.Size, rc.Time.UTC().Format(time.RFC3339), rc.Policy)
	}
	fmt.Fprintf(w, "  tree nodes:  %d checked\n", rep.NodesChecked)
	if !keys {
		fmt.Fprintf(w, "  checkpoints: not checked (no --key given)\n")
	} else {
		fmt.Fprintf(w, "  checkpoints: %d verified\n", rep.Checkpoints)
		if c := rep.Latest; c != nil {
			fmt.Fprintf(w, "  latest:      %s size %d root %s", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
			if !c.Time.IsZero() {
				fmt.Fprintf(w, " at %s", c.Time.UTC().Format(time.RFC3339))
			}
			fmt.Fprintln(w)
		}
	}
	if rep.Epoch > 0 {
		fmt.Fprintf(w, "  key epoch:   %d\n", rep.Epoch)
	}
	if t := rep.TornTail; t != nil && t.Live {
		fmt.Fprintf(w, "  live end:    read up to segment %d offset %d; %d bytes after it were being written (not yet acknowledged; verify again to read them)\n", t.Segment, t.Offset, t.Bytes)
	} else if t != nil {
		fmt.Fprintf(w, "  torn tail:   %d bytes at segment %d offset %d (never acknowledged; removed when the log is next opened)\n", t.Bytes, t.Segment, t.Offset)
	}
	if n := rep.UncoveredTail(); n > 0 {
		fmt.Fprintf(w, "  uncovered:   the last %d record(s) are not yet covered by a verified signed checkpoint\n", n)
	} else {
		fmt.Fprintf(w, "  covered:     every record is covered by a verified signed checkpoint\n")
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
