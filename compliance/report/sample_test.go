package report

import (
	"fmt"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/event"
)

// sampleNow is the fixed clock of the sample report.
var sampleNow = time.Date(2026, 4, 2, 9, 30, 0, 0, time.UTC)

// sampleReport builds the report of a fixed, synthetic quarter of a
// profile: events of several actors, actions and outcomes (some failing,
// some missing fields), the sink's own events (start, configuration, stop,
// reads, a legal hold set and cleared, a retention deletion, a fail-open
// window), reads in the access log, checkpoints with a gap, and
// verification results. Everything is deterministic.
func sampleReport(t testing.TB, profile string) *Report {
	t.Helper()
	p, err := LookupProfile(profile)
	if err != nil {
		t.Fatal(err)
	}
	period, err := ParsePeriod("2026-Q1")
	if err != nil {
		t.Fatal(err)
	}
	b := NewBuilder(Config{Profile: p, Log: "/var/lib/app/audit", Period: period, Now: sampleNow, Generator: "mtlog-audit test", Heartbeat: time.Hour, Key: "audit.pub"})
	t0 := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	lc := func(at time.Time, kind, msg string, props map[string]any) *event.Event {
		pr := map[string]any{LifecycleProperty: kind}
		for k, v := range props {
			pr[k] = v
		}
		return &event.Event{Timestamp: at, Level: event.LevelInformation, Message: msg, Properties: pr}
	}
	// Before the period: the sink starts, records its configuration and
	// a legal hold; an event outside the period.
	pre := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	b.Add(lc(pre, KindStart, "Audit log started", map[string]any{"Version": "v1.0.0"}))
	b.Add(lc(pre.Add(time.Second), KindConfig, "Configuration", map[string]any{"Profile": profile, "Encryption": "Email,Name", "Mirrors": "/mnt/mirror", "SigningKey": "audit+1a2b3c4d"}))
	b.Add(lc(pre.Add(2*time.Second), KindHoldSet, "Legal hold H-1 set: litigation 2025-17", map[string]any{"HoldID": "H-1", "Reason": "litigation 2025-17"}))
	b.Add(&event.Event{Timestamp: pre.Add(time.Hour), Message: "before", Properties: map[string]any{"Actor": "alice"}})
	actors := []string{"alice", "bob", "carol", "dave", "erin"}
	actions := []string{"record.read", "record.update", "login", "export", "record.delete"}
	for i := range 400 {
		at := t0.Add(time.Duration(i) * 5 * time.Hour)
		props := map[string]any{
			"Actor": actors[i*7%len(actors)], "Action": actions[i%len(actions)], "Outcome": "success",
			"Resource": fmt.Sprintf("patient/%d", i%37), "Source": "10.0.0.7",
		}
		switch {
		case i%23 == 0:
			props["Outcome"] = "denied"
		case i%41 == 0:
			props["Outcome"] = "failure"
		}
		if i%61 == 0 {
			delete(props, "Source")
		}
		if i%97 == 0 {
			delete(props, "Actor")
		}
		b.Add(&event.Event{Timestamp: at, Level: event.LevelInformation, Message: fmt.Sprintf("%s by %v", props["Action"], props["Actor"]), Properties: props})
		switch i {
		case 50:
			b.Add(lc(at.Add(time.Minute), KindRead, "Log read", map[string]any{"User": "auditor", "Actor": "j.smith", "Command": "replay", "Range": "2026-01-01..2026-01-31", "Filter": "props.Actor == \"bob\"", "PID": int64(4242)}))
		case 120:
			b.Add(lc(at.Add(time.Minute), KindHoldClear, "Legal hold H-1 cleared", map[string]any{"HoldID": "H-1"}))
			b.Add(lc(at.Add(2*time.Minute), KindHoldSet, "Legal hold H-2 set: SEC inquiry", map[string]any{"HoldID": "H-2", "Reason": "SEC inquiry"}))
		case 200:
			b.Add(lc(at.Add(time.Minute), KindRetention, "3 segments deleted under retention", map[string]any{"Segments": int64(3), "Records": int64(1200), "Policy": "PCI-DSS 12 months"}))
		case 250:
			b.Add(lc(at.Add(time.Minute), KindFailOpen, "Failing open: disk full", map[string]any{"Error": "no space left on device"}))
			b.Add(lc(at.Add(9*time.Minute), KindFailClose, "Writing again", nil))
		case 300:
			b.Add(lc(at.Add(time.Minute), KindStop, "Audit log stopped", nil))
			b.Add(lc(at.Add(3*time.Hour), KindStart, "Audit log started", map[string]any{"Version": "v1.0.1"}))
		}
	}
	b.AddAccess(lc(t0.Add(24*time.Hour), KindRead, "Log read", map[string]any{"User": "root", "Command": "verify", "Range": "all", "PID": int64(77)}))
	b.AddAccess(lc(t0.Add(-30*24*time.Hour), KindRead, "Log read before the period", map[string]any{"User": "root", "Command": "verify"}))
	// Checkpoints every 50 minutes, with two gaps: one while the sink
	// was stopped (event 300), one while it ran.
	stop := t0.Add(300 * 5 * time.Hour)
	for at := t0; at.Before(period.To); at = at.Add(50 * time.Minute) {
		if at.After(stop) && at.Before(stop.Add(3*time.Hour)) {
			continue
		}
		if at.After(t0.Add(100*time.Hour)) && at.Before(t0.Add(103*time.Hour)) {
			continue
		}
		size := uint64(at.Sub(t0)/(5*time.Hour)) + 10
		b.AddCheckpoint(at, size, []string{"audit+1a2b3c4d"})
	}
	b.SetVerify(VerifyResult{OK: true, Records: 1652, Events: 1648, FirstSeq: 1, LastSeq: 1652, Segments: 3, Bytes: 412345,
		KeysGiven: true, CheckpointsVerified: 2585, Covered: 1652})
	b.SetAccessLog("/var/lib/app/audit/access", VerifyResult{OK: true, Records: 2, Events: 2, FirstSeq: 1, LastSeq: 2, Segments: 1, KeysGiven: true, CheckpointsVerified: 1, Covered: 2})
	return b.Build()
}

// sampleEvent is an event at t with every field of the vocabulary.
func sampleEvent(t time.Time) *event.Event {
	return &event.Event{Timestamp: t, Message: "m", Properties: map[string]any{
		"Actor": "a", "Action": "read", "Outcome": "success", "Resource": "r", "Source": "s"}}
}
