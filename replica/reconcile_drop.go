package replica

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/wal"
)

// Dropped is a record that a copy held but the repaired log leaves out, as
// never acknowledged (see Options.Quorum and Report.Dropped).
type Dropped struct {
	// Dir is the copy that held the record.
	Dir string `json:"dir"`
	// Seq is the record's sequence number.
	Seq uint64 `json:"seq"`
	// Segment and Offset are where the copy held it.
	Segment uint64 `json:"segment"`
	Offset  int64  `json:"offset"`
	// Reason says why it cannot have been acknowledged.
	Reason string `json:"reason"`
}

// String describes the dropped record in one line.
func (d Dropped) String() string {
	return fmt.Sprintf("%s: dropped record %d (segment %d, offset %d): %s", d.Dir, d.Seq, d.Segment, d.Offset, d.Reason)
}

// held is what aggressive salvage read of one copy after the primary's
// last verified record: for each sequence number, whether its batch
// verifies there (whole) or it was read from inside damaged bytes.
type held struct {
	whole map[uint64]bool
}

// unacknowledged decides whether rec, which copy c holds after the end of
// the chosen log, was never acknowledged and may be left out. It returns
// why, or "" when it may not (Reconcile then refuses with ErrDiverged).
//
// Every acknowledgement needs the primary and, with r.quorum ≥ 2, at least
// one mirror to hold the record's batch whole and durable. So if the
// record had been acknowledged, at least r.quorum copies held its batch
// whole, and one damaged copy leaves at least one that still does. It is
// dropped only when no copy does (every copy holding it holds it in bytes
// that do not verify, in its last segment; a later record whose batch
// verifies is refused the same way, so these are the end of what the copy
// wrote), the primary verifies
// without it (records, chain, tree nodes and checkpoints: nothing there
// was damaged), and no stored signed checkpoint of any copy covers it.
// Being acknowledged and then lost that way takes at least two damaged
// copies, or a log written with a quorum of 1 and reopened with more
// (docs/architecture.md, "Records a repair may leave out").
func (r *reconciler) unacknowledged(c *copyInfo, rec wal.Record, best *candidate) (string, error) {
	p := r.copies[0]
	if r.quorum < 2 || p.state.Empty || !p.verdict.ok || p.verdict.soft || p.verdict.lastSeq() >= rec.Seq || best.vd.lastSeq() >= rec.Seq {
		return "", nil
	}
	if len(c.segs) == 0 || rec.Segment != c.segs[len(c.segs)-1] {
		return "", nil // not in the copy's last segment: not the end of what it wrote
	}
	if r.held == nil {
		r.held = map[*copyInfo]*held{}
	}
	holders := 0
	for _, d := range r.copies {
		if d.state.Empty {
			continue
		}
		h, ok := r.held[d]
		if !ok {
			var err error
			if h, err = r.salvageAfter(d, p.verdict.lastSeq()); err != nil {
				return "", err
			}
			r.held[d] = h
		}
		whole, has := h.whole[rec.Seq]
		switch {
		case whole:
			return "", nil // a copy holds its batch whole: the record must be kept
		case has:
			holders++
		}
	}
	covered, err := r.coveredBy(rec.Seq)
	if err != nil || covered != "" {
		return "", err
	}
	return fmt.Sprintf("never acknowledged: every acknowledgement needed %d copies holding its batch whole, but no copy does (%d hold%s it only in bytes that do not verify, at the end of what they hold: a write cut short or torn, never completed), the primary verifies without it (through sequence %d), and no stored signed checkpoint covers it",
		r.quorum, holders, map[bool]string{true: "s", false: ""}[holders == 1], p.verdict.lastSeq()), nil
}

// salvageAfter reads copy d with aggressive salvage and returns what it
// holds after sequence number after. A record is whole when its batch
// verified: the batch's last record carries BatchEnd, and its records share
// the batch's offset; a record read from inside damaged bytes carries its
// own offset and no BatchEnd.
func (r *reconciler) salvageAfter(d *copyInfo, after uint64) (*held, error) {
	type at struct {
		seg uint64
		off int64
	}
	seqs := map[at][]uint64{}
	ended := map[at]bool{}
	_, err := wal.Salvage(r.ctx, d.FS, d.Dir, wal.SalvageAggressive, func(x wal.Record) error {
		if x.Seq > after {
			k := at{x.Segment, x.Offset}
			seqs[k] = append(seqs[k], x.Seq)
			ended[k] = ended[k] || x.BatchEnd
		}
		return nil
	}, nil)
	if err != nil && !errors.Is(err, wal.ErrNotWAL) {
		return nil, fmt.Errorf("audit: read %s to compare it with the repaired log: %w", d.Dir, err)
	}
	h := &held{whole: map[uint64]bool{}}
	for k, ss := range seqs {
		for _, seq := range ss {
			h.whole[seq] = h.whole[seq] || ended[k]
		}
	}
	return h, nil
}

// coveredBy names a stored signed checkpoint of any copy that covers
// sequence number seq ("" when none does). A checkpoints file that cannot
// be read, or an entry that cannot be parsed, counts as covering it.
func (r *reconciler) coveredBy(seq uint64) (string, error) {
	for _, d := range r.copies {
		cps, err := integrity.ReadCheckpointLog(d.FS, filepath.Join(d.Dir, integrity.CheckpointsFile))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Sprintf("%s: the checkpoints cannot be read: %v", d.Dir, err), nil
		}
		for _, e := range cps {
			cp, err := parseNote(e)
			if err != nil || cp.Size >= seq {
				return fmt.Sprintf("%s holds a checkpoint that covers it or cannot be parsed", d.Dir), nil
			}
		}
	}
	return "", r.ctx.Err()
}
