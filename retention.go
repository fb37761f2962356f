package audit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/willibrandon/mtlog-audit/compliance"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/ledger"
	"github.com/willibrandon/mtlog-audit/replica"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// WithRetention sets how long events are kept (HIPAA 164.316(b)(2), PCI DSS
// 10.5.1, SOX, GDPR 5(1)(e), NIST SP 800-53 AU-11): Sink.ApplyRetention
// deletes the oldest sealed segments once every event in them, and their
// writing, is older than d, unless a legal hold covers them or (with
// WithShipping) fewer than the quorum of backends hold them. Nothing is
// ever deleted without a call to ApplyRetention (or `mtlog-audit retention
// apply`). New refuses a d that is not positive. See docs/retention.md.
func WithRetention(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.optionError("WithRetention(%s): give a positive period, such as 365*24*time.Hour", d)
			return
		}
		c.retention = d
	}
}

// WithRetentionPolicy bounds WithRetention: ApplyRetention refuses to
// delete anything when the configured retention is shorter than p.Min
// (compliance.ErrRetentionTooShort), and reports data older than p.Max as
// overdue. Compliance profiles set it; call it directly for a policy of
// your own.
func WithRetentionPolicy(p compliance.RetentionPolicy) Option {
	return func(c *config) { c.retentionPolicy = p }
}

// RetentionSegment is one sealed segment in a RetentionReport.
type RetentionSegment struct {
	Segment  uint64             `json:"segment"`
	FirstSeq uint64             `json:"first_seq"`
	LastSeq  uint64             `json:"last_seq"`
	Bytes    int64              `json:"bytes"`
	Deleted  bool               `json:"deleted"`           // deleted by this run (or would be, in a dry run)
	Kept     compliance.Blocker `json:"kept,omitempty"`    // why it is kept ("" when deleted)
	HoldID   string             `json:"hold_id,omitempty"` // the legal hold that keeps it
}

// RetentionReport is what a retention run found and did.
type RetentionReport struct {
	DryRun bool
	Policy string    // the policy text recorded in the retention checkpoint
	Cutoff time.Time // records before it are past retention
	// Segments lists every sealed segment, oldest first (the last segment,
	// being written, is never deleted).
	Segments []RetentionSegment
	// Deleted and Records count the segments and records deleted (or, in a
	// dry run, that would be); PrunedTo is the last deleted sequence number.
	Deleted  int
	Records  uint64
	PrunedTo uint64
	// Pruned is how many records were deleted under retention before this
	// run (from the log's retention checkpoint).
	Pruned uint64
	// Overdue reports data older than the policy's maximum that no legal
	// hold covers (GDPR 5(1)(e)): after a run that is not a dry run it
	// means something kept it (see Segments). `retention status` exits
	// non-zero then.
	Overdue bool
	// Event is the lifecycle event that records the deletion (zero when
	// nothing was deleted).
	Event Receipt
}

// ErrRetentionRefused is matched by ApplyRetention's error when the
// deletion is refused: no signing key, forward security, a log that fails
// verification, or records not yet covered by a signed checkpoint.
var ErrRetentionRefused = errors.New("audit: retention refused")

