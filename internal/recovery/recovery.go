// Package recovery copies what can still be read from a damaged audit log
// into a fresh one: the work behind `mtlog-audit recover`.
//
// Recover reads the damaged log with wal.Salvage (never modifying it),
// decodes every event record that still verifies, and writes it with
// audit.Sink.Write into a new log, which it then closes and verifies. The
// new log keeps each event's original timestamp but numbers the events
// afresh, contiguously from 1, and has its own hash chain and Merkle tree:
// it is a new log, not a repaired copy of the old one. The Report says what
// was salvaged and lists every gap in the old numbering.
package recovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

var (
	// ErrOutputNotEmpty is matched when the output directory exists and is
	// not empty (or is not a directory): Recover never writes over anything.
	ErrOutputNotEmpty = errors.New("recovery: output directory is not empty")
	// ErrOutputInInput is matched when the output directory is the input
	// directory or lies inside it: the damaged log is never written to.
	ErrOutputInInput = errors.New("recovery: output directory is the input directory or inside it")
	// ErrVerify is matched when the new log, once written, does not verify.
	// This is a bug, not damage in the input: the new log is left where the
	// error says, for inspection.
	ErrVerify = errors.New("recovery: the recovered log did not verify")
)

// Options configure Recover.
type Options struct {
	// Mode is wal.SalvageSafe (the default: stop at the first damage, so
	// the new log is exactly the intact prefix) or wal.SalvageAggressive
	// (carry on after damage and report every gap).
	Mode wal.SalvageMode
	// SigningKey, if set, is a signed-note private key passed to
	// audit.WithSigningKey: the new log's checkpoints are signed with it,
	// and verified with its public key before Recover returns.
	SigningKey string
	// Progress, if set, is called now and then with the number of bytes of
	// the input's segment files examined so far.
	Progress func(bytesScanned int64)
}

// VerifyResult is the outcome of audit.Verify on the new log.
type VerifyResult struct {
	// OK is true when the new log verified.
	OK bool `json:"ok"`
	// Segments, Records and Events describe the new log.
	Segments int    `json:"segments"`
	Records  uint64 `json:"records"`
	Events   uint64 `json:"events"`
	// Checkpoints is the number of signed checkpoints verified (with a
	// signing key only), and Covered the number of records they cover.
	Checkpoints int    `json:"checkpoints"`
	Covered     uint64 `json:"covered"`
	// Problem describes what failed to verify (empty when OK).
	Problem string `json:"problem,omitempty"`
}

// Report describes a recovery.
type Report struct {
	// Input and Output are the directories, as absolute paths.
	Input, Output string
	// Mode is "safe" or "aggressive".
	Mode string
	// Salvage is what wal.Salvage found in the input: records, gaps (in
	// the old log's sequence numbers) and torn tail.
	Salvage *wal.SalvageReport
	// EventsWritten is the number of events written to the new log; they
	// have sequence numbers 1 to EventsWritten there, in the old order.
	EventsWritten uint64
	// SkippedNonEvents counts salvaged records that are not events (seals,
	// key rotations and other records that describe the old log itself,
	// whose new log has its own).
	SkippedNonEvents uint64
	// Undecodable lists the old sequence numbers of event records that
	// passed their checksum but that event.Decode rejected: written by a
	// newer encoding version, or by a faulty writer. A checksum-valid
	// payload cannot be damage that happened on disk, so they are not
	// silently dropped; but they cannot be written through Sink.Write
	// (which takes an Event), and copying their raw bytes would make the
	// new log unreadable to Replay at that record. So they are skipped and
	// listed here: read them from the old log (kept unchanged) with a
	// reader that understands them.
	Undecodable []uint64
	// Verify is the result of verifying the new log (nil if Recover failed
	// before it got that far).
	Verify *VerifyResult
	// Authentication says whether the records of a signed input were
	// authenticated before they were copied, and which were refused (nil:
	// the input is not signed).
	Authentication *Authentication
}

// Lost reports whether the new log may lack records of the old one: a gap
// that lost records (or may have: open-ended), a safe-mode stop,
// undecodable events, or records refused as unauthenticated. Gaps that lost nothing (a damaged segment header whose
// records were all recovered, say) do not count.
func (r *Report) Lost() bool {
	if len(r.Undecodable) > 0 || r.Authentication != nil && r.Authentication.Refused > 0 {
		return true
	}
	if r.Salvage == nil {
		return false
	}
	n, complete := r.Salvage.Lost()
	return r.Salvage.Stopped || n > 0 || !complete
}

