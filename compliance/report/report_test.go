package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/event"
	"golang.org/x/net/html"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

// TestReportJSONGolden: the JSON of the sample report, built with a fixed
// clock, is byte for byte the golden file (so the schema changes only on
// purpose), for every profile.
func TestReportJSONGolden(t *testing.T) {
	for _, p := range Profiles() {
		t.Run(p, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteJSON(&buf, sampleReport(t, p)); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", strings.ToLower(p)+".golden.json")
			if *update {
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("JSON differs from %s (run go test -update and review the diff):\n%s", path, firstDiff(buf.String(), string(want)))
			}
			// Deterministic: a second build gives the same bytes.
			var again bytes.Buffer
			WriteJSON(&again, sampleReport(t, p))
			if !bytes.Equal(buf.Bytes(), again.Bytes()) {
				t.Error("two builds of the same report differ")
			}
		})
	}
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return "line " + itoa(i+1) + ":\n got: " + g[i] + "\nwant: " + w[i]
		}
	}
	return "lengths differ"
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestReportContents checks the findings of the sample report against
// what was fed in: counts, failures, missing fields, reads from both
// places, holds in force, the heartbeat gaps and their causes, and the
// controls' statuses.
func TestReportContents(t *testing.T) {
	r := sampleReport(t, "PCI-DSS")
	a := r.Activity
	if a.Events != 400 || a.Failures != 27 || a.EventsMissingFields != 11 {
		t.Errorf("events %d failures %d missing %d, want 400 27 11", a.Events, a.Failures, a.EventsMissingFields)
	}
	if r.Reads.Count != 2 || r.Reads.FromLog != 1 || r.Reads.FromAccessLog != 1 {
		t.Errorf("reads %+v, want 1 from the log and 1 from the access log (the one before the period not counted)", r.Reads)
	}
	if n := len(r.Retention.HoldsInForce); n != 1 || r.Retention.HoldsInForce[0].Properties["HoldID"] != "H-2" {
		t.Errorf("holds in force %+v, want H-2 only (H-1 was cleared)", r.Retention.HoldsInForce)
	}
	hb := r.Integrity.Heartbeat
	if hb.Missed != 2 || hb.Stopped != 1 {
		t.Errorf("heartbeat %+v, want 2 gaps, 1 while stopped", hb)
	}
	want := map[string]Status{"10.2.1.3": Pass, "10.2.1.6": Pass, "10.2.2": Fail, "10.3.2": Pass, "10.3.3": Pass, "10.3.4": Fail,
		"10.4.1": Pass, "10.5.1": Fail, "10.6.1": Pass, "10.7.2": Pass}
	for _, c := range r.Controls {
		if want[c.ID] != c.Status {
			t.Errorf("control %s: %s (%s), want %s", c.ID, c.Status, c.Reason, want[c.ID])
		}
		if c.Reason == "" || c.Clause == "" || c.Requires == "" || len(c.Evidence) == 0 {
			t.Errorf("control %s lacks a reason, clause, requirement or evidence: %+v", c.ID, c)
		}
	}
	ids := map[string]bool{}
	for _, e := range r.Evidence {
		ids[e.ID] = true
		if len(e.Recheck) == 0 || !strings.HasPrefix(e.Recheck[0], "mtlog-audit ") {
			t.Errorf("evidence %s has no mtlog-audit command to re-check it: %q", e.ID, e.Recheck)
		}
	}
	for _, c := range r.Controls {
		for _, e := range c.Evidence {
			if !ids[e] {
				t.Errorf("control %s cites evidence %q that the report does not list", c.ID, e)
			}
		}
	}
	if r.Summary.Verdict != Fail || r.Summary.Pass+r.Summary.Fail+r.Summary.NotApplicable != len(r.Controls) {
		t.Errorf("summary %+v", r.Summary)
	}
}

// TestSOXFailOpenFails: under SOX (fail-closed) a fail-open window fails
// the trail control; under HIPAA the same window passes, because it was
// recorded.
func TestSOXFailOpenFails(t *testing.T) {
	for p, want := range map[string]Status{"SOX": Fail, "NIST-800-53-HIGH": Pass} {
		r := sampleReport(t, p)
		for _, c := range r.Controls {
			if c.ID == "404-ITGC-trail" || c.ID == "AU-5" {
				if c.Status != want {
					t.Errorf("%s %s: %s (%s), want %s", p, c.ID, c.Status, c.Reason, want)
				}
			}
		}
	}
}

