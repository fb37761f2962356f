package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Errors of a scrape, for errors.Is.
var (
	// ErrUnreachable: the metrics URL could not be fetched (refused,
	// timed out, not HTTP) or answered with a status other than 200.
	ErrUnreachable = errors.New("monitor: metrics endpoint unreachable")
	// ErrNotMetrics: the answer is not the Prometheus text format, or
	// holds no mtlog_audit_ metric.
	ErrNotMetrics = errors.New("monitor: not an mtlog-audit metrics endpoint")
)

// The thresholds of the monitor's own alerts (MetricsStatus.Alerts).
const (
	// FsyncP99Alert is the fsync p99 at or above which AuditFsyncSlow
	// fires (a p99 in the +Inf bucket reads as the highest finite bound).
	FsyncP99Alert = 0.1
	// DiskWarnRatio and DiskCriticalRatio are the free-space ratios below
	// which AuditDiskAbove80 and AuditDiskAbove95 fire.
	DiskWarnRatio     = 0.20
	DiskCriticalRatio = 0.05
)

// maxBody bounds what a scrape reads: a /metrics page of this sink is a
// few kilobytes.
const maxBody = 16 << 20

// MetricsStatus is what a scrape of a process's /metrics read. A pointer
// field is nil when the process does not export the metric.
type MetricsStatus struct {
	// State is the sink's state: "ok", "failed", "fail_open" or
	// "closed" (the mtlog_audit_state gauge at 1), "" if not exported.
	State string `json:"state"`
	// Writes counts Sink.Write calls by outcome (ok, error, unwritable);
	// WritesPerSecond is the rate of ok writes since the previous scrape
	// (absent at the first).
	Writes          map[string]float64 `json:"writes"`
	WritesPerSecond *float64           `json:"writes_per_second,omitempty"`
	// AckP50Seconds and AckP99Seconds are quantiles of the write
	// duration histogram, FsyncP99Seconds of the fsync duration one:
	// over the writes since the previous scrape when there were any,
	// otherwise over every write since the process started.
	AckP50Seconds   *float64 `json:"ack_p50_seconds,omitempty"`
	AckP99Seconds   *float64 `json:"ack_p99_seconds,omitempty"`
	FsyncP99Seconds *float64 `json:"fsync_p99_seconds,omitempty"`
	// Dropped counts events not recorded under fail-open, by reason;
	// Corruptions counts damage found, by kind.
	Dropped              map[string]float64 `json:"dropped"`
	Corruptions          map[string]float64 `json:"corruptions"`
	IntegrityScore       *float64           `json:"integrity_score,omitempty"`
	RecoverySuccessRate  *float64           `json:"recovery_success_rate,omitempty"`
	WALSizeBytes         *float64           `json:"wal_size_bytes,omitempty"`
	Segments             *float64           `json:"segments,omitempty"`
	CheckpointAgeSeconds *float64           `json:"checkpoint_age_seconds,omitempty"`
	DiskFreeRatio        *float64           `json:"disk_free_ratio,omitempty"`
	// Mirrors is each WithRedundancy copy and whether it is up, by name.
	Mirrors  []MirrorInfo  `json:"mirrors"`
	Backends []BackendInfo `json:"backends"`
	Quorum   *bool         `json:"backend_quorum,omitempty"`
	// Alerts are the conditions of docs/monitoring.md that hold in this
	// scrape, as the monitor judges them (Prometheus evaluates the alert
	// rules on its own).
	Alerts []Alert `json:"alerts"`
}

// MirrorInfo is one WithRedundancy copy.
type MirrorInfo struct {
	Name string `json:"name"`
	Up   bool   `json:"up"`
}

// BackendInfo is one shipping backend.
type BackendInfo struct {
	Name        string   `json:"name"`
	Up          bool     `json:"up"`
	LagSegments *float64 `json:"lag_segments,omitempty"`
	LagBytes    *float64 `json:"lag_bytes,omitempty"`
}

