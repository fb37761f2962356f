package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// logInfo is what info prints; --json prints it as it is.
type logInfo struct {
	Dir      string `json:"dir"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	Records  uint64 `json:"records"`
	// Events is exact when EventsExact (--full, or every segment read);
	// otherwise an upper bound (see the help).
	Events      uint64 `json:"events"`
	EventsExact bool   `json:"events_exact"`
	FirstTime   string `json:"first_event_time,omitempty"`
	LastTime    string `json:"last_event_time,omitempty"`
	Segments    int    `json:"segments"`
	Bytes       int64  `json:"bytes"`
	LastSealed  bool   `json:"last_segment_sealed"`
	// UnreadTail is the bytes after the last intact batch of the last
	// segment: zeros written ahead, a batch a live sink is writing, or a
	// torn tail ('verify' tells them apart).
	UnreadTail int64           `json:"unread_tail_bytes"`
	Checkpoint *checkpointInfo `json:"checkpoint"`
	Epochs     epochInfo       `json:"epochs"`
	Mirrors    mirrorInfo      `json:"mirrors"`
	Lock       lockInfo        `json:"lock"`
	Problems   []string        `json:"problems,omitempty"`
}

type checkpointInfo struct {
	TreeSize     uint64   `json:"tree_size"`
	Time         string   `json:"time,omitempty"`
	AgeSeconds   float64  `json:"age_seconds,omitempty"`
	Bytes        int      `json:"bytes"`
	SignerKeyIDs []string `json:"signer_key_ids"`
	Stored       int      `json:"stored"`
}

type epochInfo struct {
	// Current is the current forward-security epoch: the number of key
	// rotations (0 without forward security). Exact when Source is
	// "log"; a lower bound when it is "checkpoints".
	Current   uint64 `json:"current"`
	Rotations uint64 `json:"rotations"`
	Source    string `json:"source"` // "log" or "checkpoints"
	// SignerKeys is the number of distinct keys that signed the stored
	// checkpoints.
	SignerKeys int `json:"checkpoint_signer_keys"`
}

type mirrorInfo struct {
	Recorded bool   `json:"recorded"`
	Note     string `json:"note"`
}

type lockInfo struct {
	Held  bool   `json:"held"`
	Owner string `json:"owner,omitempty"`
}

const mirrorNote = "the log directory does not record its mirrors (they are configured in the writer, audit.WithRedundancy); check a mirror with 'mtlog-audit verify --wal MIRROR'"

func infoCmd(e *env) *cobra.Command {
	var dir string
	var asJSON, full bool
	cmd := &cobra.Command{
		Use:   "info --wal DIR [--json] [--full]",
		Short: "One screen about a log: sequence and time range, size, checkpoint, key epochs, lock",
		Long: `info describes a log without modifying it: the first and last sequence
number, the event count, the first and last event time, the segments and
their size; the newest signed checkpoint (tree size, age, size in bytes and
the key IDs of its signatures, as written: info checks no signature, verify
does); the forward-security key epoch; whether a process holds the log's
lock (a running sink), and who.

info is cheap on a big log: a sealed segment followed by another is read
only at its header and its seal (its last sector), which give its record
count and time range; only the last segment is read. So the event count is
an upper bound (events_exact false): a seal counts the segment's records,
and key rotation statements among them are not told apart. The key epoch is
then taken from the stored checkpoints' signers (a new epoch signs with a
new key): a lower bound. --full reads every record instead, for the exact
event count and the rotation statements in the log.

Mirrors: the log directory does not record them (they are configured in the
writer with audit.WithRedundancy); info says so. Check a mirror with
'mtlog-audit verify --wal MIRROR'.

A live log (a sink writing) is fine: what follows the last intact batch of
the last segment is shown as an unread tail, not as damage; run verify to
check the log. info does not verify: a sealed segment's seal is taken as
written.

With --json the same as one JSON object (snake_case keys).

