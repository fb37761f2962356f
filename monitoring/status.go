// Package monitoring exports the health of an audit sink as Prometheus
// metrics and as HTTP health endpoints (/metrics, /healthz, /readyz).
//
// The audit package uses it: audit.WithMetrics registers a Metrics on a
// prometheus.Registerer, and audit.HealthHandler serves a Handler for a
// Sink. The metric names are fixed; docs/monitoring.md defines each one,
// the integrity score, the readiness checks and the alert rules built on
// them. Nothing here registers anything globally, and nothing runs when no
// Metrics is made.
package monitoring

import "time"

// State is the state of a sink, as the mtlog_audit_state gauge labels it.
type State string

// The states of a sink.
const (
	// StateOK: the log takes writes.
	StateOK State = "ok"
	// StateFailed: the log is in its failed state (a failed fdatasync, or
	// its directory removed or replaced) and the failure policy does not
	// let the application go on: Emit blocks (or panics). Reopening the log
	// is the only way out.
	StateFailed State = "failed"
	// StateFailOpen: the log is in its failed state and the sink was opened
	// with WithFailOpen, so the application goes on and every audit event
	// is dropped (mtlog_audit_dropped_total counts them).
	StateFailOpen State = "fail_open"
	// StateClosed: the sink was closed.
	StateClosed State = "closed"
)

// States lists every State, in the order the state gauge exports them.
var States = []State{StateOK, StateFailed, StateFailOpen, StateClosed}

// Status is what a Source reports when it is scraped or asked for its
// health. Fields that cannot be known are marked so (see each).
type Status struct {
	// State is the sink's state, and Cause the error behind a failed or
	// closed state (nil otherwise).
	State State
	Cause error
	// WALBytes is the size of the log's segment files, and Segments their
	// number.
	WALBytes int64
	Segments int
	// DiskFree is the ratio of free space (available to unprivileged
	// users) on the log directory's filesystem, from 0 to 1. DiskErr is set
	// instead when it could not be read (for instance a log on an
	// in-memory test filesystem).
	DiskFree float64
	DiskErr  error
	// Signed is set when the log signs checkpoints. Checkpoint is then the
	// time of the newest stored signed checkpoint (zero if none yet), and
	// CheckpointEvery the longest gap expected between two (the
	// heartbeat of WithCheckpoints: an idle log signs one at least that
	// often).
	Signed          bool
	Checkpoint      time.Time
	CheckpointEvery time.Duration
	// Mirrors is the state of each WithRedundancy copy.
	Mirrors []MirrorStatus
	// Backends is the state of each shipping backend (empty without
	// WithShipping), and Quorum whether enough of them are up; HasQuorum
	// is set only when the sink ships.
	Backends  []BackendStatus
	Quorum    bool
	HasQuorum bool
	// Tracked is set when the sink counts its writes (WithMetrics); only
	// then are InFlight, the number of Sink.Write calls not yet returned,
	// and LastCommit, when the last group commit was acknowledged (or the
	// sink opened, before any), known.
	Tracked    bool
	InFlight   int64
	LastCommit time.Time
	// Flagged is the number of events stored since the sink opened with
	// the marker of missing required fields (a compliance profile that
	// flags rather than rejects them).
	Flagged uint64
	// Now is the time of the report, and Opened the time the sink opened,
	// by the sink's clock (WithClock).
	Now    time.Time
	Opened time.Time
}

// MirrorStatus is one WithRedundancy copy of the log.
type MirrorStatus struct {
	// Dir is the mirror's directory.
	Dir string
	// Up is set when the mirror's copy of the newest segment file can be
	// found (a stat of it succeeds); Err says why not otherwise.
	Up  bool
	Err error
}

// BackendStatus is one shipping backend's state, as a shipper reports it.
type BackendStatus struct {
	// Name names the backend (the backend label).
	Name string
	// Up is set when the backend accepted the shipper's last attempt.
	Up bool
	// LagSegments and LagBytes are how far the backend is behind the log:
	// the segments, and their bytes, that are in the log and not yet
	// acknowledged by the backend.
	LagSegments int64
	LagBytes    int64
}

// Source is what the metrics and the health endpoints read: an audit.Sink.
// Status must be safe for concurrent use and must not write to the log.
type Source interface {
	Status() Status
}

// RecoveryRate is the share of the log's copies, the primary and each
// WithRedundancy mirror, that are whole and in step now, 0 to 1: the
// primary counts while the log is not in its failed state (StateFailed or
// StateFailOpen: a failed fdatasync or a removed directory, which only
// reopening recovers), and each mirror while it is Up. A sink exists only
// once opening recovered every copy, so it starts at 1; a mirror lost or a
// failed log lowers it until the next open repairs them.
func RecoveryRate(st Status) float64 {
	whole := 0
	if st.State != StateFailed && st.State != StateFailOpen {
		whole++
	}
	for _, m := range st.Mirrors {
		if m.Up {
			whole++
		}
	}
	return float64(whole) / float64(1+len(st.Mirrors))
}

// IntegrityScore is mtlog_audit_integrity_score for st, given whether any
// corruption was found since the sink opened (docs/monitoring.md):
//
//   - 0 when the log is in its failed state (StateFailed, StateFailOpen);
//   - otherwise 100, less 50 if corruption was found, less 25 if the log
//     is signed and its newest checkpoint is older than 2 × CheckpointEvery
//     (or none was stored in the 2 × CheckpointEvery since the sink
//     opened), and less 25 if any mirror is down.
func IntegrityScore(st Status, corrupted bool) float64 {
	if st.State == StateFailed || st.State == StateFailOpen {
		return 0
	}
	score := 100.0
	if corrupted {
		score -= 50
	}
	if st.Signed && checkpointStale(st) {
		score -= 25
	}
	for _, m := range st.Mirrors {
		if !m.Up {
			score -= 25
			break
		}
	}
	return score
}

// checkpointStale reports whether a signed log's newest checkpoint is older
// than twice the longest expected gap (measured from the opening when none
// is stored).
func checkpointStale(st Status) bool {
	ref := st.Checkpoint
	if ref.IsZero() {
		ref = st.Opened
	}
	return st.Now.Sub(ref) > 2*st.CheckpointEvery
}

// SourceFunc adapts a function to a Source.
type SourceFunc func() Status

// Status calls f.
func (f SourceFunc) Status() Status { return f() }