// Alert is one alert condition that holds.
type Alert struct {
	Name   string `json:"name"`
	Detail string `json:"detail"`
}

// Scraper reads a process's /metrics endpoint. Scrape keeps the previous
// answer to give rates and recent quantiles; it is not safe for concurrent
// use.
type Scraper struct {
	url    string
	client *http.Client
	now    func() time.Time
	prev   *scrape
}

// scrape is one parsed answer.
type scrape struct {
	t   time.Time
	fam map[string]*dto.MetricFamily
}

// NewScraper returns a Scraper of url with client (nil: a client with a
// 5 s timeout) and clock now (nil: time.Now).
func NewScraper(url string, client *http.Client, now func() time.Time) *Scraper {
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	if now == nil {
		now = time.Now
	}
	return &Scraper{url: url, client: client, now: now}
}

// Scrape fetches and reads the endpoint once. On failure the Snapshot
// says what went wrong (StatusError) and the error matches ErrUnreachable
// or ErrNotMetrics.
func (s *Scraper) Scrape(ctx context.Context) (Snapshot, error) {
	now := s.now()
	snap := Snapshot{Source: "metrics", Target: s.url, Time: now.UTC(), Status: StatusOK}
	fam, err := s.fetch(ctx)
	if err != nil {
		snap.Status = StatusError
		snap.Problems = []string{err.Error()}
		return snap, err
	}
	cur := &scrape{t: now, fam: fam}
	snap.Metrics = read(cur, s.prev)
	s.prev = cur
	if len(snap.Metrics.Alerts) > 0 {
		snap.Status = StatusWarning
		for _, a := range snap.Metrics.Alerts {
			snap.Problems = append(snap.Problems, a.Name+": "+a.Detail)
		}
	}
	return snap, nil
}

func (s *Scraper) fetch(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnreachable, s.url, err)
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w: is the process running, and is --metrics the address of its /metrics handler?", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s answered %s: give the URL of the process's /metrics handler", ErrUnreachable, s.url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fam, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("%w: %s did not answer in the Prometheus text format (%w): give the URL of the process's /metrics handler", ErrNotMetrics, s.url, err)
	}
	for name := range fam {
		if strings.HasPrefix(name, "mtlog_audit_") {
			return fam, nil
		}
	}
	return nil, fmt.Errorf("%w: %s serves Prometheus metrics but none named mtlog_audit_*: is audit.WithMetrics set on the sink, and its registry served there?", ErrNotMetrics, s.url)
}

