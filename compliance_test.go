package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/willibrandon/mtlog-audit/backends/fs"
	"github.com/willibrandon/mtlog-audit/compliance"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
	"github.com/willibrandon/mtlog/core"
)

// withRetention sets the retention field directly: WithRetention is the
// retention helper's option (CONTRACT19.md).
func withRetention(d time.Duration) Option { return func(c *config) { c.retention = d } }

// fullPCI returns options that meet every requirement of PCI-DSS (and of
// SOX and NIST-800-53-HIGH).
func fullPCI(t *testing.T, dir string) []Option {
	t.Helper()
	skey, _, err := integrity.GenerateKey("pci.example")
	if err != nil {
		t.Fatal(err)
	}
	be, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return []Option{WithWAL(dir), WithSigningKey(skey), WithKeyring(filepath.Join(t.TempDir(), "audit.keyring"), nil),
		WithEncryption("CardHolder"), WithShipping(1, be)}
}

// complete are properties that carry every field of the vocabulary.
func complete() map[string]any {
	return map[string]any{"Actor": "u-1", "Action": "payment.refund", "Outcome": "success", "Resource": "order-7", "Source": "10.0.0.8"}
}

// lifecycleKinds returns the lifecycle kinds of the events in dir, in
// order, and the events.
func replayAll(t *testing.T, s *Sink) []*Event {
	t.Helper()
	var evs []*Event
	for ev, err := range s.Replay(context.Background(), time.Time{}, time.Time{}) {
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func kinds(evs []*Event) []string {
	var k []string
	for _, ev := range evs {
		if v, ok := ev.Properties[LifecycleProperty]; ok {
			k = append(k, v.(string))
		}
	}
	return k
}

// unmet returns the requirements an error of New lists.
func unmet(t *testing.T, err error) []compliance.Requirement {
	t.Helper()
	var ue *compliance.UnmetError
	if !errors.As(err, &ue) || !errors.Is(err, ErrComplianceUnmet) {
		t.Fatalf("error %v is not a *compliance.UnmetError matching ErrComplianceUnmet", err)
	}
	var r []compliance.Requirement
	for _, u := range ue.Unmet {
		r = append(r, u.Requirement)
	}
	return r
}

// TestPCIEventWithoutOriginRejected is §8's first testable consequence: a
// PCI event without its origin (Source, PCI DSS 10.2.2) is rejected, by
// Write with an error naming the field, and by Emit through the failure
// policy; nothing is written.
func TestPCIEventWithoutOriginRejected(t *testing.T) {
	dir := t.TempDir()
	var handled []error
	opts := append(fullPCI(t, dir), WithCompliance("PCI-DSS"), WithFailureHandler(func(_ *core.LogEvent, err error) { handled = append(handled, err) }))
	s, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	props := complete()
	delete(props, "Source")
	before := s.LastSeq()
	_, err = s.Write(context.Background(), &Event{MessageTemplate: "refund", Properties: props})
	if !errors.Is(err, ErrMissingFields) || !errors.Is(err, ErrUnwritable) || !strings.Contains(err.Error(), "Source") || !strings.Contains(err.Error(), "10.2.2") {
		t.Fatalf("Write without Source: %v; want ErrMissingFields naming Source and PCI DSS 10.2.2", err)
	}
	s.Emit(&core.LogEvent{MessageTemplate: "refund", Properties: props})
	if len(handled) != 1 || !errors.Is(handled[0], ErrMissingFields) {
		t.Fatalf("Emit: the failure handler got %v; want one ErrMissingFields", handled)
	}
	if s.LastSeq() != before {
		t.Fatalf("a rejected event was written: last seq %d, was %d", s.LastSeq(), before)
	}
	if _, err := s.Write(context.Background(), &Event{MessageTemplate: "refund", Properties: complete()}); err != nil {
		t.Fatalf("a complete event: %v", err)
	}
}

// TestRequiredFieldsAnyCase: field names match in any letter case (slog
// and zap keys are often lower case), and a nil or empty value is missing.
func TestRequiredFieldsAnyCase(t *testing.T) {
	s, err := New(append(fullPCI(t, t.TempDir()), WithCompliance("PCI-DSS"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	lower := map[string]any{"actor": "u-1", "ACTION": "a", "outcome": "ok", "resource": "r", "source": "h"}
	if _, err := s.Write(ctx, &Event{MessageTemplate: "x", Properties: lower}); err != nil {
		t.Fatalf("lower-case fields: %v", err)
	}
	for _, v := range []any{nil, ""} {
		p := complete()
		p["Actor"] = v
		if _, err := s.Write(ctx, &Event{MessageTemplate: "x", Properties: p}); !errors.Is(err, ErrMissingFields) || !strings.Contains(err.Error(), "Actor") {
			t.Fatalf("Actor %#v: %v; want ErrMissingFields naming Actor", v, err)
		}
	}
}

// TestRequiredFieldsThroughSlog: the adapters go through the same check
// (slog attributes are properties).
func TestRequiredFieldsThroughSlog(t *testing.T) {
	s, err := New(append(fullPCI(t, t.TempDir()), WithCompliance("PCI-DSS"), WithFailureHandler(func(*core.LogEvent, error) {}))...)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := slogHandler{s}
	l := slog.New(h)
	before := s.LastSeq()
	l.Info("refund", "actor", "u-1", "action", "refund", "outcome", "ok", "resource", "o-1") // no source
	if s.LastSeq() != before {
		t.Fatal("an slog record without source was written under PCI-DSS")
	}
	l.Info("refund", "actor", "u-1", "action", "refund", "outcome", "ok", "resource", "o-1", "source", "10.0.0.1")
	if s.LastSeq() != before+1 {
		t.Fatal("a complete slog record was not written")
	}
}

// slogHandler is a minimal slog handler over EmitEvent, as the adapters
// are (the adapters import audit, so this package's tests cannot use them;
// adapters/slog has its own test of the profile).
type slogHandler struct{ s *Sink }

func (slogHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h slogHandler) Handle(ctx context.Context, r slog.Record) error {
	p := map[string]any{}
	r.Attrs(func(a slog.Attr) bool { p[a.Key] = a.Value.Any(); return true })
	return h.s.EmitEvent(ctx, &Event{Timestamp: r.Time, MessageTemplate: r.Message, Properties: p})
}
func (h slogHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h slogHandler) WithGroup(string) slog.Handler      { return h }

// TestFlaggedEventStoredAndCounted: under HIPAA (which flags), an event
// missing fields is stored with MissingFieldsProperty listing them, and
// counted in Status.Flagged.
func TestFlaggedEventStoredAndCounted(t *testing.T) {
	dir := t.TempDir()
	skey, _, _ := integrity.GenerateKey("hipaa.example")
	s, err := New(WithWAL(dir), WithSigningKey(skey), WithKeyring(filepath.Join(t.TempDir(), "k"), nil), WithEncryption("Diagnosis"), WithCompliance("hipaa"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := &Event{MessageTemplate: "read chart", Properties: map[string]any{"Actor": "dr-1", "Action": "read"}}
	rc, err := s.Write(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ev.Properties[MissingFieldsProperty]; ok {
		t.Fatal("Write modified the caller's event")
	}
	if got := s.Status().Flagged; got != 1 {
		t.Fatalf("Status().Flagged = %d; want 1", got)
	}
	for _, e := range replayAll(t, s) {
		if e.Properties[LifecycleProperty] != nil {
			continue
		}
		got := e.Properties[MissingFieldsProperty]
		want := []any{"Outcome", "Resource", "Source"}
		if l, ok := got.([]any); !ok || !slices.Equal(l, want) {
			t.Fatalf("seq %d: %s = %#v; want %v", rc.Seq, MissingFieldsProperty, got, want)
		}
		return
	}
	t.Fatal("the flagged event is not in the log")
}

// TestReservedPropertiesRefused: nobody forges a lifecycle event or a flag.
func TestReservedPropertiesRefused(t *testing.T) {
	s, err := New(WithWAL(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, p := range []string{LifecycleProperty, MissingFieldsProperty} {
		_, err := s.Write(context.Background(), &Event{MessageTemplate: "forged", Properties: map[string]any{p: "start"}})
		if !errors.Is(err, ErrReservedProperty) || !errors.Is(err, ErrUnwritable) {
			t.Fatalf("an event carrying %s: %v; want ErrReservedProperty", p, err)
		}
	}
	if s.LastSeq() != 0 {
		t.Fatal("a forged event was written")
	}
}

// TestComplianceUnknownProfile names the known profiles.
func TestComplianceUnknownProfile(t *testing.T) {
	_, err := New(WithWAL(t.TempDir()), WithCompliance("HIPPA"))
	if !errors.Is(err, compliance.ErrUnknownProfile) || !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("HIPPA: %v; want ErrUnknownProfile", err)
	}
	for _, n := range compliance.Names() {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("the error does not name %s: %v", n, err)
		}
	}
}

// TestComplianceUnmetListsEverything: one error lists every unmet
// requirement, with its clause and the option that meets it, and the log
// is not opened.
func TestComplianceUnmetListsEverything(t *testing.T) {
	dir := t.TempDir()
	_, err := New(WithWAL(dir), WithCompliance("NIST-800-53-HIGH"), withRetention(90*24*time.Hour))
	got := unmet(t, err)
	want := []compliance.Requirement{compliance.ReqRetentionMin, compliance.ReqEncryption, compliance.ReqSigning, compliance.ReqOffBox}
	if !slices.Equal(got, want) {
		t.Fatalf("unmet %v; want %v (%v)", got, want, err)
	}
	for _, s := range []string{"WithSigningKeyFile", "WithEncryption", "WithShipping", "WithRetention(30mo)", "AU-9(3)", "AU-11"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("the error lacks %q:\n%v", s, err)
		}
	}
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Fatalf("New created %d files in the log directory though the profile was unmet", len(names))
	}
}

// TestComplianceSOXRefusesFailOpen: fail-open contradicts SOX's
// fail-closed requirement, and a signing key is required.
func TestComplianceSOXRefusesFailOpen(t *testing.T) {
	_, err := New(WithWAL(t.TempDir()), WithCompliance("SOX"), WithFailOpen())
	got := unmet(t, err)
	for _, r := range []compliance.Requirement{compliance.ReqSigning, compliance.ReqFailClosed} {
		if !slices.Contains(got, r) {
			t.Errorf("unmet %v lacks %s", got, r)
		}
	}
}

// TestComplianceRetentionBounds: retention below a profile's minimum, and
// above GDPR's maximum or unset under GDPR, are unmet.
func TestComplianceRetentionBounds(t *testing.T) {
	base := func(t *testing.T) []Option { return fullPCI(t, t.TempDir()) }
	for _, tc := range []struct {
		profile string
		ret     time.Duration
		want    compliance.Requirement
	}{
		{"PCI-DSS", 30 * 24 * time.Hour, compliance.ReqRetentionMin},
		{"HIPAA", 5 * compliance.Year, compliance.ReqRetentionMin},
		{"SOX", 6 * compliance.Year, compliance.ReqRetentionMin},
		{"GDPR", 2 * compliance.Year, compliance.ReqRetentionMax},
		{"GDPR", 0, compliance.ReqRetentionMax},
	} {
		_, err := New(append(base(t), WithCompliance(tc.profile), withRetention(tc.ret))...)
		if got := unmet(t, err); !slices.Equal(got, []compliance.Requirement{tc.want}) {
			t.Errorf("%s retention %v: unmet %v; want [%s]", tc.profile, tc.ret, got, tc.want)
		}
	}
	s, err := New(append(base(t), WithCompliance("GDPR"), withRetention(180*24*time.Hour))...)
	if err != nil {
		t.Fatalf("GDPR with 180 days: %v", err)
	}
	s.Close()
}

// TestComplianceWaiverLogged: a waived requirement is not unmet, a waiver
// needs a reason, and the waiver is recorded in the log with its reason.
func TestComplianceWaiverLogged(t *testing.T) {
	skey, _, _ := integrity.GenerateKey("h.example")
	_, err := New(WithWAL(t.TempDir()), WithSigningKey(skey), WithCompliance("HIPAA", compliance.Waive(compliance.ReqEncryption, "")))
	if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), "reason") {
		t.Fatalf("a waiver without reason: %v", err)
	}
	reason := "disk encrypted with LUKS (164.306(d)(3) equivalent)"
	s, err := New(WithWAL(t.TempDir()), WithSigningKey(skey), WithCompliance("HIPAA", compliance.Waive(compliance.ReqEncryption, reason)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, ev := range replayAll(t, s) {
		if ev.Properties[LifecycleProperty] == LifecycleConfig && ev.Properties["Reason"] == reason && ev.Properties["Requirement"] == "encryption" {
			return
		}
	}
	t.Fatal("the waiver is not in the log")
}

// TestLifecycleOffByDefault: without a profile or WithLifecycleEvents the
// first event is seq 1 and the log holds only what was written.
func TestLifecycleOffByDefault(t *testing.T) {
	s, err := New(WithWAL(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := s.Write(context.Background(), &Event{MessageTemplate: "first"})
	if err != nil || rc.Seq != 1 {
		t.Fatalf("first write: seq %d, %v; want seq 1", rc.Seq, err)
	}
	s.Close()
}

// TestLifecycleStartConfigStop: a profile's Sink records its start and
// configuration (key fingerprints, backends, never a secret) and its stop,
// each time it opens.
func TestLifecycleStartConfigStop(t *testing.T) {
	dir := t.TempDir()
	opts := append(fullPCI(t, dir), WithCompliance("PCI-DSS"))
	for range 2 {
		s, err := New(opts...)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s, err := New(WithWAL(dir), WithKeyring(filepath.Join(t.TempDir(), "other"), nil))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The profile turns access logging on, whose anchors (config events
	// naming the access log's head, at each open and close) are tested
	// with it (access_test.go): set them apart.
	var evs []*Event
	anchors := 0
	for _, ev := range replayAll(t, s) {
		if _, ok := ev.Properties[AccessHeadProperty]; ok {
			anchors++
			continue
		}
		evs = append(evs, ev)
	}
	want := []string{"start", "config", "stop", "start", "config", "stop"}
	if got := kinds(evs); !slices.Equal(got, want) || anchors != 4 {
		t.Fatalf("lifecycle events %v and %d access-log anchors; want %v and 4", got, anchors, want)
	}
	var skey string
	for _, o := range opts {
		var c config
		o(&c)
		if c.ledger.SigningKey != "" {
			skey = c.ledger.SigningKey
		}
	}
	secret := strings.SplitN(skey, "+", 5)[4]
	cfg := evs[1].Properties
	if cfg["Profile"] != "PCI-DSS" || cfg["SigningKey"] != "pci.example+"+strings.SplitN(skey, "+", 5)[3] || cfg["Backends"] == nil || cfg["Encrypted"] == nil {
		t.Fatalf("config event properties %v", cfg)
	}
	for _, ev := range evs {
		if strings.Contains(ev.Message+fmt.Sprint(ev.Properties), secret) {
			t.Fatalf("a lifecycle event holds the private key: %v", ev.Properties)
		}
	}
}

// TestLifecycleRecoveryOfTornTail: opening a log whose last batch was torn
// by a crash records what was cut.
func TestLifecycleRecoveryOfTornTail(t *testing.T) {
	cfs := vfs.NewCrashFS()
	s, err := New(WithWAL("/log", WithPrealloc(PreallocOff)), WithFileSystem(cfs))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := s.Write(context.Background(), &Event{MessageTemplate: "e"}); err != nil {
			t.Fatal(err)
		}
	}
	big := &Event{MessageTemplate: "big {Blob}", Properties: map[string]any{"Blob": strings.Repeat("x", 8<<10)}}
	if _, err := s.Write(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	// Tear the last batch as a crash does: its header sector written,
	// its last sectors not (zeros).
	names, _ := cfs.List("/log")
	var seg string
	for _, n := range names {
		if _, ok := wal.ParseSegmentName(n); ok {
			seg = "/log/" + n
		}
	}
	f, err := cfs.OpenReadWrite(seg)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := cfs.Stat(seg)
	const lost = 4 * wal.SectorSize
	if _, err := f.WriteAt(make([]byte, lost), st.Size()-lost); err != nil {
		t.Fatal(err)
	}
	f.Datasync()
	f.Close()
	crashed := cfs.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
	s.Close()

	s2, err := New(WithWAL("/log"), WithFileSystem(crashed), WithLifecycleEvents())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	evs := replayAll(t, s2)
	if got := kinds(evs); len(got) < 2 || got[0] != LifecycleRecovery || got[1] != LifecycleStart {
		t.Fatalf("lifecycle events %v; want recovery, start, ...", got)
	}
	if len(evs) < 4 || evs[3].Properties[LifecycleProperty] != LifecycleRecovery {
		t.Fatalf("the recovery event is not seq 4: %d events", len(evs))
	}
	rec := evs[3].Properties
	if b, _ := rec["Bytes"].(int64); b <= 0 || b > int64(st.Size()) {
		t.Fatalf("recovery event %v; want the bytes cut", rec)
	}
}

// TestLifecycleFailOpenSwitch: under WithFailOpen with lifecycle events,
// the first event dropped after writes succeeded and the first written
// after drops are recorded, the latter with the count of drops.
func TestLifecycleFailOpenSwitch(t *testing.T) {
	ffs := vfs.NewFaultFS(vfs.OS())
	s, err := New(WithWAL(t.TempDir()), WithFileSystem(ffs), WithFailOpen(), WithLifecycleEvents(), WithFailureHandler(func(*core.LogEvent, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	emit := func(msg string) {
		s.Emit(&core.LogEvent{Timestamp: time.Now(), MessageTemplate: msg, Properties: map[string]any{}})
	}
	emit("before")
	ffs.SetWriteBudget(0)
	emit("dropped 1")
	emit("dropped 2")
	ffs.SetWriteBudget(-1)
	emit("after")
	evs := replayAll(t, s)
	var msgs []string
	for _, ev := range evs {
		msgs = append(msgs, ev.MessageTemplate)
	}
	if got, want := kinds(evs), []string{"start", "config", "fail-closed"}; !slices.Equal(got, want) {
		// The fail-open event itself is dropped when the log cannot
		// write: the fail-closed event says so.
		t.Fatalf("lifecycle events %v; want %v (events %q)", got, want, msgs)
	}
	fc := evs[len(evs)-1].Properties
	if fc["Dropped"] != int64(2) || fc["FailOpenRecorded"] != false {
		t.Fatalf("fail-closed event %v; want Dropped 2, FailOpenRecorded false", fc)
	}
}

// TestLifecycleKeyRotation: RotateKeys records the rotation.
func TestLifecycleKeyRotation(t *testing.T) {
	s, err := New(WithWAL(t.TempDir()), WithKeyring(filepath.Join(t.TempDir(), "k"), nil), WithEncryption(), WithLifecycleEvents())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RotateKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := kinds(replayAll(t, s)); !slices.Contains(got, LifecycleKeyRotation) {
		t.Fatalf("lifecycle events %v lack %s", got, LifecycleKeyRotation)
	}
}

// TestFlaggedMetric: with WithMetrics, flagged events are exported as
// mtlog_audit_flagged_total.
func TestFlaggedMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := New(append(fullPCI(t, t.TempDir()), WithMetrics(reg), WithCompliance("PCI-DSS", compliance.OnMissingFields(compliance.Flag)))...)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 2 {
		if _, err := s.Write(context.Background(), &Event{MessageTemplate: "x", Properties: map[string]any{"Actor": "u"}}); err != nil {
			t.Fatal(err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "mtlog_audit_flagged_total" {
			if v := mf.GetMetric()[0].GetCounter().GetValue(); v != 2 {
				t.Fatalf("mtlog_audit_flagged_total = %v; want 2", v)
			}
			return
		}
	}
	t.Fatal("mtlog_audit_flagged_total is not exported")
}

// TestComplianceSetsRetentionPolicy: the profile's retention bounds govern
// deletion too (Sink.ApplyRetention), unless waived or set explicitly.
func TestComplianceSetsRetentionPolicy(t *testing.T) {
	cfg := func(opts ...Option) config {
		c := defaultConfig()
		for _, o := range opts {
			o(&c)
		}
		c.checkCompliance()
		return c
	}
	if got, want := cfg(WithCompliance("GDPR")).retentionPolicy, (compliance.RetentionPolicy{Name: "GDPR", Max: compliance.Year}); got != want {
		t.Errorf("GDPR: policy %+v, want %+v", got, want)
	}
	if got := cfg(WithCompliance("HIPAA")).retentionPolicy; got.Min != 6*compliance.Year || got.Name != "HIPAA" {
		t.Errorf("HIPAA: policy %+v, want a minimum of 6 years", got)
	}
	if got := cfg(WithCompliance("HIPAA", compliance.Waive(compliance.ReqRetentionMin, "kept by the records system"))).retentionPolicy; got.Min != 0 {
		t.Errorf("HIPAA with the minimum waived: policy %+v, want no minimum", got)
	}
	own := compliance.RetentionPolicy{Name: "house", Min: time.Hour}
	if got := cfg(WithRetentionPolicy(own), WithCompliance("HIPAA")).retentionPolicy; got != own {
		t.Errorf("an explicit policy: %+v, want %+v", got, own)
	}
}
