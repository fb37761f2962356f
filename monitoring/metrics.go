package monitoring

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/willibrandon/mtlog-audit/wal"
)

// Outcome is the outcome of one Sink.Write (the outcome label of
// mtlog_audit_writes_total).
type Outcome int

// The outcomes of a write.
const (
	// OutcomeOK: acknowledged.
	OutcomeOK Outcome = iota
	// OutcomeError: not acknowledged (the log failed, a write error such
	// as a full disk, the context ended, or the sink was closed).
	OutcomeError
	// OutcomeUnwritable: refused before it reached the log (nil, too large
	// or unencodable, or a malformed idempotency key).
	OutcomeUnwritable
)

var outcomeLabels = [...]string{"ok", "error", "unwritable"}

// DropReason says why Emit gave up on an event (the reason label of
// mtlog_audit_dropped_total).
type DropReason int

// The reasons an event is dropped.
const (
	// DropFailed: the log is in its failed state.
	DropFailed DropReason = iota
	// DropUnwritable: the event can never be written (nil, too large,
	// unencodable, malformed idempotency key).
	DropUnwritable
	// DropClosed: the sink was closed.
	DropClosed
	// DropTimeout: the caller's context ended first.
	DropTimeout
	// DropError: any other write error, such as a full disk.
	DropError
)

var dropLabels = [...]string{"failed", "unwritable", "closed", "timeout", "error"}

// The kinds of corruption (the kind label of mtlog_audit_corruptions_total).
const (
	// CorruptionMirrorRepair: a copy of the log that New found damaged and
	// repaired from another copy (WithRedundancy), one per such copy.
	CorruptionMirrorRepair = "mirror_repair"
	// CorruptionVerifyDamage: Sink.VerifyIntegrity found damaged bytes
	// (errors matching ErrCorrupt).
	CorruptionVerifyDamage = "verify_damage"
	// CorruptionVerifyIntegrity: Sink.VerifyIntegrity found any other
	// integrity problem (a hash chain, Merkle root or signature that does
	// not match).
	CorruptionVerifyIntegrity = "verify_integrity"
)

var corruptionKinds = [...]string{CorruptionMirrorRepair, CorruptionVerifyDamage, CorruptionVerifyIntegrity}

// Buckets of the latency histograms, in seconds: 0.1 ms to 1 s, dense
// between 0.1 and 100 ms.
var latencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}

// Buckets of the batch-size histogram, in events: 1 to 4096, doubling.
var batchBuckets = prometheus.ExponentialBuckets(1, 2, 13)

// Metrics holds one sink's metrics. Make it with New, register it with
// Register; the sink then reports its writes, commits, drops and
// corruptions through the methods, all safe for concurrent use, and
// gauges are computed from Source.Status at each scrape.
type Metrics struct {
	src Source
	now func() time.Time

	writesVec *prometheus.CounterVec
	writes    [len(outcomeLabels)]prometheus.Counter
	writeDur  prometheus.Histogram
	fsyncDur  prometheus.Histogram
	batch     prometheus.Histogram
	corrupt   *prometheus.CounterVec
	dropsVec  *prometheus.CounterVec
	drops     [len(dropLabels)]prometheus.Counter

	corrupted  atomic.Bool
	inFlight   atomic.Int64
	lastCommit atomic.Int64 // unix nanoseconds
	closed     atomic.Bool

	recoveryDesc, walSize, segments, score, cpAge, state, diskFree, mirrorUp *prometheus.Desc
	backendUp, backendLagSeg, backendLagBytes, backendQuorum                 *prometheus.Desc
	flagged                                                                  *prometheus.Desc
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("mtlog_audit_"+name, help, labels, nil)
}

// New makes the metrics of the sink src; now is the sink's clock (nil:
// time.Now).
func New(src Source, now func() time.Time) *Metrics {
	if now == nil {
		now = time.Now
	}
	m := &Metrics{
		src: src,
		now: now,
		writesVec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mtlog_audit_writes_total",
			Help: "Sink.Write calls by outcome: ok (acknowledged), error (not acknowledged), unwritable (refused before the log)."}, []string{"outcome"}),
		writeDur: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mtlog_audit_write_duration_seconds",
			Help: "Time from calling Sink.Write to its return, whatever the outcome.", Buckets: latencyBuckets}),
		fsyncDur: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mtlog_audit_fsync_duration_seconds",
			Help: "Duration of each group commit's fdatasync (SyncDurable mode).", Buckets: latencyBuckets}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mtlog_audit_batch_events",
			Help: "Events written by each group commit.", Buckets: batchBuckets}),
		corrupt: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mtlog_audit_corruptions_total",
			Help: "Corruption found since the sink opened, by kind: mirror_repair, verify_damage, verify_integrity."}, []string{"kind"}),
		dropsVec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mtlog_audit_dropped_total",
			Help: "Events that Emit, EmitSimple or EmitEvent returned without recording, by reason."}, []string{"reason"}),
		recoveryDesc:    desc("recovery_success_rate", "Share of the log's copies (the primary and each mirror) that are whole and in step now, 0 to 1: opening recovered them, and none was lost or failed since."),
		walSize:         desc("wal_size_bytes", "Bytes in the log's segment files."),
		segments:        desc("segments", "Segment files in the log directory."),
		score:           desc("integrity_score", "100 when the log is healthy; see docs/monitoring.md for what lowers it."),
		cpAge:           desc("checkpoint_age_seconds", "Age of the newest signed checkpoint (absent for an unsigned log)."),
		state:           desc("state", "1 for the sink's current state, 0 for the others.", "state"),
		diskFree:        desc("disk_free_ratio", "Free space available to unprivileged users on the log directory's filesystem, 0 to 1."),
		mirrorUp:        desc("mirror_up", "1 when the WithRedundancy copy holds the newest segment file, 0 when not.", "mirror"),
		backendUp:       desc("backend_up", "1 when the shipping backend accepted the last attempt.", "backend"),
		backendLagSeg:   desc("backend_lag_segments", "Segments in the log not yet acknowledged by the backend.", "backend"),
		backendLagBytes: desc("backend_lag_bytes", "Bytes in the log not yet acknowledged by the backend.", "backend"),
		backendQuorum:   desc("backend_quorum", "1 when enough backends are up for the shipper's quorum."),
		flagged:         desc("flagged_total", "Events stored since the sink opened with the marker of missing required fields (compliance profile that flags)."),
	}
	for i, l := range outcomeLabels {
		m.writes[i] = m.writesVec.WithLabelValues(l)
	}
	for i, l := range dropLabels {
		m.drops[i] = m.dropsVec.WithLabelValues(l)
	}
	for _, k := range corruptionKinds {
		m.corrupt.WithLabelValues(k)
	}
	m.lastCommit.Store(now().UnixNano())
	return m
}