// read turns a scrape (and the one before, nil at the first) into a
// MetricsStatus.
func read(cur, prev *scrape) *MetricsStatus {
	m := &MetricsStatus{
		Writes:      byLabel(cur.fam["mtlog_audit_writes_total"], "outcome"),
		Dropped:     byLabel(cur.fam["mtlog_audit_dropped_total"], "reason"),
		Corruptions: byLabel(cur.fam["mtlog_audit_corruptions_total"], "kind"),
		Mirrors:     []MirrorInfo{},
		Backends:    []BackendInfo{},
		Alerts:      []Alert{},
	}
	for st, v := range byLabel(cur.fam["mtlog_audit_state"], "state") {
		if v == 1 {
			m.State = st
		}
	}
	if prev != nil {
		if dt := cur.t.Sub(prev.t).Seconds(); dt > 0 {
			was := byLabel(prev.fam["mtlog_audit_writes_total"], "outcome")
			r := max(0, m.Writes["ok"]-was["ok"]) / dt
			m.WritesPerSecond = &r
		}
	}
	var prevFam map[string]*dto.MetricFamily
	if prev != nil {
		prevFam = prev.fam
	}
	ack := recent(cur.fam["mtlog_audit_write_duration_seconds"], prevFam["mtlog_audit_write_duration_seconds"])
	m.AckP50Seconds, m.AckP99Seconds = quantile(0.5, ack), quantile(0.99, ack)
	m.FsyncP99Seconds = quantile(0.99, recent(cur.fam["mtlog_audit_fsync_duration_seconds"], prevFam["mtlog_audit_fsync_duration_seconds"]))
	m.IntegrityScore = gauge(cur.fam["mtlog_audit_integrity_score"])
	m.RecoverySuccessRate = gauge(cur.fam["mtlog_audit_recovery_success_rate"])
	m.WALSizeBytes = gauge(cur.fam["mtlog_audit_wal_size_bytes"])
	m.Segments = gauge(cur.fam["mtlog_audit_segments"])
	m.CheckpointAgeSeconds = gauge(cur.fam["mtlog_audit_checkpoint_age_seconds"])
	m.DiskFreeRatio = gauge(cur.fam["mtlog_audit_disk_free_ratio"])
	mirrors := byLabel(cur.fam["mtlog_audit_mirror_up"], "mirror")
	for _, name := range sortedKeys(mirrors) {
		m.Mirrors = append(m.Mirrors, MirrorInfo{name, mirrors[name] == 1})
	}
	up := byLabel(cur.fam["mtlog_audit_backend_up"], "backend")
	lagSeg := byLabel(cur.fam["mtlog_audit_backend_lag_segments"], "backend")
	lagBytes := byLabel(cur.fam["mtlog_audit_backend_lag_bytes"], "backend")
	for _, name := range sortedKeys(up) {
		b := BackendInfo{Name: name, Up: up[name] == 1}
		if v, ok := lagSeg[name]; ok {
			b.LagSegments = &v
		}
		if v, ok := lagBytes[name]; ok {
			b.LagBytes = &v
		}
		m.Backends = append(m.Backends, b)
	}
	if q := gauge(cur.fam["mtlog_audit_backend_quorum"]); q != nil {
		ok := *q == 1
		m.Quorum = &ok
	}
	var prevDropped map[string]float64
	if prev != nil {
		prevDropped = byLabel(prev.fam["mtlog_audit_dropped_total"], "reason")
	}
	m.Alerts = alerts(m, prevDropped)
	return m
}

// alerts judges the alert conditions of docs/monitoring.md on m.
// prevDropped is the previous scrape's dropped counts (nil at the first:
// then any drop counts).
func alerts(m *MetricsStatus, prevDropped map[string]float64) []Alert {
	out := []Alert{}
	add := func(name, format string, a ...any) {
		out = append(out, Alert{Name: name, Detail: fmt.Sprintf(format, a...)})
	}
	switch m.State {
	case "failed":
		add("AuditLoggingFailed", "the sink is failed: writes are refused; see the process's log for the cause")
	case "fail_open":
		add("AuditSinkFailOpen", "the sink failed open: events are accepted but not recorded")
	}
	var dropped float64
	for r, v := range m.Dropped {
		dropped += max(0, v-prevDropped[r])
	}
	if dropped > 0 {
		add("AuditEventsDropped", "%g event(s) dropped under fail-open since the last scrape (by reason: %s)", dropped, labels(m.Dropped))
	}
	if p := m.FsyncP99Seconds; p != nil && *p >= FsyncP99Alert {
		add("AuditFsyncSlow", "fsync p99 %s is at or above %s", seconds(*p), seconds(FsyncP99Alert))
	}
	if r := m.DiskFreeRatio; r != nil {
		switch {
		case *r < DiskCriticalRatio:
			add("AuditDiskAbove95", "the log's disk is %.1f%% full", 100*(1-*r))
		case *r < DiskWarnRatio:
			add("AuditDiskAbove80", "the log's disk is %.1f%% full", 100*(1-*r))
		}
	}
	var corrupt float64
	for _, v := range m.Corruptions {
		corrupt += v
	}
	if corrupt > 0 {
		add("AuditCorruptionDetected", "%g corruption(s) found (by kind: %s): run 'mtlog-audit verify'", corrupt, labels(m.Corruptions))
	}
	for _, mi := range m.Mirrors {
		if !mi.Up {
			add("AuditMirrorLost", "mirror %s is down", mi.Name)
		}
	}
	for _, b := range m.Backends {
		if !b.Up {
			add("AuditBackendDown", "backend %s is down", b.Name)
		}
	}
	if m.Quorum != nil && !*m.Quorum {
		add("AuditBackendQuorumLost", "the shipping backends have no quorum")
	}
	if s := m.IntegrityScore; s != nil && *s < 100 {
		add("AuditIntegrityDegraded", "integrity score %g (100 is clean and checkpointed)", *s)
	}
	return out
}

