package compliance

import (
	"errors"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/wal"
)

var day = 24 * time.Hour

// segs makes sealed segments of 10 records, segment i holding events of
// day i (from t0) and written before day i+1.
func segs(t0 time.Time, n int) []wal.SealedSegment {
	var out []wal.SealedSegment
	for i := range n {
		at := t0.Add(time.Duration(i) * day)
		out = append(out, wal.SealedSegment{Number: uint64(i + 1), FirstSeq: uint64(10*i + 1), LastSeq: uint64(10*i + 10),
			MinTime: at.UnixNano(), MaxTime: at.Add(time.Hour).UnixNano(), Events: true, WrittenBefore: at.Add(day)})
	}
	return out
}

func TestPlanDeletesOnlyAnExpiredPrefix(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	in := PlanInput{Segments: segs(t0, 10), Now: t0.Add(10 * day), Retention: 5 * day, Signed: 1000}
	p, err := Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	// Segments 1..4 were written before day 5 = now-5d; segment 5 was
	// written before day 5 too (its WrittenBefore is exactly the cutoff:
	// not before it), so it stays.
	if p.Delete != 4 || p.PrunedTo != 40 || p.Records != 40 {
		t.Fatalf("plan: %+v", p)
	}
	// A hold on day 2 keeps segment 3 and everything after it.
	in.Holds = []Hold{{ID: "H", From: t0.Add(2 * day), To: t0.Add(2*day + time.Minute)}}
	if p, _ = Plan(in); p.Delete != 2 || p.Decisions[2].Kept != KeptHold || p.Decisions[3].Kept != KeptAfter {
		t.Fatalf("with a hold: %+v", p.Decisions[:4])
	}
	// Records not yet covered by a signed checkpoint stay.
	in.Holds, in.Signed = nil, 25
	if p, _ = Plan(in); p.Delete != 2 || p.Decisions[2].Kept != KeptUnsigned {
		t.Fatalf("signed through 25: %+v", p)
	}
}

// TestPlanBackdatedEventsDoNotExpireEarly: events timed long ago but
// written recently stay for the retention period after their writing.
func TestPlanBackdatedEventsDoNotExpireEarly(t *testing.T) {
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	s := wal.SealedSegment{Number: 1, FirstSeq: 1, LastSeq: 10, MinTime: now.Add(-1000 * day).UnixNano(), MaxTime: now.Add(-900 * day).UnixNano(), Events: true, WrittenBefore: now.Add(-day)}
	p, err := Plan(PlanInput{Segments: []wal.SealedSegment{s}, Now: now, Retention: 365 * day, Signed: 10})
	if err != nil || p.Delete != 0 || p.Decisions[0].Kept != KeptYoung {
		t.Fatalf("%v %+v", err, p)
	}
}

func TestPlanRefusesRetentionBelowMinimum(t *testing.T) {
	_, err := Plan(PlanInput{Retention: day, Policy: RetentionPolicy{Name: "PCI-DSS", Min: 365 * day}})
	if !errors.Is(err, ErrRetentionTooShort) {
		t.Fatalf("%v", err)
	}
	if _, err := Plan(PlanInput{}); !errors.Is(err, ErrNoRetention) {
		t.Fatalf("%v", err)
	}
}

func TestPlanOverdueUnderMaximum(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	in := PlanInput{Segments: segs(t0, 10), Now: t0.Add(10 * day), Retention: 5 * day, Policy: RetentionPolicy{Max: 5 * day}, Signed: 1000}
	p, _ := Plan(in)
	if !p.Overdue || p.OverdueBy != "" {
		t.Fatalf("before the run: %+v", p)
	}
	// Kept by a hold: not overdue (GDPR 17(3)(e)).
	in.Holds = []Hold{{ID: "H"}}
	if p, _ = Plan(in); p.Overdue {
		t.Fatalf("held: %+v", p)
	}
	// Kept because not shipped: overdue.
	in.Holds, in.Held = nil, func(wal.SealedSegment) bool { return false }
	if p, _ = Plan(in); !p.Overdue || p.OverdueBy != KeptUnshipped {
		t.Fatalf("unshipped: %+v", p)
	}
}
