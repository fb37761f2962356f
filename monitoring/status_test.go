package monitoring

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

// TestIntegrityScore: each condition docs/monitoring.md names lowers the
// score by the stated amount.
func TestIntegrityScore(t *testing.T) {
	ok := Status{State: StateOK, Now: t0, Opened: t0.Add(-time.Hour), Signed: true, Checkpoint: t0.Add(-time.Minute), CheckpointEvery: time.Minute}
	stale := ok
	stale.Checkpoint = t0.Add(-2*time.Minute - time.Second)
	none := ok
	none.Checkpoint = time.Time{}
	fresh := none
	fresh.Opened = t0.Add(-time.Minute)
	unsigned := stale
	unsigned.Signed = false
	mirrorDown := ok
	mirrorDown.Mirrors = []MirrorStatus{{Dir: "/a", Up: true}, {Dir: "/b"}, {Dir: "/c"}}
	failed := ok
	failed.State = StateFailOpen
	for _, c := range []struct {
		name      string
		st        Status
		corrupted bool
		want      float64
	}{
		{"healthy", ok, false, 100},
		{"checkpoint older than 2x", stale, false, 75},
		{"no checkpoint 1h after open", none, false, 75},
		{"no checkpoint yet, opened 1m ago", fresh, false, 100},
		{"unsigned", unsigned, false, 100},
		{"corrupted", ok, true, 50},
		{"two mirrors down", mirrorDown, false, 75},
		{"all three", func() Status { s := stale; s.Mirrors = mirrorDown.Mirrors; return s }(), true, 0},
		{"failed", failed, false, 0},
	} {
		if got := IntegrityScore(c.st, c.corrupted); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestRecoveryRate: the share of copies whole and in step, as
// docs/monitoring.md defines it.
func TestRecoveryRate(t *testing.T) {
	mirrors := func(up ...bool) []MirrorStatus {
		var ms []MirrorStatus
		for _, u := range up {
			ms = append(ms, MirrorStatus{Dir: "/m", Up: u})
		}
		return ms
	}
	for _, c := range []struct {
		name string
		st   Status
		want float64
	}{
		{"primary alone", Status{State: StateOK}, 1},
		{"every mirror up", Status{State: StateOK, Mirrors: mirrors(true, true)}, 1},
		{"one of two mirrors lost", Status{State: StateOK, Mirrors: mirrors(true, false)}, 2.0 / 3},
		{"failed log, mirrors up", Status{State: StateFailed, Mirrors: mirrors(true)}, 0.5},
		{"fail-open log, alone", Status{State: StateFailOpen}, 0},
		{"closed", Status{State: StateClosed, Mirrors: mirrors(true)}, 1},
	} {
		if got := RecoveryRate(c.st); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestReady: each readiness check fails for its condition, says why, and
// is skipped when its input is unknown.
func TestReady(t *testing.T) {
	base := Status{State: StateOK, Now: t0, DiskFree: 0.5, Tracked: true, LastCommit: t0.Add(-time.Hour)}
	if r := Ready(base, HandlerOptions{}); r.Status != "ok" {
		t.Fatalf("idle sink with an hour-old commit: %+v", r)
	}
	stuck := base
	stuck.InFlight = 3
	if r := Ready(stuck, HandlerOptions{}); r.Status != "fail" || !strings.Contains(r.Checks[2].Detail, "3 writes waiting") {
		t.Fatalf("stuck commit: %+v", r)
	}
	low := base
	low.DiskFree = 0.04
	if r := Ready(low, HandlerOptions{}); r.Status != "fail" || !strings.Contains(r.Checks[1].Detail, "4.0 %") {
		t.Fatalf("4%% free: %+v", r)
	}
	if r := Ready(low, HandlerOptions{MinDiskFree: -1}); r.Status != "ok" {
		t.Fatalf("4%% free, check off: %+v", r)
	}
	unknown := low
	unknown.DiskErr = errors.New("in memory")
	if r := Ready(unknown, HandlerOptions{}); r.Status != "ok" || !strings.Contains(r.Checks[1].Detail, "unknown") {
		t.Fatalf("unknown free space: %+v", r)
	}
	noQuorum := base
	noQuorum.HasQuorum = true
	if r := Ready(noQuorum, HandlerOptions{}); r.Status != "fail" || r.Checks[3].Name != "backend_quorum" {
		t.Fatalf("no quorum: %+v", r)
	}
	if r := Live(noQuorum); r.Status != "ok" {
		t.Fatalf("liveness without quorum: %+v", r)
	}
}