// Register registers m on reg (one collector). A Metrics of a closed sink
// already registered there is replaced, so that a log closed and opened
// again can use the same registry; any other conflict is an error
// (matching prometheus.AlreadyRegisteredError): to register two open sinks
// on one registry, wrap it with prometheus.WrapRegistererWith and a label
// that tells them apart.
func (m *Metrics) Register(reg prometheus.Registerer) error {
	err := reg.Register(m)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if old, ok := are.ExistingCollector.(*Metrics); ok && old.closed.Load() {
			reg.Unregister(old)
			err = reg.Register(m)
		}
	}
	if err != nil {
		return fmt.Errorf("monitoring: register the sink's metrics: %w", err)
	}
	return nil
}

// Close marks the sink closed: its metrics stay registered (the state
// gauge says closed) until Register replaces them.
func (m *Metrics) Close() { m.closed.Store(true) }

// WriteStart is called when Sink.Write begins; pass what it returns to
// WriteDone.
func (m *Metrics) WriteStart() time.Time {
	m.inFlight.Add(1)
	return time.Now()
}

// WriteDone is called when a Sink.Write that began at start returns.
func (m *Metrics) WriteDone(start time.Time, o Outcome) {
	m.writeDur.Observe(time.Since(start).Seconds())
	m.writes[o].Inc()
	m.inFlight.Add(-1)
}

// ObserveBatch is the log's wal.Options.OnBatch hook.
func (m *Metrics) ObserveBatch(b wal.BatchStats) {
	m.batch.Observe(float64(b.Records))
	if b.Synced {
		m.fsyncDur.Observe(b.Sync.Seconds())
	}
	m.lastCommit.Store(m.now().UnixNano())
}

// Dropped counts an event that Emit gave up on.
func (m *Metrics) Dropped(r DropReason) { m.drops[r].Inc() }

// Corruption counts n findings of corruption of the given kind (one of the
// Corruption constants).
func (m *Metrics) Corruption(kind string, n int) {
	if n <= 0 {
		return
	}
	m.corrupt.WithLabelValues(kind).Add(float64(n))
	m.corrupted.Store(true)
}

// Track fills in what m tracks of st: the writes in flight and the last
// commit.
func (m *Metrics) Track(st *Status) {
	st.Tracked = true
	st.InFlight = m.inFlight.Load()
	st.LastCommit = time.Unix(0, m.lastCommit.Load())
}

// counted returns the collectors of the counters and histograms.
func (m *Metrics) counted() []prometheus.Collector {
	return []prometheus.Collector{m.writesVec, m.writeDur, m.fsyncDur, m.batch, m.corrupt, m.dropsVec}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.counted() {
		c.Describe(ch)
	}
	for _, d := range []*prometheus.Desc{m.recoveryDesc, m.walSize, m.segments, m.score, m.cpAge, m.state, m.diskFree, m.mirrorUp,
		m.backendUp, m.backendLagSeg, m.backendLagBytes, m.backendQuorum, m.flagged} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the counters and histograms as
// they stand, and the gauges computed from the Source's Status now.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.counted() {
		c.Collect(ch)
	}
	st := m.src.Status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(m.recoveryDesc, RecoveryRate(st))
	gauge(m.walSize, float64(st.WALBytes))
	gauge(m.segments, float64(st.Segments))
	gauge(m.score, IntegrityScore(st, m.corrupted.Load()))
	if st.Signed && !st.Checkpoint.IsZero() {
		gauge(m.cpAge, max(0, st.Now.Sub(st.Checkpoint).Seconds()))
	}
	for _, s := range States {
		gauge(m.state, b2f(s == st.State), string(s))
	}
	if st.DiskErr == nil {
		gauge(m.diskFree, st.DiskFree)
	}
	for _, mr := range st.Mirrors {
		gauge(m.mirrorUp, b2f(mr.Up), mr.Dir)
	}
	for _, b := range st.Backends {
		gauge(m.backendUp, b2f(b.Up), b.Name)
		gauge(m.backendLagSeg, float64(b.LagSegments), b.Name)
		gauge(m.backendLagBytes, float64(b.LagBytes), b.Name)
	}
	if st.HasQuorum {
		gauge(m.backendQuorum, b2f(st.Quorum))
	}
	ch <- prometheus.MustNewConstMetric(m.flagged, prometheus.CounterValue, float64(st.Flagged))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