// ApplyRetention deletes the sealed segments that WithRetention lets go
// (see compliance.Plan for the rules), or with dryRun only reports what it
// would delete. Before anything is deleted, it
//
//  1. verifies the whole log with the signing key's public key (a log that
//     fails verification loses nothing);
//  2. appends a LifecycleRetention event describing the deletion
//     (properties Segments, Records, FirstSeq, LastSeq, FirstSegment,
//     LastSegment, Policy, Cutoff);
//  3. stores a retention checkpoint signed by the log's key: the size, root
//     and compact range of the pruned prefix (integrity.RetentionCheckpoint),
//     and the legal holds in force;
//
// and only then removes the segment files, oldest first. A crash at any
// point leaves a log that opens and verifies: the next run finishes the
// removal. It needs WithSigningKey (without forward security) and
// WithRetention; it refuses a retention shorter than the policy's minimum
// (compliance.ErrRetentionTooShort).
func (s *Sink) ApplyRetention(ctx context.Context, dryRun bool) (*RetentionReport, error) {
	s.retMu.Lock()
	defer s.retMu.Unlock()
	if s.closed.Load() {
		return nil, ErrSinkClosed
	}
	rc, err := s.retentionCheckpoint()
	if err != nil {
		return nil, err
	}
	holds, err := s.holds(ctx, rc)
	if err != nil {
		return nil, err
	}
	rep, plan, err := planRetention(ctx, s.cfg.fs, s.w.Dir(), s.cfg.now()(), s.cfg.retention, s.cfg.retentionPolicy, holds, s.shipHeld(), rc)
	if errors.Is(err, compliance.ErrRetentionTooShort) && !dryRun {
		// A deletion the policy forbids is itself an audit event (the
		// research's §8: a Delete before expiry errs and is recorded).
		_, lerr := s.appendLifecycle(ctx, LifecycleRetentionRefused, "Retention deletion refused: {Reason}",
			map[string]any{"Reason": err.Error(), "Policy": s.cfg.retentionPolicy.Name, "Retention": compliance.Period(s.cfg.retention)})
		return rep, errors.Join(err, lerr)
	}
	if err != nil || dryRun {
		return rep, err
	}
	rep.DryRun = false
	rep.Overdue = plan.Overdue && plan.OverdueBy != ""
	if plan.Delete == 0 {
		return rep, s.finishRemoval(rc)
	}
	if err := s.retentionAllowed(); err != nil {
		return rep, err
	}
	if vr, err := s.VerifyIntegrity(); err != nil || !vr.OK {
		return rep, fmt.Errorf("%w: the log does not verify, so nothing is deleted: %w", ErrRetentionRefused, err)
	}
	first, last := plan.Decisions[0].Segment, plan.Decisions[plan.Delete-1].Segment
	props := map[string]any{
		"Segments": plan.Delete, "Records": plan.Records, "FirstSeq": first.FirstSeq, "LastSeq": last.LastSeq,
		"FirstSegment": first.Number, "LastSegment": last.Number, "Policy": rep.Policy, "Cutoff": plan.Cutoff.UTC().Format(time.RFC3339Nano),
	}
	if rep.Event, err = s.appendLifecycle(ctx, LifecycleRetention, "Retention deletes {Segments} segments, records {FirstSeq} to {LastSeq}, under {Policy}", props); err != nil {
		return rep, err
	}
	rholds := make([]integrity.RetentionHold, 0, len(holds))
	for _, h := range holds {
		rholds = append(rholds, integrity.RetentionHold{ID: h.ID, Reason: h.Reason, Set: h.Set, From: h.From, To: h.To})
	}
	signed, err := s.led.SignRetention(plan.PrunedTo, s.cfg.now()(), rep.Policy, rholds)
	if err != nil {
		return rep, fmt.Errorf("%w: %w", ErrRetentionRefused, err)
	}
	if err := integrity.WriteRetention(s.cfg.fs, s.w.Dir(), signed); err != nil {
		return rep, fmt.Errorf("audit: store the retention checkpoint: %w", err)
	}
	if _, err := wal.RemoveSegments(s.cfg.fs, s.w.Dir(), last.Number); err != nil {
		return rep, fmt.Errorf("audit: retention: %w (the retention checkpoint is stored: the next run finishes the removal)", err)
	}
	return rep, nil
}

// RetentionStatus is ApplyRetention(ctx, true): what a run would delete,
// and whether data is overdue.
func (s *Sink) RetentionStatus(ctx context.Context) (*RetentionReport, error) {
	return s.ApplyRetention(ctx, true)
}

// retentionCheckpoint reads the log's retention checkpoint (nil: none), as
// ledger.Open checked it.
func (s *Sink) retentionCheckpoint() (*integrity.RetentionCheckpoint, error) {
	return readRetention(s.cfg.fs, s.w.Dir())
}

// readRetention reads the retention checkpoint of the log in dir without
// checking its signature (nil: none).
func readRetention(fsys vfs.FS, dir string) (*integrity.RetentionCheckpoint, error) {
	raw, ok, err := integrity.ReadRetention(fsys, dir)
	if err != nil || !ok {
		return nil, err
	}
	rc, err := integrity.ParseStoredRetention(raw)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return &rc, nil
}

// finishRemoval removes the segments a stored retention checkpoint covers
// that a crash left behind.
func (s *Sink) finishRemoval(rc *integrity.RetentionCheckpoint) error {
	if rc == nil {
		return nil
	}
	segs, err := s.w.Reader().SealedSegments(context.Background())
	if err != nil {
		return err
	}
	var upTo uint64
	for _, sg := range segs {
		if sg.LastSeq <= rc.Size {
			upTo = sg.Number
		}
	}
	if upTo == 0 {
		return nil
	}
	_, err = wal.RemoveSegments(s.cfg.fs, s.w.Dir(), upTo)
	return err
}

// retentionAllowed refuses a deletion the log cannot prove afterwards.
func (s *Sink) retentionAllowed() error {
	switch {
	case s.cfg.ledger.SigningKey == "":
		return fmt.Errorf("%w: the log is not signed; deleting records needs audit.WithSigningKey, so that the retention checkpoint proves what was deleted", ErrRetentionRefused)
	case s.cfg.ledger.EpochEvery > 0:
		return fmt.Errorf("%w: retention is not supported with forward security (WithForwardSecurity) yet", ErrRetentionRefused)
	}
	return nil
}

