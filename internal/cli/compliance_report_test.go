package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/compliance/report"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/cli"
)

// reportLog writes a signed log of n events from start, one a minute,
// with the event vocabulary (every 10th event a denied one, every 25th
// without Source), and returns its directory and public key file. Extra
// options go to the Sink (WithSyncMode for the benchmark).
func reportLog(tb testing.TB, dir string, n int, start time.Time, opts ...audit.Option) (string, string) {
	tb.Helper()
	skey, vkey, err := integrity.GenerateKey("report.mtlog-audit.test")
	if err != nil {
		tb.Fatal(err)
	}
	pubFile := filepath.Join(dir, "log.pub")
	os.WriteFile(pubFile, []byte(vkey+"\n"), 0o644)
	wdir := filepath.Join(dir, "wal")
	s, err := audit.New(append([]audit.Option{audit.WithWAL(wdir), audit.WithSigningKey(skey)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	actors := []string{"alice", "bob", "carol"}
	for i := range n {
		p := map[string]any{"Actor": actors[i%3], "Action": "record.read", "Outcome": "success", "Resource": fmt.Sprintf("r/%d", i%100), "Source": "10.0.0.1"}
		if i%10 == 9 {
			p["Outcome"] = "denied"
		}
		if i%25 == 0 {
			delete(p, "Source")
		}
		ev := &audit.Event{Timestamp: start.Add(time.Duration(i) * time.Minute), Level: audit.LevelInformation, MessageTemplate: "{Action} by {Actor}", Properties: p}
		if _, err := s.Write(ctx, ev); err != nil {
			tb.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	return wdir, pubFile
}

// writeReads reads the log in dir (a new log when dir does not exist)
// through a Sink with access logging on, once for each time in at, by a
// clock stopped at that time: each read leaves its record in that log.
func writeReads(t *testing.T, dir string, at ...time.Time) {
	t.Helper()
	ctx := audit.WithActor(context.Background(), "j.smith")
	for _, ts := range at {
		s, err := audit.New(audit.WithWAL(dir), audit.WithAccessLog(), audit.WithClock(func() time.Time { return ts }))
		if err != nil {
			t.Fatal(err)
		}
		for _, err := range s.Replay(ctx, time.Time{}, time.Time{}) {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// runCLI runs the command in this process.
func runCLI(args ...string) result {
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return result{code, out.String(), errb.String()}
}

var march = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// TestComplianceReportCommand builds a report of a real signed log, with a
// read recorded in the log and one in its access log, in each format:
// the JSON has the period's counts, both reads, a verified log and
// signed checkpoints; the HTML and PDF are what their extensions say.
func TestComplianceReportCommand(t *testing.T) {
	tmp := t.TempDir()
	wdir, pubFile := reportLog(t, tmp, 300, march.Add(-2*time.Hour))
	writeReads(t, filepath.Join(wdir, "access"), march.Add(time.Hour))
	out := filepath.Join(tmp, "r.json")
	res := runCLI("compliance", "report", "--wal", wdir, "--key", pubFile, "--profile", "pci-dss", "--period", "2026-03", "-o", out, "--heartbeat", "0")
	// Controls fail (no lifecycle events, no configuration event in a
	// log written without a profile): exit 1, report written.
	if res.code != cli.ExitFailed || !strings.Contains(res.stderr, "controls pass") {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var r report.Report
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	if r.Schema != report.Schema || r.Profile != "PCI-DSS" || r.Period.Text != "2026-03" {
		t.Errorf("header %q %q %q", r.Schema, r.Profile, r.Period.Text)
	}
	// 300 events from 22:00 the day before: 120 before March.
	if r.Activity.Events != 180 || r.Activity.Failures != 18 {
		t.Errorf("activity %d events %d failures, want 180 and 18", r.Activity.Events, r.Activity.Failures)
	}
	if r.Integrity.Status != "verified" || !r.Integrity.KeysGiven || r.Integrity.CheckpointsVerified == 0 || r.Integrity.Checkpoints.Stored == 0 {
		t.Errorf("integrity %+v", r.Integrity)
	}
	if r.Reads.Count != 1 || r.Reads.FromAccessLog != 1 || !r.Reads.AccessLogPresent || r.Integrity.AccessLog == nil {
		t.Errorf("reads %+v, access log %+v", r.Reads, r.Integrity.AccessLog)
	}
	if got := r.Evidence[0].Recheck[0]; got != fmt.Sprintf("mtlog-audit verify --wal %s --key %s", wdir, pubFile) {
		t.Errorf("re-check of verify: %q", got)
	}
	for _, f := range []struct{ name, magic string }{{"r.html", "<!DOCTYPE html>"}, {"r.pdf", "%PDF-"}} {
		p := filepath.Join(tmp, f.name)
		res := runCLI("compliance", "report", "--wal", wdir, "--key", pubFile, "--profile", "HIPAA", "--period", "2026-Q1", "-o", p, "-q")
		b, _ := os.ReadFile(p)
		if res.code != cli.ExitFailed || !bytes.HasPrefix(b, []byte(f.magic)) {
			t.Errorf("%s: exit %d, starts %q, stderr %q", f.name, res.code, b[:min(len(b), 16)], res.stderr)
		}
	}
	// The reads are also found in the log itself.
	writeReads(t, wdir, march.Add(2*time.Hour))
	res = runCLI("compliance", "report", "--wal", wdir, "--profile", "GDPR", "--period", "2026-03-01..2026-03-31", "--json")
	if err := json.Unmarshal([]byte(res.stdout), &r); err != nil {
		t.Fatalf("%v: %s", err, res.stderr)
	}
	if r.Reads.FromLog != 1 || r.Reads.FromAccessLog != 1 || r.Integrity.KeysGiven {
		t.Errorf("reads %+v keys %v", r.Reads, r.Integrity.KeysGiven)
	}
}

// TestComplianceReportEmpty: a period without events gives an empty report
// that says so (exit 0 or 1 by its controls, never an error).
func TestComplianceReportEmpty(t *testing.T) {
	tmp := t.TempDir()
	wdir, pubFile := reportLog(t, tmp, 5, march)
	res := runCLI("compliance", "report", "--wal", wdir, "--key", pubFile, "--profile", "SOX", "--period", "2025-Q1", "--json")
	var r report.Report
	if err := json.Unmarshal([]byte(res.stdout), &r); err != nil {
		t.Fatalf("exit %d: %v: %s", res.code, err, res.stderr)
	}
	if !r.Empty || len(r.Notes) == 0 || !strings.Contains(r.Notes[0], "no event in the period 2025-Q1") {
		t.Errorf("empty %v notes %q", r.Empty, r.Notes)
	}
}

// TestComplianceReportUsage: each bad input is a usage error (exit 2)
// that says what to do, and writes nothing.
func TestComplianceReportUsage(t *testing.T) {
	tmp := t.TempDir()
	wdir, _ := reportLog(t, tmp, 3, march)
	existing := filepath.Join(tmp, "exists.html")
	os.WriteFile(existing, []byte("x"), 0o644)
	out := filepath.Join(tmp, "r.html")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--profile", "HIPAA", "--period", "2026-Q5", "-o", out}, "use a quarter (2026-Q1)"},
		{[]string{"--profile", "HIPAA", "--period", "last week", "-o", out}, "FROM..TO"},
		{[]string{"--profile", "ISO-27001", "--period", "2026-Q1", "-o", out}, "use one of GDPR, HIPAA, NIST-800-53-HIGH, PCI-DSS, SOX"},
		{[]string{"--profile", "HIPAA", "--period", "2026-Q1", "-o", filepath.Join(tmp, "r.docx")}, "name the file .html, .pdf or .json"},
		{[]string{"--profile", "HIPAA", "--period", "2026-Q1", "-o", out, "--format", "xml"}, "use html, pdf or json"},
		{[]string{"--profile", "HIPAA", "--period", "2026-Q1", "--json", "--format", "pdf"}, "give -o FILE too"},
		{[]string{"--profile", "HIPAA", "--period", "2026-Q1", "-o", existing}, "--force"},
		{[]string{"--profile", "HIPAA", "--period", "2026-Q1"}, "missing required flag(s) --output (or --json"},
		{[]string{"--profile", "HIPAA", "--period", "2026-Q1", "-o", out, "--heartbeat", "-1s"}, "--heartbeat"},
	} {
		res := runCLI(append([]string{"compliance", "report", "--wal", wdir}, tc.args...)...)
		if res.code != cli.ExitUsage || !strings.Contains(res.stderr, tc.want) || strings.Contains(res.stderr, "goroutine") {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", tc.args, res.code, res.stderr, tc.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a usage error wrote the report")
	}
	res := runCLI("compliance", "report", "--wal", tmp, "--profile", "HIPAA", "--period", "2026-Q1", "-o", out)
	if res.code != cli.ExitUsage || !strings.Contains(res.stderr, "not an mtlog-audit log") {
		t.Errorf("not a log: exit %d %q", res.code, res.stderr)
	}
}

// TestLifecycleNamesAgree: the report package's copies of the lifecycle
// property and kinds (it does not import audit) equal audit's.
func TestLifecycleNamesAgree(t *testing.T) {
	for got, want := range map[string]string{
		report.LifecycleProperty: audit.LifecycleProperty, report.KindStart: audit.LifecycleStart, report.KindStop: audit.LifecycleStop,
		report.KindConfig: audit.LifecycleConfig, report.KindRetention: audit.LifecycleRetention, report.KindHoldSet: audit.LifecycleHoldSet,
		report.KindHoldClear: audit.LifecycleHoldClear, report.KindFailOpen: audit.LifecycleFailOpen, report.KindFailClose: audit.LifecycleFailClosed,
		report.KindRead: audit.LifecycleRead,
	} {
		if got != want {
			t.Errorf("report has %q, audit %q", got, want)
		}
	}
}

// BenchmarkComplianceReport1M builds the JSON report of a 1,000,000-event
// signed log (written once, with SyncNone, before the timing): verify and
// one streaming pass over every event. The run of record is in
// docs/compliance/reports.md.
func BenchmarkComplianceReport1M(b *testing.B) {
	dir := b.TempDir()
	benchWAL, benchPub := reportLog(b, dir, 1_000_000, march.Add(-30*24*time.Hour), audit.WithSyncMode(audit.SyncNone, 0))
	out := filepath.Join(dir, "r.json")
	cpu0 := cpuTime(b)
	n := 0
	b.ResetTimer()
	for b.Loop() {
		res := runCLI("compliance", "report", "--wal", benchWAL, "--key", benchPub, "--profile", "PCI-DSS", "--period", "2026-03", "-o", out, "--force", "-q")
		if res.code == cli.ExitUsage {
			b.Fatal(res.stderr)
		}
		n++
	}
	// The CPU time (user and system) is what the machine's load does not
	// inflate: on a shared machine ns/op is mostly waiting for a core.
	b.ReportMetric((cpuTime(b)-cpu0).Seconds()/float64(n), "cpu-s/op")
}
