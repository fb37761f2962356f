package audit

import (
	"fmt"
	"os"
	"time"

	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
	"github.com/willibrandon/mtlog/core"
)

// Option configures New.
type Option func(*config)

// WALOption configures the write-ahead log (see WithWAL).
type WALOption func(*wal.Options)

// SyncMode says when a write is acknowledged; see the constants.
type SyncMode = wal.SyncMode

// Sync modes. SyncDurable is the default; the others are explicit opt-ins
// whose loss on power failure is documented on wal.SyncInterval and
// wal.SyncNone.
const (
	SyncDurable  = wal.SyncDurable
	SyncInterval = wal.SyncInterval
	SyncNone     = wal.SyncNone
)

type failurePolicy int

const (
	policyBlock failurePolicy = iota
	policyPanic
	policyFailOpen
)

type config struct {
	dir       string
	fs        vfs.FS
	wal       wal.Options
	onFailure func(*core.LogEvent, error)
	policy    failurePolicy
	ledger    ledgerConfig
	err       error
}

func defaultConfig() config {
	return config{
		fs:     vfs.OS(),
		ledger: defaultLedgerConfig(),
		onFailure: func(ev *core.LogEvent, err error) {
			tmpl := ""
			if ev != nil {
				tmpl = ev.MessageTemplate
			}
			fmt.Fprintf(os.Stderr, "mtlog-audit: audit event %q not recorded: %v\n", tmpl, err)
		},
	}
}

// WithWAL sets the directory of the write-ahead log (created if missing;
// required).
func WithWAL(dir string, opts ...WALOption) Option {
	return func(c *config) {
		c.dir = dir
		for _, o := range opts {
			o(&c.wal)
		}
	}
}

// WithSegmentSize sets the size at which a log segment is sealed and the
// next begins (default 64 MiB).
func WithSegmentSize(bytes int64) WALOption {
	return func(o *wal.Options) { o.SegmentSize = bytes }
}

// WithSyncMode chooses when writes are acknowledged. interval is used by
// SyncInterval only (default 100ms).
func WithSyncMode(mode SyncMode, interval time.Duration) Option {
	return func(c *config) {
		c.wal.Sync = mode
		c.wal.SyncInterval = interval
	}
}

// WithGroupCommit bounds one group commit to maxBatch events (0: no bound)
// and makes the committer wait up to maxDelay for more writers before each
// write (default 0: batches grow with load without added latency).
func WithGroupCommit(maxBatch int, maxDelay time.Duration) Option {
	return func(c *config) {
		if maxBatch < 0 || maxDelay < 0 {
			c.err = fmt.Errorf("audit: WithGroupCommit(%d, %v): both must be ≥ 0", maxBatch, maxDelay)
			return
		}
		c.wal.MaxBatchRecords = maxBatch
		c.wal.MaxDelay = maxDelay
	}
}

// WithFailureHandler sets the function that Emit calls when an event could
// not be made durable (the default prints to stderr). It is called before
// the failure policy acts; it must not call back into the Sink.
func WithFailureHandler(h func(ev *core.LogEvent, err error)) Option {
	return func(c *config) {
		if h != nil {
			c.onFailure = h
		}
	}
}

// WithPanicOnFailure makes Emit panic after calling the failure handler.
func WithPanicOnFailure() Option { return func(c *config) { c.policy = policyPanic } }

// WithFailOpen makes Emit return after calling the failure handler: the
// application proceeds and the event is lost. Use only where availability
// matters more than a complete audit trail, and alert from the handler.
func WithFailOpen() Option { return func(c *config) { c.policy = policyFailOpen } }

// WithFileSystem makes the Sink use fsys instead of the operating system's
// filesystem (tests use vfs.NewCrashFS and vfs.NewFaultFS).
func WithFileSystem(fsys vfs.FS) Option {
	return func(c *config) {
		if fsys != nil {
			c.fs = fsys
		}
	}
}

// WithSigningKey makes the Sink sign checkpoints of its Merkle tree with a
// signed-note Ed25519 private key ("PRIVATE+KEY+name+hash+..."; generate one
// with integrity.GenerateKey). The key's name
// is the log's origin. Give verifiers only the public key.
func WithSigningKey(skey string) Option {
	return func(c *config) { c.ledger.signingKey = skey }
}

// WithCheckpoints sets how often checkpoints are signed while records
// arrive: after every records records or interval, whichever comes first
// (defaults 65536 and 1s), and as a heartbeat every heartbeat when idle
// (default 1m) so that silence is visible. A checkpoint is also signed when
// a segment is sealed and on Close.
func WithCheckpoints(records int, interval, heartbeat time.Duration) Option {
	return func(c *config) {
		if records <= 0 || interval <= 0 || heartbeat <= 0 {
			c.err = fmt.Errorf("audit: WithCheckpoints(%d, %v, %v): all must be positive", records, interval, heartbeat)
			return
		}
		c.ledger.every, c.ledger.interval, c.ledger.heartbeat = uint64(records), interval, heartbeat
	}
}

// WithForwardSecurity evolves the signing key every epoch: a fresh key is
// made, its public half is logged in a record signed by the current key, and
// the current private key is wiped, so that whoever steals the key later
// cannot re-sign earlier epochs. The key given to WithSigningKey starts
// epoch 0 (needed only the first time); the current epoch's key is kept in
// the log directory. See docs/integrity.md for the threat model.
func WithForwardSecurity(epoch time.Duration) Option {
	return func(c *config) {
		if epoch <= 0 {
			c.err = fmt.Errorf("audit: WithForwardSecurity(%v): the epoch must be positive", epoch)
			return
		}
		c.ledger.epochEvery = epoch
	}
}
