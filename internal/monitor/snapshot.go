// Package monitor is the model behind 'mtlog-audit monitor': it watches an
// audit log, read-only, or a running process's Prometheus /metrics
// endpoint, and gives a Snapshot of what it sees. The terminal UI (Model)
// and the --once output render Snapshots; docs/monitoring.md describes
// every field.
//
// A WAL watcher never writes to the log's directory: it opens files
// read-only, creates none, and takes no lock (it only probes the sink's
// lock with a shared, non-blocking flock that it releases at once).
package monitor

import "time"

// Status is the overall state of a Snapshot.
type Status string

// The statuses of a Snapshot, from good to bad.
const (
	// StatusOK: nothing wrong was seen.
	StatusOK Status = "ok"
	// StatusStarting: the watcher has not read to the end of the log yet
	// (or has not scraped once).
	StatusStarting Status = "starting"
	// StatusWarning: something needs attention (an alert fires, a record
	// cannot be decoded, a checkpoint could not be checked).
	StatusWarning Status = "warning"
	// StatusDamaged: the log is damaged or altered: records do not verify,
	// or do not reproduce a stored checkpoint's root.
	StatusDamaged Status = "damaged"
	// StatusError: the source cannot be read (the directory went away,
	// the metrics endpoint refuses or answers garbage).
	StatusError Status = "error"
)

// Snapshot is what the monitor shows at one moment. Exactly one of WAL and
// Metrics is set, by the source. Its JSON form is what 'monitor --once
// --json' prints (snake_case keys).
type Snapshot struct {
	Source string    `json:"source"` // "wal" or "metrics"
	Target string    `json:"target"` // the log's directory or the metrics URL
	Time   time.Time `json:"time"`
	Status Status    `json:"status"`
	// Problems says, one line each, what is wrong and what to do.
	Problems []string       `json:"problems,omitempty"`
	WAL      *WALStatus     `json:"wal,omitempty"`
	Metrics  *MetricsStatus `json:"metrics,omitempty"`
}

// WALStatus is what a WAL watcher read from the log's directory.
type WALStatus struct {
	// Live reports whether a process holds the log's lock (a running
	// sink), and LockOwner who, as the LOCK file names it.
	Live      bool   `json:"live"`
	LockOwner string `json:"lock_owner,omitempty"`
	// Records and Events count what was read since the watcher started,
	// from the log's first record; LastSeq is the last record's sequence
	// number.
	Records uint64 `json:"records"`
	Events  uint64 `json:"events"`
	LastSeq uint64 `json:"last_seq"`
	// EventsPerSecond is the rate of new events over the last
	// RateWindowSeconds (events already in the log when the watcher
	// started do not count; 0 once reading has stopped).
	EventsPerSecond   float64 `json:"events_per_second"`
	RateWindowSeconds float64 `json:"rate_window_seconds"`
	// Levels counts the events read, by level name in lower case
	// ("information").
	Levels    map[string]uint64 `json:"levels"`
	LastEvent *EventInfo        `json:"last_event,omitempty"`
	// Segments and Bytes are the segment files and their total size.
	Segments     int                `json:"segments"`
	Bytes        int64              `json:"bytes"`
	Checkpoint   *CheckpointInfo    `json:"checkpoint,omitempty"`
	Verification VerificationStatus `json:"verification"`
	Disk         *DiskInfo          `json:"disk,omitempty"`
}

// EventInfo describes one event. Message is the rendered message (the
// template rendered with the properties, as replay prints it, when the
// event carries none).
type EventInfo struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
}

// CheckpointInfo describes the newest stored signed checkpoint.
type CheckpointInfo struct {
	TreeSize   uint64    `json:"tree_size"`
	Time       time.Time `json:"time,omitzero"`
	AgeSeconds float64   `json:"age_seconds,omitempty"`
	// SignerKeyIDs are the name+keyID of its signature lines, as written
	// (the monitor checks no signature: 'mtlog-audit verify --key' does).
	SignerKeyIDs []string `json:"signer_key_ids"`
	Stored       int      `json:"stored"`
}

// VerificationStatus is the result of verifying the records as they are
// read: each batch's checksums and chain (the log reader), and the Merkle
// root the records produce at each stored checkpoint's tree size.
type VerificationStatus struct {
	// State is "ok", "catching-up", "damaged" or "unavailable" (the log
	// does not start at sequence number 1, so no root can be rebuilt).
	State string `json:"state"`
	// Records is how many records verified; NewRecords how many of them
	// were written after the watcher reached the end of the log.
	Records    uint64 `json:"records"`
	NewRecords uint64 `json:"new_records"`
	// CheckpointsMatched counts the stored checkpoints whose root the
	// records reproduce; CheckpointsUnchecked those the watcher could not
	// compare (their tree size was passed before they were stored and is
	// no longer remembered); Covered is the largest matched tree size.
	CheckpointsMatched   int    `json:"checkpoints_matched"`
	CheckpointsUnchecked int    `json:"checkpoints_unchecked"`
	Covered              uint64 `json:"covered"`
	Detail               string `json:"detail,omitempty"`
}

// DiskInfo is the free space of the filesystem that holds the log.
type DiskInfo struct {
	FreeBytes  uint64  `json:"free_bytes"`
	TotalBytes uint64  `json:"total_bytes"`
	FreeRatio  float64 `json:"free_ratio"`
}