// TestEmptyReport: a log without events, and a period without events,
// give an empty report that says so, with no failing field checks.
func TestEmptyReport(t *testing.T) {
	p, _ := LookupProfile("HIPAA")
	per, _ := ParsePeriod("2026-03")
	b := NewBuilder(Config{Profile: p, Log: "/l", Period: per, Now: sampleNow, Heartbeat: time.Minute})
	b.SetVerify(VerifyResult{OK: true, KeysGiven: true})
	r := b.Build()
	if !r.Empty || len(r.Notes) == 0 || !strings.Contains(r.Notes[0], "no event at all") {
		t.Errorf("empty log: empty %v notes %q", r.Empty, r.Notes)
	}
	for _, c := range r.Controls {
		if (c.ID == "164.312(b)" || c.ID == "164.312(a)(2)(i)") && c.Status != NotApplicable {
			t.Errorf("%s on an empty log: %s", c.ID, c.Status)
		}
	}
	var buf bytes.Buffer
	for _, w := range []func(*bytes.Buffer, *Report) error{
		func(b *bytes.Buffer, r *Report) error { return WriteHTML(b, r) },
		func(b *bytes.Buffer, r *Report) error { return WritePDF(b, r) },
		func(b *bytes.Buffer, r *Report) error { return WriteJSON(b, r) }} {
		buf.Reset()
		if err := w(&buf, r); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(buf.String(), `"timeline": [`) || strings.Contains(buf.String(), "null") && !strings.Contains(buf.String(), `"access_log": null`) {
		t.Errorf("empty report JSON has a null list:\n%s", buf.String())
	}

	b = NewBuilder(Config{Profile: p, Log: "/l", Period: per, Now: sampleNow})
	b.Add(sampleEvent(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)))
	r = b.Build()
	if !r.Empty || !strings.Contains(r.Notes[0], "no event in the period 2026-03") {
		t.Errorf("empty period: empty %v notes %q", r.Empty, r.Notes)
	}
}

