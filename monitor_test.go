package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/testutil"
	"github.com/willibrandon/mtlog-audit/monitoring"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog/core"
)

// scrape GETs /metrics from h and parses it with the Prometheus text
// parser, failing on any promlint problem.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil || len(problems) > 0 {
		t.Fatalf("promlint: %v %v", err, problems)
	}
	return mfs
}

// value returns the value of the sample of family name whose labels include
// the given name=value pairs; ok is false when there is none.
func value(mfs map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func want(t *testing.T, mfs map[string]*dto.MetricFamily, v float64, name string, labels ...string) {
	t.Helper()
	got, ok := value(mfs, name, labels...)
	if !ok {
		t.Fatalf("%s%v: missing", name, labels)
	}
	if got != v {
		t.Fatalf("%s%v = %v, want %v", name, labels, got, v)
	}
}

// health GETs path from h and decodes the JSON report.
func health(t *testing.T, h http.Handler, path string) (int, monitoring.Report) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	var r monitoring.Report
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatalf("%s: body is not a JSON report: %v\n%s", path, err, rec.Body)
	}
	return rec.Code, r
}

func checkDetail(r monitoring.Report, name string) string {
	for _, c := range r.Checks {
		if c.Name == name {
			return c.Detail
		}
	}
	return ""
}

