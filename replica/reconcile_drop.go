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

// unacknowledged decides whether rec, which copy c holds after the end of
// the chosen log, was never acknowledged and may be left out. It returns
// why, or "" when it may not (Reconcile then refuses with ErrDiverged).
//
// Every acknowledgement needs the primary and, with r.quorum ≥ 2, at least
// one mirror to hold the record's batch whole and durable. So if the
// record had been acknowledged, at least r.quorum copies held its batch
// whole, and one damaged copy leaves at least one that still does. It is
// dropped only when no copy does (each copy holding it holds it only in
// bytes that do not verify; in c, in its last segment, and a later record
// of c whose batch verifies is refused the same way, so these are the end
// of what c wrote), the primary verifies without it (records, chain, tree
// nodes and checkpoints: nothing there was damaged), and no stored signed
// checkpoint of any copy covers it. Being acknowledged and then lost that way takes at least two damaged
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
		r.held = map[*copyInfo]map[uint64]bool{}
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
		whole, has := h[rec.Seq]
		switch {
		case whole:
			return "", nil // a copy holds its batch whole: the record must be kept
		case has:
			holders++
		}
	}
	if covered, err := r.coveredBy(rec.Seq); err != nil || covered {
		return "", err
	}
	copies := "copies hold"
	if holders == 1 {
		copies = "copy holds"
	}
	return fmt.Sprintf("never acknowledged: every acknowledgement needed %d copies holding its batch whole, but no copy does (%d %s it only in bytes that do not verify: a write cut short or torn, never completed), the primary verifies without it (through sequence %d), and no stored signed checkpoint covers it",
		r.quorum, holders, copies, p.verdict.lastSeq()), nil
}

// salvageAfter reads copy d with aggressive salvage and returns the
// sequence numbers it holds after after, each true when the record is
// whole (its batch verifies) and false when it was read from inside
// damaged bytes. A batch that verified has its records at the batch's
// offset and BatchEnd on the last; a record read from inside damaged bytes
// carries its own offset and no BatchEnd.
func (r *reconciler) salvageAfter(d *copyInfo, after uint64) (map[uint64]bool, error) {
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
	whole := map[uint64]bool{}
	for k, ss := range seqs {
		for _, seq := range ss {
			whole[seq] = whole[seq] || ended[k]
		}
	}
	return whole, nil
}

// coveredBy reports whether a stored signed checkpoint of any copy covers
// sequence number seq. A checkpoints file that cannot be read, or an entry
// that cannot be parsed, counts as covering it.
func (r *reconciler) coveredBy(seq uint64) (bool, error) {
	for _, d := range r.copies {
		cps, err := integrity.ReadCheckpointLog(d.FS, filepath.Join(d.Dir, integrity.CheckpointsFile))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return true, nil
		}
		for _, e := range cps {
			if cp, err := parseNote(e); err != nil || cp.Size >= seq {
				return true, nil
			}
		}
	}
	return false, r.ctx.Err()
}