// Recover salvages the log in the directory in (read only: no file there is
// created, modified or locked) into a new log in the directory out, which
// must not exist or must be empty.
// Stop the application that writes the input first, or recover a copy:
// Recover does not take the input's lock (that would write to it).
//
// Each salvaged event record is decoded with event.Decode and written with
// Sink.Write, in the old order, keeping its timestamp; the new log assigns
// new, contiguous sequence numbers. Records of other types are skipped and
// counted; events that do not decode are skipped and listed (see
// Report.Undecodable). The new log is written without an fsync per event
// (audit.SyncNone) into a staging directory beside out; when every record
// is in, the Sink is closed (sealing the log), every file is fsynced, the
// log is verified with audit.Verify, and only then is it renamed to out. So
// out never holds a partial log: if Recover fails or ctx ends, the staging
// directory is removed and out is left as it was.
//
// The returned Report is nil when Recover failed before salvaging anything
// useful: bad arguments, an output that is not empty (ErrOutputNotEmpty) or
// inside the input (ErrOutputInInput), an input that is not a log
// (wal.ErrNotWAL) or was written by a newer format (wal.ErrUnknownVersion),
// a signing key that does not parse. Otherwise it describes what was done,
// also alongside an error.
func Recover(ctx context.Context, in, out string, opts Options) (*Report, error) {
	if opts.Mode != wal.SalvageSafe && opts.Mode != wal.SalvageAggressive {
		return nil, fmt.Errorf("recovery: unknown mode %v (use safe or aggressive)", opts.Mode)
	}
	if in == "" || out == "" {
		return nil, errors.New("recovery: both the input and the output directory are required")
	}
	absIn, err := filepath.Abs(in)
	if err != nil {
		return nil, fmt.Errorf("recovery: input %s: %w", in, err)
	}
	absOut, err := filepath.Abs(out)
	if err != nil {
		return nil, fmt.Errorf("recovery: output %s: %w", out, err)
	}
	if rel, err := filepath.Rel(absIn, absOut); err == nil && (rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)))) {
		return nil, fmt.Errorf("%w: %s is the damaged log %s or inside it; give a directory elsewhere", ErrOutputInInput, absOut, absIn)
	}
	if err := checkInput(absIn); err != nil {
		return nil, err
	}
	outExists, err := checkOutput(absOut)
	if err != nil {
		return nil, err
	}
	parent := filepath.Dir(absOut)
	if err := os.MkdirAll(parent, 0o750); err != nil {
		return nil, fmt.Errorf("recovery: create %s: %w", parent, err)
	}
	stage, err := os.MkdirTemp(parent, "."+filepath.Base(absOut)+".recovering-")
	if err != nil {
		return nil, fmt.Errorf("recovery: create a staging directory in %s: %w", parent, err)
	}
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(stage)
		}
	}()
	if err := os.Chmod(stage, 0o750); err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	sinkOpts := []audit.Option{audit.WithWAL(stage), audit.WithSyncMode(audit.SyncNone, 0)}
	var verifyOpts []audit.VerifyOption
	if opts.SigningKey != "" {
		vkey, err := integrity.PublicKeyOf(opts.SigningKey)
		if err != nil {
			return nil, fmt.Errorf("recovery: signing key: %w", err)
		}
		sinkOpts = append(sinkOpts, audit.WithSigningKey(opts.SigningKey))
		verifyOpts = append(verifyOpts, audit.WithTrustedKeys(vkey))
	}
	sink, err := audit.New(sinkOpts...)
	if err != nil {
		return nil, fmt.Errorf("recovery: create the new log: %w", err)
	}

	rep := &Report{Input: absIn, Output: absOut, Mode: opts.Mode.String()}
	write := func(r wal.Record) error {
		if r.Type != wal.RecordEvent {
			rep.SkippedNonEvents++
			return nil
		}
		ev, err := event.Decode(r.Payload)
		if err != nil {
			rep.Undecodable = append(rep.Undecodable, r.Seq)
			return nil
		}
		if _, err := sink.WriteCopy(ctx, ev); err != nil {
			return fmt.Errorf("recovery: write event %d to the new log: %w", r.Seq, err)
		}
		rep.EventsWritten++
		return nil
	}
	visit := write
	auth, note, err := newAuthenticator(absIn, opts.SigningKey, write)
	switch {
	case err != nil:
		sink.Close()
		return nil, err
	case auth != nil:
		visit, rep.Authentication = auth.visit, auth.rep
	case note != "":
		rep.Authentication = &Authentication{Note: note}
	}
	srep, serr := wal.Salvage(ctx, vfs.OS(), absIn, opts.Mode, visit, opts.Progress)
	if auth != nil {
		auth.finish()
	}
	rep.Salvage = srep
	cerr := sink.Close()
	switch {
	case serr != nil && (errors.Is(serr, wal.ErrNotWAL) || errors.Is(serr, wal.ErrUnknownVersion)):
		return nil, fmt.Errorf("recovery: %w", serr)
	case serr != nil:
		return rep, fmt.Errorf("recovery: salvage %s (nothing was written to %s): %w", absIn, absOut, serr)
	case cerr != nil:
		return rep, fmt.Errorf("recovery: close the new log (nothing was written to %s): %w", absOut, cerr)
	}
	if err := syncTree(stage); err != nil {
		return rep, err
	}
	vr, verr := audit.Verify(ctx, stage, verifyOpts...)
	if vr != nil {
		rep.Verify = &VerifyResult{OK: vr.OK && verr == nil, Segments: vr.Segments, Records: vr.Records, Events: vr.Events, Checkpoints: vr.Checkpoints, Covered: vr.Covered}
		if vr.Problem != nil {
			rep.Verify.Problem = vr.Problem.Error()
		}
	}
	switch {
	case verr != nil && ctx.Err() != nil:
		return rep, fmt.Errorf("recovery: verify the new log: %w", verr)
	case verr != nil:
		keep = true
		return rep, fmt.Errorf("%w (left in %s for inspection; nothing was written to %s): %w", ErrVerify, stage, absOut, verr)
	case vr.Events != rep.EventsWritten:
		keep = true
		rep.Verify.OK = false
		rep.Verify.Problem = fmt.Sprintf("the new log holds %d events, %d were written", vr.Events, rep.EventsWritten)
		return rep, fmt.Errorf("%w: %s (left in %s for inspection)", ErrVerify, rep.Verify.Problem, stage)
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	if outExists {
		if err := os.Remove(absOut); err != nil { // empty, checked above
			return rep, fmt.Errorf("recovery: replace the empty directory %s: %w", absOut, err)
		}
	}
	if err := os.Rename(stage, absOut); err != nil {
		return rep, fmt.Errorf("recovery: move the new log into place at %s: %w", absOut, err)
	}
	keep = true
	if err := vfs.OS().SyncDir(parent); err != nil {
		return rep, fmt.Errorf("recovery: sync %s: %w", parent, err)
	}
	return rep, nil
}