// TestHTMLStructure: the HTML parses, has every section, its charts are
// inline SVG, and it references nothing outside itself (no script, no
// link, no src or href to another document).
func TestHTMLStructure(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteHTML(&buf, sampleReport(t, "HIPAA")); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var h2 []string
	svgs, rows := 0, 0
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "h2":
				h2 = append(h2, text(n))
			case "svg":
				svgs++
			case "tr":
				rows++
			case "script", "link", "iframe", "img", "object", "embed":
				t.Errorf("the report has a <%s>: it must need nothing outside itself", n.Data)
			}
			for _, a := range n.Attr {
				if (a.Key == "src" || a.Key == "href") && !strings.HasPrefix(a.Val, "#") {
					t.Errorf("<%s %s=%q> points outside the report", n.Data, a.Key, a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	want := []string{TitleControls, TitleIntegrity, TitleActivity, TitleReads, TitleRetention, TitleEvidence}
	if strings.Join(h2, "|") != strings.Join(want, "|") {
		t.Errorf("sections %q, want %q", h2, want)
	}
	if svgs < 4 {
		t.Errorf("%d inline SVG charts, want 4 (timeline, actions, outcomes, actors)", svgs)
	}
	if rows < 8+1 {
		t.Errorf("%d table rows: the control table is missing", rows)
	}
	for _, s := range []string{"164.312(b)", "164.316(b)(2)(i)", "mtlog-audit verify --wal /var/lib/app/audit --key audit.pub", "Legal hold H-2 set"} {
		if !strings.Contains(buf.String(), html.EscapeString(s)) {
			t.Errorf("the HTML lacks %q", s)
		}
	}
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(b.String())
}

// TestPDF: the PDF starts with %PDF and, where pdftotext is installed, its
// text holds every section title and the control IDs.
func TestPDF(t *testing.T) {
	var buf bytes.Buffer
	if err := WritePDF(&buf, sampleReport(t, "NIST-800-53-HIGH")); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("%PDF-")) {
		t.Fatalf("not a PDF: %q", buf.Bytes()[:min(buf.Len(), 16)])
	}
	tool, err := exec.LookPath("pdftotext")
	if err != nil {
		t.Skip("pdftotext not installed (apt-get install poppler-utils): checked the header only")
	}
	path := filepath.Join(t.TempDir(), "r.pdf")
	os.WriteFile(path, buf.Bytes(), 0o644)
	out, err := exec.Command(tool, "-layout", path, "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	txt := string(out)
	for _, s := range []string{TitleControls, TitleIntegrity, TitleActivity, TitleReads, TitleRetention, TitleEvidence, "AU-9(3)", "AU-12(3)", "NIST-800-53-HIGH compliance report"} {
		if !strings.Contains(txt, s) {
			t.Errorf("pdftotext finds no %q", s)
		}
	}
}

// TestPDFUnknownGlyphs: characters the embedded fonts lack do not fail
// the PDF.
func TestPDFUnknownGlyphs(t *testing.T) {
	r := sampleReport(t, "GDPR")
	r.Log = "/srv/日志/审计 🚀"
	r.Activity.ByActor = append(r.Activity.ByActor, Count{Value: "ユーザー", Count: 1})
	var buf bytes.Buffer
	if err := WritePDF(&buf, r); err != nil {
		t.Fatal(err)
	}
}

// TestLookupProfile: every profile is found in any case; an unknown one
// names the known ones.
func TestLookupProfile(t *testing.T) {
	for _, n := range Profiles() {
		if p, err := LookupProfile(strings.ToLower(n)); err != nil || p.Name != n {
			t.Errorf("%s: %v", n, err)
		}
	}
	_, err := LookupProfile("ISO-27001")
	if !errors.Is(err, ErrUnknownProfile) || !strings.Contains(err.Error(), "HIPAA, NIST-800-53-HIGH, PCI-DSS, SOX") {
		t.Errorf("unknown profile: %v", err)
	}
}

// TestReadsFailOnTamperedAccessLog: when the access log does not verify
// (a read record was deleted), the reads controls fail with the problem.
func TestReadsFailOnTamperedAccessLog(t *testing.T) {
	p, _ := LookupProfile("PCI-DSS")
	per, _ := ParsePeriod("2026-03")
	b := NewBuilder(Config{Profile: p, Log: "/l", Period: per, Now: sampleNow})
	b.AddAccess(&event.Event{Timestamp: per.From.Add(time.Hour), Properties: map[string]any{LifecycleProperty: KindRead, "User": "u"}})
	b.SetAccessLog("/l/access", VerifyResult{Problem: "record 2: hash chain broken"})
	r := b.Build()
	for _, c := range r.Controls {
		if c.ID == "10.2.1.3" && (c.Status != Fail || !strings.Contains(c.Reason, "hash chain broken")) {
			t.Errorf("10.2.1.3 with a tampered access log: %s (%s)", c.Status, c.Reason)
		}
	}
}

// TestConfigurationNotHiddenByAnchors: the access log's anchors and the
// waivers are config events too; the configuration in force is the newest
// config event that is neither, so a log whose last config event is an
// anchor (every Close of a sink with access logging writes one) still
// shows its encryption.
func TestConfigurationNotHiddenByAnchors(t *testing.T) {
	p, _ := LookupProfile("HIPAA")
	per, _ := ParsePeriod("2026-03")
	cfg := func(at time.Duration, props map[string]any) *event.Event {
		props[LifecycleProperty] = KindConfig
		return &event.Event{Timestamp: per.From.Add(-at), MessageTemplate: "config", Properties: props}
	}
	b := NewBuilder(Config{Profile: p, Log: "/l", Period: per, Now: sampleNow})
	b.Add(cfg(3*time.Hour, map[string]any{"Profile": "HIPAA", "Encrypted": "all properties"}))
	b.Add(cfg(2*time.Hour, map[string]any{"Requirement": "access-logging", "Profile": "HIPAA", "Reason": "r"}))
	b.Add(cfg(time.Hour, map[string]any{"AccessLog": "access", "AccessRecords": int64(3), "AccessHead": "00"}))
	r := b.Build()
	found := false
	for _, c := range r.Controls {
		if c.ID == "164.312(a)(2)(iv)" {
			found = true
			if c.Status != Pass || !strings.Contains(c.Reason, "Encrypted") {
				t.Errorf("encryption control after an anchor: %s (%s)", c.Status, c.Reason)
			}
		}
	}
	if !found {
		t.Fatal("no encryption control in the HIPAA report")
	}
}
