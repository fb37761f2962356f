package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/compliance"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// retClock is a test clock that only moves when told.
type retClock struct{ ns atomic.Int64 }

func newRetClock(t time.Time) *retClock { c := &retClock{}; c.ns.Store(t.UnixNano()); return c }
func (c *retClock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *retClock) add(d time.Duration) { c.ns.Add(int64(d)) }

var retStart = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// retLog is a signed log of small segments whose events are timed by clk.
type retLog struct {
	dir, skey, vkey string
	clk             *retClock
	fs              vfs.FS
}

func newRetLog(t *testing.T, fsys vfs.FS) *retLog {
	t.Helper()
	skey, vkey, err := integrity.GenerateKey("retention-test")
	if err != nil {
		t.Fatal(err)
	}
	if fsys == nil {
		fsys = vfs.OS()
	}
	return &retLog{dir: filepath.Join(t.TempDir(), "wal"), skey: skey, vkey: vkey, clk: newRetClock(retStart), fs: fsys}
}

func (l *retLog) open(t *testing.T, extra ...audit.Option) *audit.Sink {
	t.Helper()
	opts := append([]audit.Option{
		audit.WithWAL(l.dir, audit.WithSegmentSize(4096)), audit.WithFileSystem(l.fs), audit.WithSigningKey(l.skey),
		audit.WithClock(l.clk.now), audit.WithRetention(365 * 24 * time.Hour),
	}, extra...)
	s, err := audit.New(opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// write appends n events, one a day of the test clock.
func (l *retLog) write(t *testing.T, s *audit.Sink, n int) {
	t.Helper()
	for i := range n {
		l.clk.add(24 * time.Hour)
		ev := &audit.Event{Timestamp: l.clk.now(), Level: audit.LevelInformation, MessageTemplate: "Event {N} {Pad}",
			Properties: map[string]any{"N": i, "Pad": strings.Repeat("x", 300)}}
		if _, err := s.Write(context.Background(), ev); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
}

func (l *retLog) verify(t *testing.T) (*audit.IntegrityReport, error) {
	t.Helper()
	return audit.VerifyFS(context.Background(), l.fs, l.dir, audit.WithTrustedKeys(l.vkey))
}

// prunedLog writes two years of events, then applies retention.
func prunedLog(t *testing.T) (*retLog, *audit.RetentionReport) {
	t.Helper()
	l := newRetLog(t, nil)
	s := l.open(t)
	l.write(t, s, 730)
	rep, err := s.ApplyRetention(context.Background(), false)
	if err != nil {
		t.Fatalf("ApplyRetention: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if rep.Deleted == 0 || rep.PrunedTo == 0 {
		t.Fatalf("nothing deleted: %+v", rep)
	}
	return l, rep
}

// TestRetentionDeletesOldSegmentsAndVerifies: only whole sealed segments
// past retention go; Verify reports the pruned prefix and verifies the
// rest; the log reopens; proofs for retained records still work.
func TestRetentionDeletesOldSegmentsAndVerifies(t *testing.T) {
	l, rep := prunedLog(t)
	if _, err := os.Stat(filepath.Join(l.dir, "00000000000000000001.wal")); !os.IsNotExist(err) {
		t.Fatalf("segment 1 still there: %v", err)
	}
	for _, sg := range rep.Segments {
		if sg.Deleted && sg.LastSeq > rep.PrunedTo {
			t.Fatalf("segment %d deleted past the pruned prefix %d", sg.Segment, rep.PrunedTo)
		}
	}
	vr, err := l.verify(t)
	if err != nil || !vr.OK {
		t.Fatalf("verify after retention: %v %+v", err, vr)
	}
	if vr.Retention == nil || vr.Retention.Size != rep.PrunedTo || vr.Retention.Policy != "retention 8760h0m0s" {
		t.Fatalf("verify does not report the pruned prefix: %+v", vr.Retention)
	}
	if vr.FirstSeq != rep.PrunedTo+1 {
		t.Fatalf("first retained record %d, want %d", vr.FirstSeq, rep.PrunedTo+1)
	}
	// Every remaining event is younger than retention (by the test clock
	// at the run), except those in the segment that straddles the cutoff.
	s := l.open(t)
	defer s.Close()
	l.write(t, s, 3)
	// An inclusion proof of a retained record verifies with the key.
	b, err := audit.ProveInclusion(context.Background(), l.fs, l.dir, rep.PrunedTo+1, nil)
	if err != nil {
		t.Fatalf("prove a retained record: %v", err)
	}
	data, _ := json.Marshal(b)
	if err := audit.VerifyProof(data, l.vkey); err != nil {
		t.Fatalf("proof of a retained record: %v", err)
	}
	// The deletion is an audit event.
	var found bool
	for ev, err := range audit.ReplayFS(context.Background(), l.fs, l.dir, time.Time{}, time.Time{}) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Properties[audit.LifecycleProperty] == audit.LifecycleRetention {
			found = fmt.Sprint(ev.Properties["LastSeq"]) == fmt.Sprint(rep.PrunedTo)
		}
	}
	if !found {
		t.Fatal("no retention-delete lifecycle event for the deletion")
	}
}

// TestRetentionPrefixDeletedWithoutCheckpointIsTampering: removing the
// oldest segment by hand is detected by Verify and refused by New.
func TestRetentionPrefixDeletedWithoutCheckpointIsTampering(t *testing.T) {
	l := newRetLog(t, nil)
	s := l.open(t)
	l.write(t, s, 100)
	s.Close()
	if err := os.Remove(filepath.Join(l.dir, "00000000000000000001.wal")); err != nil {
		t.Fatal(err)
	}
	vr, err := l.verify(t)
	if err == nil || vr.Problem == nil || vr.Problem.Code != integrity.CodeRetention {
		t.Fatalf("verify: %v %+v", err, vr)
	}
	if _, err := audit.New(audit.WithWAL(l.dir), audit.WithSigningKey(l.skey)); !errors.Is(err, audit.ErrIntegrity) {
		t.Fatalf("New on a log missing its first segment: %v", err)
	}
}

// TestRetentionForgedCheckpoint: a retention checkpoint that is unsigned,
// signed by another key, or whose root is not the records' is tampering.
func TestRetentionForgedCheckpoint(t *testing.T) {
	l, _ := prunedLog(t)
	path := filepath.Join(l.dir, integrity.RetentionFile)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := integrity.ParseStoredRetention(good)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _, _ := integrity.GenerateKey("retention-test")
	other, _ := integrity.NewSigner(otherKey)
	signer, _ := integrity.NewSigner(l.skey)
	wrongRoot := rc
	wrongRoot.Edge = append([]integrity.Hash(nil), rc.Edge...)
	wrongRoot.Edge[0][0] ^= 1
	wrongRoot.Root = integrity.RootOfEdge(wrongRoot.Edge)
	cases := map[string]func() []byte{
		"unsigned": func() []byte { return []byte(rc.Body() + "\n") },
		"wrong key": func() []byte {
			b, err := integrity.SignRetention(rc, other)
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		"wrong root (re-signed by the log's key)": func() []byte {
			b, err := integrity.SignRetention(wrongRoot, signer)
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		"removed": func() []byte { return nil },
	}
	for name, forge := range cases {
		t.Run(name, func(t *testing.T) {
			b := forge()
			if b == nil {
				os.Remove(path)
			} else if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(path, good, 0o644)
			vr, err := l.verify(t)
			if err == nil || vr.OK {
				t.Fatalf("verify accepted a forged retention checkpoint: %+v", vr)
			}
			if _, err := audit.New(audit.WithWAL(l.dir), audit.WithSigningKey(l.skey)); err == nil && name != "wrong root (re-signed by the log's key)" {
				t.Fatal("New accepted a forged retention checkpoint")
			}
		})
	}
	if vr, err := l.verify(t); err != nil || !vr.OK {
		t.Fatalf("restored: %v", err)
	}
}

// TestRetentionCheckpointClaimingMoreThanDeleted: deleting one more
// segment than the retention checkpoint covers is tampering.
func TestRetentionCheckpointClaimingMoreThanDeleted(t *testing.T) {
	l, _ := prunedLog(t)
	names, _ := filepath.Glob(filepath.Join(l.dir, "*.wal"))
	if err := os.Remove(names[0]); err != nil {
		t.Fatal(err)
	}
	vr, err := l.verify(t)
	if err == nil || vr.Problem == nil || vr.Problem.Code != integrity.CodeRetention {
		t.Fatalf("verify: %v %+v", err, vr)
	}
	if _, err := audit.New(audit.WithWAL(l.dir), audit.WithSigningKey(l.skey)); !errors.Is(err, audit.ErrIntegrity) {
		t.Fatalf("New: %v", err)
	}
}

// TestRetentionLegalHoldKeepsSegments: a hold covering old events keeps
// their segments (and every later one); clearing it lets them go; both
// are lifecycle events, and the hold survives in the log only.
func TestRetentionLegalHoldKeepsSegments(t *testing.T) {
	l := newRetLog(t, nil)
	s := l.open(t)
	defer s.Close()
	ctx := context.Background()
	l.write(t, s, 200)
	if _, err := s.SetHold(ctx, "CASE-7", "litigation hold, matter 7", retStart, retStart.Add(30*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetHold(ctx, "CASE-7", "again", time.Time{}, time.Time{}); !errors.Is(err, audit.ErrHold) {
		t.Fatalf("second SetHold of the same ID: %v", err)
	}
	l.write(t, s, 530)
	rep, err := s.ApplyRetention(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 0 || len(rep.Segments) == 0 || rep.Segments[0].Kept != compliance.KeptHold || rep.Segments[0].HoldID != "CASE-7" {
		t.Fatalf("held segments deleted or not reported: %+v", rep)
	}
	holds, err := audit.Holds(ctx, l.fs, l.dir)
	if err != nil || len(holds) != 1 || holds[0].Reason != "litigation hold, matter 7" {
		t.Fatalf("Holds: %v %+v", err, holds)
	}
	if _, err := s.ClearHold(ctx, "CASE-7", "matter closed"); err != nil {
		t.Fatal(err)
	}
	if rep, err = s.ApplyRetention(ctx, false); err != nil || rep.Deleted == 0 {
		t.Fatalf("after clearing the hold: %v %+v", err, rep)
	}
}

// TestRetentionHoldEventTamperedRefuses: the hold lives in the log; editing
// the hold's record to lift it breaks verification, and retention then
// deletes nothing.
func TestRetentionHoldEventTamperedRefuses(t *testing.T) {
	l := newRetLog(t, nil)
	s := l.open(t)
	ctx := context.Background()
	l.write(t, s, 10)
	r, err := s.SetHold(ctx, "CASE-9", "hold", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	l.write(t, s, 720)
	s.Close()
	// Flip one byte of the sealed segment that holds the hold event.
	seg := segmentOf(t, l, r.Seq)
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s = l.open(t)
	defer s.Close()
	rep, err := s.ApplyRetention(ctx, false)
	if err == nil && rep.Deleted > 0 {
		t.Fatalf("retention deleted %d segments of a log whose hold record was edited", rep.Deleted)
	}
	if _, err := os.Stat(filepath.Join(l.dir, "00000000000000000001.wal")); err != nil {
		t.Fatalf("segment 1 gone: %v", err)
	}
}

// segmentOf returns the segment file holding sequence number seq.
func segmentOf(t *testing.T, l *retLog, seq uint64) string {
	t.Helper()
	s := l.open(t)
	rep, err := s.RetentionStatus(context.Background())
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, sg := range rep.Segments {
		if sg.FirstSeq <= seq && seq <= sg.LastSeq {
			return filepath.Join(l.dir, fmt.Sprintf("%020d.wal", sg.Segment))
		}
	}
	t.Fatalf("no sealed segment holds %d", seq)
	return ""
}

// TestRetentionBelowProfileMinimumRefused: deletion before the profile's
// minimum is refused with an error, and nothing is deleted.
func TestRetentionBelowProfileMinimumRefused(t *testing.T) {
	l := newRetLog(t, nil)
	s := l.open(t, audit.WithRetentionPolicy(compliance.RetentionPolicy{Name: "SOX", Min: 7 * 365 * 24 * time.Hour}))
	defer s.Close()
	l.write(t, s, 730)
	_, err := s.ApplyRetention(context.Background(), false)
	if !errors.Is(err, compliance.ErrRetentionTooShort) {
		t.Fatalf("ApplyRetention under a 7-year minimum with 1-year retention: %v", err)
	}
	if _, err := os.Stat(filepath.Join(l.dir, "00000000000000000001.wal")); err != nil {
		t.Fatalf("segment 1 gone: %v", err)
	}
	// The refused deletion is recorded in the log.
	var refused int
	for ev, err := range s.Replay(context.Background(), time.Time{}, time.Time{}) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Properties[audit.LifecycleProperty] == audit.LifecycleRetentionRefused {
			refused++
		}
	}
	if refused != 1 {
		t.Fatalf("%d retention-refused events in the log, want 1", refused)
	}
}

// TestRetentionOverdueUnderMaximum: data older than GDPR's maximum is
// reported overdue until retention is applied.
func TestRetentionOverdueUnderMaximum(t *testing.T) {
	l := newRetLog(t, nil)
	s := l.open(t, audit.WithRetentionPolicy(compliance.RetentionPolicy{Name: "GDPR", Max: 365 * 24 * time.Hour}))
	defer s.Close()
	l.write(t, s, 730)
	rep, err := s.RetentionStatus(context.Background())
	if err != nil || !rep.Overdue {
		t.Fatalf("status of a log holding 2 years under a 1-year maximum: %v overdue=%v", err, rep != nil && rep.Overdue)
	}
	if rep, err = s.ApplyRetention(context.Background(), false); err != nil || rep.Overdue {
		t.Fatalf("apply: %v %+v", err, rep)
	}
	if rep, err = s.RetentionStatus(context.Background()); err != nil || rep.Overdue {
		t.Fatalf("status after apply: %v overdue=%v", err, rep.Overdue)
	}
}

// TestRetentionWaitsForShippingQuorum: a shipped log loses a segment only
// once the backends hold it (here: every backend its cursor names, as the
// CLI and a Sink without WithShipping require).
func TestRetentionWaitsForShippingQuorum(t *testing.T) {
	l := newRetLog(t, nil)
	s := l.open(t)
	l.write(t, s, 730)
	s.Close()
	cursor := func(a, b uint64) {
		t.Helper()
		c := fmt.Sprintf(`{"version":1,"backends":{"a":{"segment":%d,"segment_last":0,"checkpoints":0},"b":{"segment":%d,"segment_last":0,"checkpoints":0}}}`, a, b)
		if err := os.WriteFile(filepath.Join(l.dir, "ship.cursor"), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cursor(40, 0) // b holds nothing
	s = l.open(t)
	defer s.Close()
	rep, err := s.ApplyRetention(context.Background(), false)
	if err != nil || rep.Deleted != 0 || rep.Segments[0].Kept != compliance.KeptUnshipped {
		t.Fatalf("deleted a segment one backend lacks: %v %+v", err, rep)
	}
	cursor(3, 3) // both hold segments 1 and 2
	if rep, err = s.ApplyRetention(context.Background(), false); err != nil || rep.Deleted != 2 {
		t.Fatalf("want segments 1 and 2 deleted: %v %+v", err, rep)
	}
}
