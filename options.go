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
	err       error
}

func defaultConfig() config {
	return config{
		fs: vfs.OS(),
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