// checkInput checks that dir is a directory holding WAL segments, so that
// an input that is not a log is refused before anything is created.
func checkInput(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("recovery: %w: %w", wal.ErrNotWAL, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("recovery: %w: %s is not a directory", wal.ErrNotWAL, dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("recovery: read %s: %w", dir, err)
	}
	for _, e := range entries {
		if _, ok := wal.ParseSegmentName(e.Name()); ok {
			return nil
		}
	}
	return fmt.Errorf("recovery: %w: %s holds no segment files (NNNNNNNNNNNNNNNNNNNN.wal)", wal.ErrNotWAL, dir)
}

// checkOutput refuses an output that exists and is not an empty directory,
// and reports whether it exists.
func checkOutput(dir string) (bool, error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("recovery: output %s: %w", dir, err)
	case !fi.IsDir():
		return false, fmt.Errorf("%w: %s exists and is a file; give a new or empty directory", ErrOutputNotEmpty, dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("recovery: read %s: %w", dir, err)
	}
	if len(entries) > 0 {
		return false, fmt.Errorf("%w: %s holds %d entries (e.g. %q); give a new or empty directory, recover never writes over anything", ErrOutputNotEmpty, dir, len(entries), entries[0].Name())
	}
	return true, nil
}

// syncTree fsyncs every file of dir, and dir itself, whatever sync mode
// wrote them.
func syncTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("recovery: read %s: %w", dir, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return fmt.Errorf("recovery: %w", err)
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("recovery: fsync %s: %w", filepath.Join(dir, e.Name()), err)
		}
	}
	if err := vfs.OS().SyncDir(dir); err != nil {
		return fmt.Errorf("recovery: sync %s: %w", dir, err)
	}
	return nil
}

