package compliance

import (
	"errors"
	"fmt"
	"time"

	"github.com/willibrandon/mtlog-audit/wal"
)

// RetentionPolicy is a compliance profile's rule for how long its log is
// kept: never deleted before Min (HIPAA 164.316(b)(2)(i), PCI DSS 10.5.1,
// SOX 17 CFR 210.2-06, NIST SP 800-53 AU-11), and deleted once older than
// Max where the regime limits storage (GDPR 5(1)(e)). Zero means no bound.
// The profiles fill it (docs/compliance/*.md); the zero value allows any
// retention and requires no deletion.
type RetentionPolicy struct {
	Name string        // the profile, such as "GDPR" ("" for none)
	Min  time.Duration // deleting anything younger is refused
	Max  time.Duration // anything older is overdue for deletion
}

// ErrRetentionTooShort is matched by the error of a deletion that the
// policy's minimum forbids: the configured retention is shorter than it.
var ErrRetentionTooShort = errors.New("compliance: retention shorter than the profile's minimum")

// ErrNoRetention is matched when a deletion is asked of a log with no
// retention period configured.
var ErrNoRetention = errors.New("compliance: no retention period configured")

// Check returns an error when retention (the configured period) breaks the
// policy: shorter than Min, or longer than Max (which would keep records
// past the date they must be gone).
func (p RetentionPolicy) Check(retention time.Duration) error {
	switch {
	case retention <= 0:
		return fmt.Errorf("%w: give audit.WithRetention(d)", ErrNoRetention)
	case p.Min > 0 && retention < p.Min:
		return fmt.Errorf("%w: %s requires at least %s, the log is configured for %s; use audit.WithRetention(%s) or longer", ErrRetentionTooShort, p.label(), p.Min, retention, p.Min)
	case p.Max > 0 && retention > p.Max:
		return fmt.Errorf("compliance: retention %s is longer than %s's maximum %s; use audit.WithRetention(%s) or shorter", retention, p.label(), p.Max, p.Max)
	}
	return nil
}

func (p RetentionPolicy) label() string {
	if p.Name == "" {
		return "the policy"
	}
	return "the " + p.Name + " profile"
}

// Hold is a legal hold: while it is in force, no segment holding an event
// whose time lies in [From, To] is deleted (a zero bound is open: a hold
// with both zero covers the whole log). SOX 18 U.S.C. §1519 is why it
// exists: a record relevant to an investigation must not be destroyed.
type Hold struct {
	ID     string
	Reason string
	Set    time.Time // when it was placed
	From   time.Time
	To     time.Time
}

// Covers reports whether h covers a segment whose events lie in
// [minTime, maxTime] (unix ns).
func (h Hold) Covers(minTime, maxTime int64) bool {
	if !h.From.IsZero() && maxTime < h.From.UnixNano() {
		return false
	}
	if !h.To.IsZero() && minTime > h.To.UnixNano() {
		return false
	}
	return true
}

// Blocker says why a segment is kept.
type Blocker string

// Why a sealed segment is not deleted (the first reason that applies).
const (
	KeptYoung     Blocker = "young"     // an event in it, or its writing, is within the retention period
	KeptHold      Blocker = "hold"      // a legal hold covers it
	KeptUnshipped Blocker = "unshipped" // fewer than the quorum of shipping backends hold it
	KeptUnsigned  Blocker = "unsigned"  // no signed checkpoint covers it yet: its deletion could not be proven
	KeptAfter     Blocker = "after"     // an older segment is kept, and only a prefix is ever deleted
)

// SegmentDecision is what the plan decided for one sealed segment.
type SegmentDecision struct {
	Segment wal.SealedSegment
	Delete  bool
	Kept    Blocker // why it is kept ("" when deleted)
	HoldID  string  // the hold that keeps it (Kept == KeptHold)
}

// RetentionPlan is what a retention run deletes and keeps.
type RetentionPlan struct {
	Cutoff    time.Time // records written and timed before it are past retention
	Decisions []SegmentDecision
	// Delete is how many segments (a prefix of Decisions) are deleted, and
	// Records how many records they hold: the first Records records of the
	// log are pruned after the run (PrunedTo is their last sequence number).
	Delete   int
	Records  uint64
	PrunedTo uint64
	// Overdue reports whether the log holds a segment older than the
	// policy's maximum (GDPR 5(1)(e)) that no legal hold covers: its
	// deletion is required (before this run, or it is kept for another
	// reason).
	Overdue bool
	// OverdueBy names what keeps the first overdue segment ("": nothing,
	// this run deletes it).
	OverdueBy Blocker
}

// PlanInput is what Plan decides from.
type PlanInput struct {
	Segments  []wal.SealedSegment // oldest first, as wal.Reader.SealedSegments gives them
	Now       time.Time
	Retention time.Duration // the configured period (audit.WithRetention)
	Policy    RetentionPolicy
	Holds     []Hold
	// Held reports whether a segment is held by the required quorum of
	// shipping backends; nil when shipping is not configured (no
	// condition).
	Held func(wal.SealedSegment) bool
	// Signed is how many records (from record 1) signed checkpoints
	// cover: a segment with later records is kept, since the retention
	// checkpoint must be provably consistent with what was signed.
	Signed uint64
}

// Plan decides which sealed segments a retention run deletes: a segment is
// deleted only when every event in it is older than the retention period
// and every record in it was written before then, no legal hold covers it,
// it is held by the shipping quorum (when shipping is configured), a
// signed checkpoint covers it, and
// every older segment is deleted too (the log only ever loses a prefix).
// It refuses to plan when the configured retention breaks the policy's
// minimum (ErrRetentionTooShort) or is not set (ErrNoRetention).
func Plan(in PlanInput) (*RetentionPlan, error) {
	if in.Retention <= 0 {
		return nil, fmt.Errorf("%w: give audit.WithRetention(d) (or --retention)", ErrNoRetention)
	}
	if in.Policy.Min > 0 && in.Retention < in.Policy.Min {
		return nil, in.Policy.Check(in.Retention)
	}
	p := &RetentionPlan{Cutoff: in.Now.Add(-in.Retention)}
	cut := p.Cutoff.UnixNano()
	var maxCut int64
	if in.Policy.Max > 0 {
		maxCut = in.Now.Add(-in.Policy.Max).UnixNano()
	}
	prefix := true
	for _, s := range in.Segments {
		d := SegmentDecision{Segment: s}
		switch {
		case (s.Events && s.MaxTime >= cut) || !s.WrittenBefore.Before(p.Cutoff):
			d.Kept = KeptYoung
		default:
			for _, h := range in.Holds {
				if h.Covers(s.MinTime, s.MaxTime) || !s.Events {
					d.Kept, d.HoldID = KeptHold, h.ID
					break
				}
			}
			if d.Kept == "" && in.Held != nil && !in.Held(s) {
				d.Kept = KeptUnshipped
			}
			if d.Kept == "" && s.LastSeq > in.Signed {
				d.Kept = KeptUnsigned
			}
		}
		if d.Kept == "" && !prefix {
			d.Kept = KeptAfter
		}
		if d.Kept == "" {
			d.Delete = true
			p.Delete++
			p.Records += s.LastSeq - s.FirstSeq + 1
			p.PrunedTo = s.LastSeq
		} else {
			prefix = false
		}
		expired := maxCut != 0 && s.WrittenBefore.UnixNano() < maxCut && (!s.Events || s.MaxTime < maxCut)
		if expired && d.Kept != KeptHold && !p.Overdue {
			p.Overdue, p.OverdueBy = true, d.Kept
		}
		p.Decisions = append(p.Decisions, d)
	}
	return p, nil
}