// byLabel returns the value of each series of a counter or gauge family by
// the value of label.
func byLabel(f *dto.MetricFamily, label string) map[string]float64 {
	out := map[string]float64{}
	if f == nil {
		return out
	}
	for _, m := range f.GetMetric() {
		key := ""
		for _, lp := range m.GetLabel() {
			if lp.GetName() == label {
				key = lp.GetValue()
			}
		}
		out[key] += value(m)
	}
	return out
}

// gauge returns the value of a family's only (or first) series.
func gauge(f *dto.MetricFamily) *float64 {
	if f == nil || len(f.GetMetric()) == 0 {
		return nil
	}
	v := value(f.GetMetric()[0])
	return &v
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	}
	return math.NaN()
}

// bucket is one cumulative histogram bucket.
type bucket struct {
	upper float64
	count float64
}

// buckets returns the cumulative buckets of a histogram family, summed
// over its series, in order of upper bound (+Inf last).
func buckets(f *dto.MetricFamily) []bucket {
	if f == nil {
		return nil
	}
	sum := map[float64]float64{}
	for _, m := range f.GetMetric() {
		h := m.GetHistogram()
		if h == nil {
			continue
		}
		inf := false
		for _, b := range h.GetBucket() {
			sum[b.GetUpperBound()] += float64(b.GetCumulativeCount())
			inf = inf || math.IsInf(b.GetUpperBound(), 1)
		}
		if !inf {
			sum[math.Inf(1)] += float64(h.GetSampleCount())
		}
	}
	out := make([]bucket, 0, len(sum))
	for u, c := range sum {
		out = append(out, bucket{u, c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].upper < out[j].upper })
	return out
}

// recent returns the buckets of cur minus those of prev when observations
// were made between them, else cur's.
func recent(cur, prev *dto.MetricFamily) []bucket {
	c, p := buckets(cur), buckets(prev)
	if len(c) == 0 || len(p) != len(c) || c[len(c)-1].count <= p[len(p)-1].count {
		return c
	}
	d := make([]bucket, len(c))
	for i := range c {
		if c[i].upper != p[i].upper {
			return c
		}
		d[i] = bucket{c[i].upper, c[i].count - p[i].count}
	}
	return d
}

// quantile estimates the q-quantile of cumulative buckets as Prometheus's
// histogram_quantile does: linearly within the bucket that holds it, and
// the highest finite bound when it falls in the +Inf bucket. It is nil
// without observations.
func quantile(q float64, bs []bucket) *float64 {
	if len(bs) == 0 || bs[len(bs)-1].count <= 0 {
		return nil
	}
	rank := q * bs[len(bs)-1].count
	i := slices.IndexFunc(bs, func(b bucket) bool { return b.count >= rank })
	var v float64
	switch {
	case math.IsInf(bs[i].upper, 1):
		v = 0
		if i > 0 {
			v = bs[i-1].upper
		}
	default:
		lo, below := 0.0, 0.0
		if i > 0 {
			lo, below = bs[i-1].upper, bs[i-1].count
		}
		v = bs[i].upper
		if n := bs[i].count - below; n > 0 {
			v = lo + (bs[i].upper-lo)*(rank-below)/n
		}
	}
	return &v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// labels formats counts by label as "a=1, b=2", leaving out zeros.
func labels(m map[string]float64) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		if m[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s=%g", k, m[k]))
		}
	}
	return strings.Join(parts, ", ")
}