// clock is a settable clock for WithClock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestMetricsScrape: a real scrape of a sink on the OS filesystem parses,
// passes promlint, and has every metric of docs/monitoring.md (the backend
// metrics only once a shipper exists) with the values the writes made.
func TestMetricsScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, _ := newSink(t, audit.WithMetrics(reg), audit.WithMaxEventSize(1024))
	h := audit.HealthHandler(s, audit.HealthOptions{})
	const n = 20
	for range n {
		if _, err := s.Write(context.Background(), &audit.Event{Timestamp: time.Now(), MessageTemplate: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Write(context.Background(), &audit.Event{MessageTemplate: strings.Repeat("x", 2000)}); !errors.Is(err, audit.ErrUnwritable) {
		t.Fatalf("oversized write: %v", err)
	}
	mfs := scrape(t, h)
	want(t, mfs, n, "mtlog_audit_writes_total", "outcome", "ok")
	want(t, mfs, 1, "mtlog_audit_writes_total", "outcome", "unwritable")
	want(t, mfs, 0, "mtlog_audit_writes_total", "outcome", "error")
	want(t, mfs, n+1, "mtlog_audit_write_duration_seconds")
	if got := mfs["mtlog_audit_batch_events"].Metric[0].Histogram.GetSampleSum(); got != n {
		t.Fatalf("batch_events sum %v, want %d", got, n)
	}
	if c, _ := value(mfs, "mtlog_audit_fsync_duration_seconds"); c < 1 || c > n {
		t.Fatalf("fsync_duration count %v, want 1..%d", c, n)
	}
	want(t, mfs, 0, "mtlog_audit_corruptions_total", "kind", monitoring.CorruptionVerifyDamage)
	want(t, mfs, 1, "mtlog_audit_recovery_success_rate")
	want(t, mfs, 1, "mtlog_audit_segments")
	if v, _ := value(mfs, "mtlog_audit_wal_size_bytes"); v <= 0 {
		t.Fatalf("wal_size_bytes %v", v)
	}
	want(t, mfs, 100, "mtlog_audit_integrity_score")
	want(t, mfs, 1, "mtlog_audit_state", "state", "ok")
	want(t, mfs, 0, "mtlog_audit_state", "state", "failed")
	want(t, mfs, 0, "mtlog_audit_dropped_total", "reason", "failed")
	if v, ok := value(mfs, "mtlog_audit_disk_free_ratio"); !ok || v <= 0 || v > 1 {
		t.Fatalf("disk_free_ratio %v %v", v, ok)
	}
	if _, ok := mfs["mtlog_audit_checkpoint_age_seconds"]; ok {
		t.Fatal("checkpoint_age_seconds exported for an unsigned log")
	}
	for _, name := range []string{"mtlog_audit_backend_up", "mtlog_audit_backend_quorum"} {
		if _, ok := mfs[name]; ok {
			t.Fatalf("%s exported without a shipper", name)
		}
	}
}

// TestMetricsOff: without WithMetrics the handler serves the health
// endpoints and says why /metrics is missing.
func TestMetricsOff(t *testing.T) {
	s, _ := newSink(t)
	h := audit.HealthHandler(s, audit.HealthOptions{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "WithMetrics") {
		t.Fatalf("/metrics without WithMetrics: %d %s", rec.Code, rec.Body)
	}
	code, r := health(t, h, "/readyz")
	if code != http.StatusOK || !strings.Contains(checkDetail(r, "commit"), "not tracked") {
		t.Fatalf("/readyz: %d %+v", code, r)
	}
	if _, err := audit.New(audit.WithWAL(t.TempDir()), audit.WithMetrics(nil)); !errors.Is(err, audit.ErrInvalidOption) {
		t.Fatalf("WithMetrics(nil): %v", err)
	}
}

// TestHealthEndpoints: /healthz and /readyz answer 200 with a JSON report
// for an open sink, /readyz fails below the free-space threshold, and both
// fail once the sink is closed; its metrics then say closed.
func TestHealthEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, _ := newSink(t, audit.WithMetrics(reg))
	h := audit.HealthHandler(s, audit.HealthOptions{})
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, r := health(t, h, p); code != http.StatusOK || r.Status != "ok" || r.State != monitoring.StateOK {
			t.Fatalf("%s: %d %+v", p, code, r)
		}
	}
	full := audit.HealthHandler(s, audit.HealthOptions{MinDiskFree: 1})
	if code, r := health(t, full, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(checkDetail(r, "disk_free"), "below") {
		t.Fatalf("/readyz with a 100%% threshold: %d %+v", code, r)
	}
	s.Close()
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, r := health(t, h, p); code != http.StatusServiceUnavailable || r.State != monitoring.StateClosed {
			t.Fatalf("%s after Close: %d %+v", p, code, r)
		}
	}
	want(t, scrape(t, h), 1, "mtlog_audit_state", "state", "closed")
	// The registry takes the metrics of the log opened again.
	s2, err := audit.New(audit.WithWAL(s.Dir()), audit.WithMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	want(t, scrape(t, audit.HealthHandler(s2, audit.HealthOptions{})), 1, "mtlog_audit_state", "state", "ok")
	// A second open sink on the same registry is refused.
	_, err = audit.New(audit.WithWAL(filepath.Join(t.TempDir(), "other")), audit.WithMetrics(reg))
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		t.Fatalf("second sink on one registry: %v", err)
	}
}

// TestHealthFailedAndFailOpen: a failed fdatasync makes /healthz and
// /readyz fail with the cause, the state gauge say failed (fail_open under
// WithFailOpen) and the integrity score 0; under WithFailOpen every event
// Emit gives up on is counted by reason.
func TestHealthFailedAndFailOpen(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		reg := prometheus.NewRegistry()
		opts := []audit.Option{audit.WithMetrics(reg), audit.WithFailureHandler(func(*core.LogEvent, error) {})}
		if failOpen {
			opts = append(opts, audit.WithFailOpen(), audit.WithMaxEventSize(512))
		}
		s, ffs := failingSink(t, opts...)
		h := audit.HealthHandler(s, audit.HealthOptions{})
		ffs.FailSyncs(syscall.EIO)
		if _, err := s.Write(context.Background(), &audit.Event{MessageTemplate: "lost"}); !errors.Is(err, audit.ErrFailed) {
			t.Fatalf("write with a failing fdatasync: %v", err)
		}
		state := monitoring.StateFailed
		if failOpen {
			state = monitoring.StateFailOpen
		}
		for _, p := range []string{"/healthz", "/readyz"} {
			code, r := health(t, h, p)
			if code != http.StatusServiceUnavailable || r.State != state || !strings.Contains(checkDetail(r, "state"), "fdatasync") {
				t.Fatalf("%s: %d %+v", p, code, r)
			}
		}
		mfs := scrape(t, h)
		want(t, mfs, 1, "mtlog_audit_state", "state", string(state))
		want(t, mfs, 0, "mtlog_audit_integrity_score")
		want(t, mfs, 1, "mtlog_audit_writes_total", "outcome", "error")
		if !failOpen {
			s.Close()
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s.Emit(&core.LogEvent{MessageTemplate: "dropped", Properties: map[string]any{}})
		_ = s.EmitEvent(context.Background(), &audit.Event{MessageTemplate: strings.Repeat("x", 1000)})
		_ = s.EmitEvent(ctx, &audit.Event{MessageTemplate: "timeout"})
		_ = s.EmitEvent(context.Background(), nil)
		s.Close()
		s.EmitSimple(time.Now(), core.InformationLevel, "after close")
		mfs = scrape(t, h)
		want(t, mfs, 1, "mtlog_audit_dropped_total", "reason", "failed")
		want(t, mfs, 2, "mtlog_audit_dropped_total", "reason", "unwritable")
		want(t, mfs, 1, "mtlog_audit_dropped_total", "reason", "timeout")
		want(t, mfs, 1, "mtlog_audit_dropped_total", "reason", "closed")
		want(t, mfs, 0, "mtlog_audit_dropped_total", "reason", "error")
	}
}

// TestReadyzCommitStall: while a write waits on an fdatasync that does not
// return, /readyz fails once the wait passes MaxCommitWait, and passes
// again when the commit is done.
func TestReadyzCommitStall(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)}
	s, g := gatedSink(t, audit.WithMetrics(prometheus.NewRegistry()), audit.WithClock(clk.now))
	h := audit.HealthHandler(s, audit.HealthOptions{MaxCommitWait: time.Minute})
	entered, open := g.arm()
	done := make(chan error, 1)
	go func() {
		_, err := s.Write(context.Background(), &audit.Event{MessageTemplate: "held"})
		done <- err
	}()
	<-entered
	if code, r := health(t, h, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz at once: %d %+v", code, r)
	}
	clk.add(2 * time.Minute)
	code, r := health(t, h, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(checkDetail(r, "commit"), "1 writes waiting") {
		t.Fatalf("/readyz with a commit held 2 minutes: %d %+v", code, r)
	}
	open()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if code, r := health(t, h, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after the commit: %d %+v", code, r)
	}
}