// signedSize returns the tree size of the newest stored checkpoint of the
// log in dir (0: none): how many records signatures cover.
func signedSize(fsys vfs.FS, dir string) uint64 {
	cps, err := integrity.ReadCheckpointLog(fsys, filepath.Join(dir, integrity.CheckpointsFile))
	if err != nil || len(cps) == 0 {
		return 0
	}
	cp, err := ledger.ParseStored(cps[len(cps)-1])
	if err != nil {
		return 0
	}
	return cp.Size
}

// shipHeld returns the plan's shipping condition: with WithShipping, its
// quorum; without, when the log has a shipping cursor all the same (it was
// shipped by another process), every backend the cursor names; else none.
func (s *Sink) shipHeld() func(wal.SealedSegment) bool {
	if s.cfg.ship != nil {
		return cursorHeld(s.cfg.fs, s.w.Dir(), s.cfg.ship.quorum)
	}
	return cursorAll(s.cfg.fs, s.w.Dir())
}

// cursorAll is cursorHeld with every backend of the log's shipping cursor,
// or nil when it has none.
func cursorAll(fsys vfs.FS, dir string) func(wal.SealedSegment) bool {
	if _, err := fsys.Stat(filepath.Join(dir, replica.CursorFile)); err != nil {
		return nil
	}
	c, err := replica.ReadCursor(fsys, dir)
	n := 1
	if err == nil {
		n = max(n, len(c.Backends))
	}
	return cursorHeld(fsys, dir, n)
}

// RetentionConfig is what RetentionStatusOf plans with.
type RetentionConfig struct {
	Retention time.Duration
	Policy    compliance.RetentionPolicy
	Now       time.Time // zero: time.Now()
}

// RetentionStatusOf is Sink.RetentionStatus for the log in dir, without
// opening it for writing: what a retention run would delete now and
// whether data is overdue. When the log has a shipping cursor, every
// backend it names must hold a segment for it to go.
func RetentionStatusOf(ctx context.Context, fsys vfs.FS, dir string, cfg RetentionConfig) (*RetentionReport, error) {
	if cfg.Now.IsZero() {
		cfg.Now = time.Now()
	}
	rc, err := readRetention(fsys, dir)
	if err != nil {
		return nil, err
	}
	holds, err := foldHolds(ctx, wal.NewReader(fsys, dir), rc)
	if err != nil {
		return nil, err
	}
	rep, _, err := planRetention(ctx, fsys, dir, cfg.Now, cfg.Retention, cfg.Policy, holds, cursorAll(fsys, dir), rc)
	return rep, err
}

// cursorHeld reports a segment held when at least quorum backends of the
// shipping cursor hold it through its seal.
func cursorHeld(fsys vfs.FS, dir string, quorum int) func(wal.SealedSegment) bool {
	c, err := replica.ReadCursor(fsys, dir)
	return func(sg wal.SealedSegment) bool {
		if err != nil {
			return false
		}
		n := 0
		for _, bc := range c.Backends {
			if bc.Segment > sg.Number || (bc.Segment == sg.Number && bc.SegmentLast >= sg.LastSeq) {
				n++
			}
		}
		return n >= quorum
	}
}

// planRetention lists the sealed segments and plans the run.
func planRetention(ctx context.Context, fsys vfs.FS, dir string, now time.Time, retention time.Duration, policy compliance.RetentionPolicy, holds []compliance.Hold, held func(wal.SealedSegment) bool, rc *integrity.RetentionCheckpoint) (*RetentionReport, *compliance.RetentionPlan, error) {
	segs, err := wal.NewReader(fsys, dir).SealedSegments(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: retention: %w", err)
	}
	rep := &RetentionReport{DryRun: true, Policy: policyText(retention, policy)}
	if rc != nil {
		rep.Pruned = rc.Size
		live := segs[:0]
		for _, sg := range segs {
			if sg.LastSeq > rc.Size { // the others a crash left behind
				live = append(live, sg)
			}
		}
		segs = live
	}
	plan, err := compliance.Plan(compliance.PlanInput{Segments: segs, Now: now, Retention: retention, Policy: policy, Holds: holds, Held: held, Signed: signedSize(fsys, dir)})
	if err != nil {
		return rep, nil, fmt.Errorf("%w: %w", ErrRetentionRefused, err)
	}
	rep.Cutoff, rep.Deleted, rep.Records, rep.PrunedTo, rep.Overdue = plan.Cutoff, plan.Delete, plan.Records, plan.PrunedTo, plan.Overdue
	for _, d := range plan.Decisions {
		rep.Segments = append(rep.Segments, RetentionSegment{Segment: d.Segment.Number, FirstSeq: d.Segment.FirstSeq, LastSeq: d.Segment.LastSeq, Bytes: d.Segment.Size, Deleted: d.Delete, Kept: d.Kept, HoldID: d.HoldID})
	}
	return rep, plan, nil
}

func policyText(retention time.Duration, p compliance.RetentionPolicy) string {
	t := "retention " + retention.String()
	if p.Name != "" {
		t = p.Name + " " + t
	}
	return t
}
