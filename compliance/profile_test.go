package compliance

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLookup: names in any letter case; an unknown name lists the known
// ones; a looked-up profile is a copy.
func TestLookup(t *testing.T) {
	p, err := Lookup("pci-dss")
	if err != nil || p.Name != PCIDSS {
		t.Fatalf("Lookup(pci-dss) = %v, %v", p.Name, err)
	}
	p.Fields[0] = "changed"
	if q, _ := Lookup(PCIDSS); q.Fields[0] != FieldActor {
		t.Fatal("changing a looked-up profile changed the table")
	}
	_, err = Lookup("ISO27001")
	if !errors.Is(err, ErrUnknownProfile) || !strings.Contains(err.Error(), strings.Join(Names(), ", ")) {
		t.Fatalf("unknown profile: %v", err)
	}
}

// TestProfilesCiteClauses: every requirement a profile holds cites its
// clause, and the §8 defaults hold.
func TestProfilesCiteClauses(t *testing.T) {
	for _, n := range Names() {
		p, _ := Lookup(n)
		for _, r := range Requirements {
			if p.Holds(r) && p.Clauses[r] == "" {
				t.Errorf("%s holds %s but cites no clause", n, r)
			}
		}
		if !p.Signing || !p.Encryption || !p.AccessLog || !p.Lifecycle {
			t.Errorf("%s: signing, encryption, access logging and lifecycle are §8 defaults of every profile", n)
		}
	}
	want := map[string]struct {
		min, max time.Duration
		mode     FieldMode
		offBox   bool
		closed   bool
	}{
		HIPAA:    {6 * Year, 0, Flag, false, false},
		PCIDSS:   {Year, 0, Reject, true, false},
		SOX:      {7 * Year, 0, Reject, true, true},
		GDPR:     {0, Year, Flag, false, false},
		NISTHigh: {30 * Month, 0, Reject, true, false},
	}
	for n, w := range want {
		p, _ := Lookup(n)
		if p.MinRetention != w.min || p.MaxRetention != w.max || p.OnMissing != w.mode || p.OffBox != w.offBox || p.FailClosed != w.closed {
			t.Errorf("%s: %+v; want %+v", n, p, w)
		}
	}
	if p, _ := Lookup(PCIDSS); !slices.Contains(p.Fields, FieldSource) {
		t.Error("PCI-DSS does not require the origin (10.2.2)")
	}
}

// TestMissing: any letter case; nil and "" are missing; order of fields.
func TestMissing(t *testing.T) {
	props := map[string]any{"actor": "u", "ACTION": "a", "Outcome": "", "Resource": nil, "Source": 0}
	if got := Missing(props, Fields); !slices.Equal(got, []string{FieldOutcome, FieldResource}) {
		t.Fatalf("Missing = %v", got)
	}
	if Missing(props, []string{"Actor", "Source"}) != nil {
		t.Fatal("present fields reported missing")
	}
	if got := Missing(nil, []string{"Actor"}); !slices.Equal(got, []string{"Actor"}) {
		t.Fatalf("Missing(nil) = %v", got)
	}
}

// TestApplyOptions: waivers need a known requirement and a reason;
// overrides replace the fields and the mode; every bad option is reported.
func TestApplyOptions(t *testing.T) {
	p, s, err := Apply("SOX", Waive(ReqOffBox, "tape"), RequireFields("Actor", "Ticket"), OnMissingFields(Flag))
	if err != nil || s.Waivers[ReqOffBox] != "tape" || !slices.Equal(p.Fields, []string{"Actor", "Ticket"}) || p.OnMissing != Flag {
		t.Fatalf("Apply: %+v %+v %v", p, s, err)
	}
	_, _, err = Apply("SOX", Waive("backups", "x"), Waive(ReqSigning, " "), RequireFields(""), OnMissingFields(7))
	for _, w := range []string{`Waive("backups")`, "give the reason", "a field name is empty", "OnMissingFields(7)"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("bad options: %v; want %q", err, w)
		}
	}
}

// TestCheck: each unmet requirement is listed once, in order, with its
// clause and fix; waived ones are not.
func TestCheck(t *testing.T) {
	p, _ := Lookup(SOX)
	got := p.Check(Config{Retention: 90 * 24 * time.Hour, FailOpen: true}, map[Requirement]string{ReqEncryption: "HSM disk"})
	var reqs []Requirement
	for _, u := range got {
		reqs = append(reqs, u.Requirement)
		if u.Clause == "" || u.Fix == "" || u.Problem == "" {
			t.Errorf("%+v lacks a clause, problem or fix", u)
		}
	}
	want := []Requirement{ReqRetentionMin, ReqSigning, ReqOffBox, ReqFailClosed, ReqAccessLog, ReqLifecycle}
	if !slices.Equal(reqs, want) {
		t.Fatalf("unmet %v; want %v", reqs, want)
	}
	full := Config{Retention: 7 * Year, Encryption: true, Signing: true, Backends: 1, AccessLog: true, Lifecycle: true}
	if u := p.Check(full, nil); u != nil {
		t.Fatalf("a full configuration: %v", u)
	}
	e := &UnmetError{Profile: SOX, Unmet: got}
	if !errors.Is(e, ErrUnmet) || strings.Count(e.Error(), "\n  - ") != len(got) {
		t.Fatalf("UnmetError: %v", e)
	}
}

// TestPeriod: rendering and parsing retention periods round-trip, and bad
// input says what to write.
func TestPeriod(t *testing.T) {
	for _, d := range []time.Duration{6 * Year, 30 * Month, 90 * 24 * time.Hour, 90 * time.Minute} {
		back, err := ParsePeriod(Period(d))
		if err != nil || back != d {
			t.Errorf("%v -> %q -> %v, %v", d, Period(d), back, err)
		}
	}
	for _, bad := range []string{"7 years", "-3d", "y", "1.5y", ""} {
		if _, err := ParsePeriod(bad); err == nil || !strings.Contains(err.Error(), "6y, 30mo, 90d") {
			t.Errorf("ParsePeriod(%q): %v", bad, err)
		}
	}
}