// TestIntegrityScoreCheckpointAge: a signed log whose newest checkpoint is
// older than 2 × the heartbeat scores 75, and checkpoint_age_seconds gives
// the age by the sink's clock.
func TestIntegrityScoreCheckpointAge(t *testing.T) {
	skey, _, err := integrity.GenerateKey("metrics.test")
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)}
	dir := filepath.Join(t.TempDir(), "audit")
	opts := []audit.Option{audit.WithWAL(dir), audit.WithSigningKey(skey), audit.WithClock(clk.now), audit.WithCheckpoints(1<<20, time.Hour, time.Hour)}
	s, err := audit.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(context.Background(), &audit.Event{MessageTemplate: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // signs the final checkpoint, at 12:00
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err = audit.New(append(opts, audit.WithMetrics(reg))...)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := audit.HealthHandler(s, audit.HealthOptions{})
	mfs := scrape(t, h)
	want(t, mfs, 100, "mtlog_audit_integrity_score")
	want(t, mfs, 0, "mtlog_audit_checkpoint_age_seconds")
	clk.add(2*time.Hour + time.Second)
	mfs = scrape(t, h)
	want(t, mfs, 75, "mtlog_audit_integrity_score")
	want(t, mfs, 7201, "mtlog_audit_checkpoint_age_seconds")
}

// TestCorruptionAndMirrorMetrics: damage that VerifyIntegrity finds is
// counted and lowers the score by 50; a mirror whose directory is gone is
// down and lowers it by 25 more.
func TestCorruptionAndMirrorMetrics(t *testing.T) {
	root := t.TempDir()
	dir, mirror := filepath.Join(root, "audit"), filepath.Join(root, "mirror")
	reg := prometheus.NewRegistry()
	s, err := audit.New(audit.WithWAL(dir), audit.WithRedundancy(mirror), audit.WithMetrics(reg), audit.WithFailureHandler(func(*core.LogEvent, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 10 {
		if _, err := s.Write(context.Background(), &audit.Event{Timestamp: time.Now(), MessageTemplate: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	h := audit.HealthHandler(s, audit.HealthOptions{})
	mfs := scrape(t, h)
	want(t, mfs, 1, "mtlog_audit_mirror_up", "mirror", mirror)
	want(t, mfs, 1, "mtlog_audit_recovery_success_rate")
	want(t, mfs, 100, "mtlog_audit_integrity_score")
	seg := filepath.Join(dir, "00000000000000000001.wal")
	testutil.XorByte(t, vfs.OS(), seg, 200, 0xff)
	if _, err := s.VerifyIntegrity(); !errors.Is(err, audit.ErrCorrupt) {
		t.Fatalf("VerifyIntegrity of a damaged log: %v", err)
	}
	mfs = scrape(t, h)
	want(t, mfs, 1, "mtlog_audit_corruptions_total", "kind", monitoring.CorruptionVerifyDamage)
	want(t, mfs, 50, "mtlog_audit_integrity_score")
	if err := os.RemoveAll(mirror); err != nil {
		t.Fatal(err)
	}
	mfs = scrape(t, h)
	want(t, mfs, 0, "mtlog_audit_mirror_up", "mirror", mirror)
	want(t, mfs, 0.5, "mtlog_audit_recovery_success_rate") // one copy of two
	want(t, mfs, 25, "mtlog_audit_integrity_score")
}