Exit status: 0; 2 usage error (not a log); 1 unreadable or damaged before
the last segment.`,
		Example: `  mtlog-audit info --wal ./audit-wal
  mtlog-audit info --wal ./audit-wal --json
  mtlog-audit info --wal ./audit-wal --full`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needLog(cmd, dir); err != nil {
				return err
			}
			info, err := readInfo(cmd, dir, full, time.Now())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, info)
			}
			writeInfoText(e.stdout, info)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "wal", "", "the log's directory")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	cmd.Flags().BoolVar(&full, "full", false, "read every record: exact event count and key rotations (slower on a big log)")
	return cmd
}

func readInfo(cmd *cobra.Command, dir string, full bool, now time.Time) (*logInfo, error) {
	info := &logInfo{Dir: dir, Mirrors: mirrorInfo{Note: mirrorNote}}
	// The lock first: a sink that starts after it is seen by the read
	// as a tail, never as damage.
	held, owner, err := lockHolder(dir)
	if err != nil {
		info.Problems = append(info.Problems, fmt.Sprintf("cannot check the lock: %v", err))
	}
	info.Lock = lockInfo{Held: held, Owner: owner}
	var rotations uint64
	segs, err := wal.Summarize(cmd.Context(), vfs.OS(), dir, full, func(rec wal.Record) error {
		if rec.Type == wal.RecordMeta {
			if _, err := integrity.ParseRotationKey(rec.Payload); err == nil {
				rotations++
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrapLogErr(dir, err)
	}
	minT, maxT := int64(math.MaxInt64), int64(math.MinInt64)
	info.EventsExact = true
	info.Segments = len(segs)
	info.FirstSeq = segs[0].FirstSeq
	for _, s := range segs {
		info.Records += s.Records
		info.Bytes += s.Size
		if s.Records > 0 {
			info.LastSeq = s.FirstSeq + s.Records - 1
		}
		if s.EventsKnown {
			info.Events += s.Events
		} else {
			info.EventsExact = false
			if s.Records > 0 {
				info.Events += s.Records - 1 // the seal is not an event
			}
		}
		if s.MinTime <= s.MaxTime {
			minT, maxT = min(minT, s.MinTime), max(maxT, s.MaxTime)
		}
		if s.Problem != "" {
			info.Problems = append(info.Problems, fmt.Sprintf("segment %d: %s", s.Number, s.Problem))
		}
	}
	last := segs[len(segs)-1]
	info.LastSealed, info.UnreadTail = last.Sealed, last.Unread
	if minT <= maxT {
		info.FirstTime, info.LastTime = indexTime(minT), indexTime(maxT)
	}
	cps, err := integrity.ReadCheckpointLog(vfs.OS(), filepath.Join(dir, integrity.CheckpointsFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		info.Problems = append(info.Problems, fmt.Sprintf("cannot read the stored checkpoints: %v", err))
	}
	keys, changes := map[string]bool{}, uint64(0)
	prev := ""
	for _, raw := range cps {
		ids := noteSigners(raw)
		id := strings.Join(ids, ",")
		for _, k := range ids {
			keys[k] = true
		}
		if prev != "" && id != prev {
			changes++
		}
		prev = id
	}
	if len(cps) > 0 {
		raw := cps[len(cps)-1]
		ci := &checkpointInfo{Bytes: len(raw), SignerKeyIDs: noteSigners(raw), Stored: len(cps)}
		if ci.SignerKeyIDs == nil {
			ci.SignerKeyIDs = []string{}
		}
		if cp, err := parseAny(raw); err != nil {
			info.Problems = append(info.Problems, fmt.Sprintf("the newest stored checkpoint cannot be parsed: %v", err))
		} else {
			ci.TreeSize = cp.Size
			if !cp.Time.IsZero() {
				ci.Time = cp.Time.UTC().Format(time.RFC3339Nano)
				ci.AgeSeconds = math.Round(now.Sub(cp.Time).Seconds()*1000) / 1000
			}
		}
		info.Checkpoint = ci
	}
	info.Epochs = epochInfo{SignerKeys: len(keys)}
	if full {
		info.Epochs.Source, info.Epochs.Current, info.Epochs.Rotations = "log", rotations, rotations
	} else {
		n := max(changes, rotations)
		info.Epochs.Source, info.Epochs.Current, info.Epochs.Rotations = "checkpoints", n, n
	}
	return info, nil
}

func writeInfoText(w io.Writer, in *logInfo) {
	fmt.Fprintf(w, "log:          %s\n", in.Dir)
	if in.Records == 0 {
		fmt.Fprintf(w, "records:      none\n")
	} else {
		fmt.Fprintf(w, "records:      seq %d to %d (%d records)\n", in.FirstSeq, in.LastSeq, in.Records)
	}
	ev := fmt.Sprintf("%d", in.Events)
	if !in.EventsExact {
		ev = fmt.Sprintf("at most %d (--full counts them exactly)", in.Events)
	}
	fmt.Fprintf(w, "events:       %s; the other records are seals and key rotations\n", ev)
	if in.FirstTime != "" {
		fmt.Fprintf(w, "event times:  %s to %s\n", in.FirstTime, in.LastTime)
	}
	state := "open (not sealed)"
	if in.LastSealed {
		state = "sealed (closed cleanly)"
	}
	fmt.Fprintf(w, "segments:     %d, %s; last segment %s\n", in.Segments, humanBytes(in.Bytes), state)
	if in.UnreadTail > 0 {
		fmt.Fprintf(w, "tail:         %s after the last intact batch (space written ahead, a batch being written, or a torn tail; 'verify' checks)\n", humanBytes(in.UnreadTail))
	}
	if cp := in.Checkpoint; cp != nil {
		age := ""
		if cp.Time != "" {
			age = fmt.Sprintf(", %s, %s ago", cp.Time, time.Duration(cp.AgeSeconds*float64(time.Second)).Round(time.Second))
		}
		fmt.Fprintf(w, "checkpoint:   tree size %d%s, %d bytes, %d stored\n", cp.TreeSize, age, cp.Bytes, cp.Stored)
		fmt.Fprintf(w, "  signed by:  %s (not checked; 'verify --key' checks)\n", strings.Join(cp.SignerKeyIDs, ", "))
	} else {
		fmt.Fprintf(w, "checkpoint:   none (the sink signs checkpoints only with a signing key)\n")
	}
	switch {
	case in.Checkpoint == nil && in.Epochs.Rotations == 0:
		fmt.Fprintf(w, "key epochs:   none (no signed checkpoint)\n")
	case in.Epochs.Source == "log":
		fmt.Fprintf(w, "key epochs:   current %d (%d rotation statements in the log)\n", in.Epochs.Current, in.Epochs.Rotations)
	default:
		fmt.Fprintf(w, "key epochs:   current at least %d (%d checkpoint signing key(s); --full counts the rotation statements)\n", in.Epochs.Current, in.Epochs.SignerKeys)
	}
	fmt.Fprintf(w, "mirrors:      %s\n", in.Mirrors.Note)
	if in.Lock.Held {
		fmt.Fprintf(w, "lock:         held: live, %s\n", in.Lock.Owner)
	} else {
		fmt.Fprintf(w, "lock:         not held (no process has the log open)\n")
	}
	for _, p := range in.Problems {
		fmt.Fprintf(w, "problem:      %s\n", p)
	}
}

// indexTime formats a time as the index stores it (wal.UnixNano): RFC 3339,
// or for an event beyond 1677–2262 the end of that range it is stored as.
func indexTime(ns int64) string {
	t := time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
	switch ns {
	case math.MinInt64:
		return "at or before " + t
	case math.MaxInt64:
		return "at or after " + t
	}
	return t
}