// WriteText writes a human summary: what was salvaged and written, the gaps
// in the old numbering, where the new log is and what to do next.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	s := r.Salvage
	if s == nil {
		s = &wal.SalvageReport{}
	}
	fmt.Fprintf(&b, "Recovery of %s (%s mode)\n\n", r.Input, r.Mode)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  segments examined\t%d (%d bytes)\n", s.Segments, s.BytesScanned)
	salv := fmt.Sprintf("%d", s.Records)
	if s.Records > 0 {
		salv += fmt.Sprintf(" (old sequence numbers %d to %d", s.FirstSeq, s.LastSeq)
		if s.Recovered > 0 {
			salv += fmt.Sprintf("; %d recovered from inside damaged batches", s.Recovered)
		}
		salv += ")"
	}
	fmt.Fprintf(tw, "  records salvaged\t%s\n", salv)
	written := fmt.Sprintf("%d", r.EventsWritten)
	if r.EventsWritten > 0 {
		written += fmt.Sprintf(" (new sequence numbers 1 to %d)", r.EventsWritten)
	}
	fmt.Fprintf(tw, "  events written\t%s\n", written)
	fmt.Fprintf(tw, "  other records skipped\t%d (seals and other records that belong to the old log)\n", r.SkippedNonEvents)
	if len(r.Undecodable) > 0 {
		fmt.Fprintf(tw, "  undecodable events\t%d, skipped: old sequence numbers %s\n", len(r.Undecodable), seqList(r.Undecodable, 20))
	}
	switch {
	case r.Verify == nil:
		fmt.Fprintf(tw, "  new log\tnot verified\n")
	case r.Verify.OK:
		fmt.Fprintf(tw, "  new log\t%s: verified (%d records, %d events, %d segment(s))\n", r.Output, r.Verify.Records, r.Verify.Events, r.Verify.Segments)
	default:
		fmt.Fprintf(tw, "  new log\tDID NOT VERIFY: %s\n", r.Verify.Problem)
	}
	if a := r.Authentication; a != nil {
		if a.Refused > 0 {
			fmt.Fprintf(tw, "  authentication\tREFUSED %d salvaged records from old sequence number %d on, not copied: %s\n", a.Refused, a.RefusedFrom, a.Reason)
		}
		switch {
		case a.Checked && a.Unchecked > 0:
			fmt.Fprintf(tw, "  authentication\t%d copied records NOT CHECKED: %s\n", a.Unchecked, a.Note)
		case a.Checked && a.Refused == 0:
			fmt.Fprintf(tw, "  authentication\tevery copied record is in a batch whose tag the signing key made\n")
		case !a.Checked:
			fmt.Fprintf(tw, "  authentication\tNOT CHECKED: %s\n", a.Note)
		}
	}
	if t := s.TornTail; t != nil {
		fmt.Fprintf(tw, "  torn tail\tsegment %d at offset %d, %d bytes: the end of a write that was never acknowledged (not a loss)\n", t.Segment, t.Offset, t.Bytes)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	n, complete := s.Lost()
	switch {
	case len(s.Gaps) == 0:
		b.WriteString("\nNo gaps: every record of the old log was salvaged.\n")
	default:
		lost := fmt.Sprintf("%d records lost", n)
		if !complete {
			var from uint64
			for _, g := range s.Gaps {
				if g.OpenEnded() {
					from = g.FirstSeq
					break
				}
			}
			lost = fmt.Sprintf("an unknown number of records lost from old sequence number %d on", from)
			if n > 0 {
				lost = fmt.Sprintf("%d records lost, and %s", n, lost)
			}
		}
		fmt.Fprintf(&b, "\nGaps (%d; %s; sequence numbers are the old log's):\n\n", len(s.Gaps), lost)
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  SEGMENT\tOFFSET\tLENGTH\tMISSING\tREASON\n")
		for _, g := range s.Gaps {
			fmt.Fprintf(tw, "  %d\t%d\t%d\t%s\t%s\n", g.Segment, g.Offset, g.Length, missing(g), g.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if s.Stopped {
		b.WriteString("\nSafe mode stopped at the first damage: the new log holds exactly the intact prefix. Run again\nin aggressive mode (into another empty directory) to salvage what follows the damage.\n")
	}

	b.WriteString("\nNext:\n")
	if r.Verify != nil && r.Verify.OK {
		fmt.Fprintf(&b, "  - The new log is in %s. Point the application at it (or move it into place)\n    while the application is stopped.\n", r.Output)
	}
	fmt.Fprintf(&b, "  - Keep %s unchanged: it is the evidence of what was damaged, and the only\n    copy of anything listed above as missing or undecodable.\n", r.Input)
	b.WriteString("  - The new log numbers events afresh and has its own hash chain and Merkle tree: receipts,\n    proofs and checkpoints issued for the old log do not apply to it. Record the gaps above\n    (old numbering) with this report, and hand auditors a new checkpoint of the new log.\n")
	if a := r.Authentication; a != nil && a.Refused > 0 {
		b.WriteString("  - The refused records are not the signing key's: treat the input as tampered with, keep it as\n    evidence, and restore the log from a mirror (recover --mirror) or the backends (restore).\n")
	}
	if r.Lost() {
		b.WriteString("  - Restore what is missing from a mirror or backup if there is one.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// missing describes the sequence numbers a gap lost.
func missing(g wal.Gap) string {
	switch {
	case g.OpenEnded():
		return fmt.Sprintf("%d onward (unknown)", g.FirstSeq)
	case g.FirstSeq == 0 && g.Exact:
		return "none"
	case g.FirstSeq == 0:
		return "see the gap above"
	}
	s := fmt.Sprintf("%d", g.FirstSeq)
	if g.LastSeq != g.FirstSeq {
		s = fmt.Sprintf("%d-%d", g.FirstSeq, g.LastSeq)
	}
	n := g.Lost()
	unit := "records"
	if n == 1 {
		unit = "record"
	}
	if !g.Exact {
		return fmt.Sprintf("%s (%d %s, with the gaps below)", s, n, unit)
	}
	return fmt.Sprintf("%s (%d %s)", s, n, unit)
}

func seqList(seqs []uint64, max int) string {
	var parts []string
	for i, s := range seqs {
		if i == max {
			parts = append(parts, fmt.Sprintf("and %d more", len(seqs)-max))
			break
		}
		parts = append(parts, fmt.Sprint(s))
	}
	return strings.Join(parts, ", ")
}

// WriteJSON writes the report as one indented JSON object with stable
// snake_case field names (see MarshalJSON).
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// The JSON form of a Report. Fields marked derived are written for
// convenience and ignored when reading.
type jsonReport struct {
	Input            string          `json:"input"`
	Output           string          `json:"output"`
	Mode             string          `json:"mode"`
	Salvage          *jsonSalvage    `json:"salvage"`
	EventsWritten    uint64          `json:"events_written"`
	SkippedNonEvents uint64          `json:"skipped_non_events"`
	Undecodable      []uint64        `json:"undecodable"`
	Verify           *VerifyResult   `json:"verify"`
	Authentication   *Authentication `json:"authentication,omitempty"`
	Lost             bool            `json:"lost"` // derived
}

type jsonSalvage struct {
	Mode         string    `json:"mode"`
	Segments     int       `json:"segments"`
	Records      uint64    `json:"records"`
	Events       uint64    `json:"events"`
	Recovered    uint64    `json:"recovered_from_damaged_batches"`
	FirstSeq     uint64    `json:"first_seq"`
	LastSeq      uint64    `json:"last_seq"`
	BytesScanned int64     `json:"bytes_scanned"`
	Stopped      bool      `json:"stopped"`
	TornTail     *jsonTail `json:"torn_tail"`
	Gaps         []jsonGap `json:"gaps"`
	RecordsLost  uint64    `json:"records_lost"`          // derived
	LostComplete bool      `json:"records_lost_complete"` // derived
}

type jsonTail struct {
	Segment uint64 `json:"segment"`
	Offset  int64  `json:"offset"`
	Bytes   int64  `json:"bytes"`
}

type jsonGap struct {
	Segment   uint64 `json:"segment"`
	Offset    int64  `json:"offset"`
	Length    int64  `json:"length"`
	FirstSeq  uint64 `json:"first_seq"`
	LastSeq   uint64 `json:"last_seq"`
	Exact     bool   `json:"exact"`
	Lost      uint64 `json:"lost"`       // derived
	OpenEnded bool   `json:"open_ended"` // derived
	Reason    string `json:"reason"`
}

// MarshalJSON encodes the report with snake_case field names: input,
// output, mode, salvage (mode, segments, records, events,
// recovered_from_damaged_batches, first_seq, last_seq, bytes_scanned,
// stopped, torn_tail {segment, offset, bytes}, gaps [{segment, offset,
// length, first_seq, last_seq, exact, lost, open_ended, reason}],
// records_lost, records_lost_complete), events_written,
// skipped_non_events, undecodable, verify {ok, segments, records, events,
// checkpoints, covered, problem}, authentication {checked, note, refused,
// refused_from, reason} (a signed input only) and lost.
func (r Report) MarshalJSON() ([]byte, error) {
	j := jsonReport{Input: r.Input, Output: r.Output, Mode: r.Mode, EventsWritten: r.EventsWritten, SkippedNonEvents: r.SkippedNonEvents,
		Undecodable: r.Undecodable, Verify: r.Verify, Authentication: r.Authentication, Lost: r.Lost()}
	if j.Undecodable == nil {
		j.Undecodable = []uint64{}
	}
	if s := r.Salvage; s != nil {
		js := &jsonSalvage{Mode: s.Mode.String(), Segments: s.Segments, Records: s.Records, Events: s.Events, Recovered: s.Recovered,
			FirstSeq: s.FirstSeq, LastSeq: s.LastSeq, BytesScanned: s.BytesScanned, Stopped: s.Stopped, Gaps: []jsonGap{}}
		js.RecordsLost, js.LostComplete = s.Lost()
		if t := s.TornTail; t != nil {
			js.TornTail = &jsonTail{Segment: t.Segment, Offset: t.Offset, Bytes: t.Bytes}
		}
		for _, g := range s.Gaps {
			js.Gaps = append(js.Gaps, jsonGap{Segment: g.Segment, Offset: g.Offset, Length: g.Length, FirstSeq: g.FirstSeq, LastSeq: g.LastSeq,
				Exact: g.Exact, Lost: g.Lost(), OpenEnded: g.OpenEnded(), Reason: g.Reason})
		}
		j.Salvage = js
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes what MarshalJSON wrote (derived fields are
// recomputed, not read).
func (r *Report) UnmarshalJSON(data []byte) error {
	var j jsonReport
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	out := Report{Input: j.Input, Output: j.Output, Mode: j.Mode, EventsWritten: j.EventsWritten, SkippedNonEvents: j.SkippedNonEvents, Verify: j.Verify,
		Authentication: j.Authentication}
	if len(j.Undecodable) > 0 {
		out.Undecodable = j.Undecodable
	}
	if js := j.Salvage; js != nil {
		mode, err := wal.ParseSalvageMode(js.Mode)
		if err != nil {
			return fmt.Errorf("recovery: report: %w", err)
		}
		s := &wal.SalvageReport{Mode: mode, Segments: js.Segments, Records: js.Records, Events: js.Events, Recovered: js.Recovered,
			FirstSeq: js.FirstSeq, LastSeq: js.LastSeq, BytesScanned: js.BytesScanned, Stopped: js.Stopped}
		if t := js.TornTail; t != nil {
			s.TornTail = &wal.TailInfo{Segment: t.Segment, Offset: t.Offset, Bytes: t.Bytes}
		}
		for _, g := range js.Gaps {
			s.Gaps = append(s.Gaps, wal.Gap{Segment: g.Segment, Offset: g.Offset, Length: g.Length, FirstSeq: g.FirstSeq, LastSeq: g.LastSeq, Exact: g.Exact, Reason: g.Reason})
		}
		out.Salvage = s
	}
	*r = out
	return nil
}
