package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/willibrandon/mtlog-audit/compliance"
	"github.com/willibrandon/mtlog-audit/internal/ledger"
	"github.com/willibrandon/mtlog-audit/protect"
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
	ledger    ledger.Config
	mirrors   []string
	quorum    *quorumPolicy
	idemKeys  int                       // idempotency window (WithIdempotencyWindow); 0: off
	stages    [stageCount]protect.Stage // data-protection stages by rank; nil: off
	protect   protect.Pipeline          // the non-nil stages, in rank order (built by check)
	keys      *keyConfig                // WithKeyring, WithPseudonymize, WithEncryption; nil: none
	policies  []string                  // the failure-policy options given, to refuse two
	cards     cardConfig                // card and masking options (options_cards.go)
	errs      []error                   // problems of the options, reported together by New
	ship      *shipping                 // WithShipping and its tuning (shipping.go); nil: off

	metrics prometheus.Registerer // WithMetrics; nil: no metrics

	// Compliance (issue 19): the profile's check in New reads these.
	retention time.Duration // WithRetention; 0: kept forever (retention.go)
	accessLog bool          // WithAccessLog: reads are logged (access.go)

	comp complianceConfig // WithCompliance, WithLifecycleEvents (compliance.go)
	// retentionPolicy bounds retention (the compliance profile's minimum and
	// maximum; zero: none); the profile sets it (retention.go).
	retentionPolicy compliance.RetentionPolicy
}

// The ranks of the data-protection stages: whatever the order of the
// options, they run in this order, so that what is dropped is never
// tokenized or encrypted first and what is encrypted is already masked.
const (
	stageDrop      = iota // sensitive authentication data (CVV, track, PIN) removed
	stageMask             // WithMaskSensitive
	stageCards            // card numbers tokenized or truncated
	stagePseudonym        // WithPseudonymize
	stageEncrypt          // WithEncryption
	stageCount
)

// Defaults of the options that are not the wal package's.
const (
	defaultIdempotencyWindow = 1 << 14
	defaultMaxEventSize      = 16 << 20 // the wal's default MaxRecordSize
	maxMaxEventSize          = 128 << 20
)

// ErrInvalidOption is matched (errors.Is) by the error of New when an
// option's argument is out of range or options contradict each other. The
// error names every such option and says what to pass instead.
var ErrInvalidOption = errors.New("invalid option")

// optionError records a problem of an option; New reports them all.
func (c *config) optionError(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("audit: %w: "+format, append([]any{ErrInvalidOption}, args...)...))
}

// check reports every problem of the options (nil if none), together.
func (c *config) check() error {
	w := &c.wal
	switch {
	case w.SegmentSize < 0:
		c.optionError("WithSegmentSize(%d): negative; use at least %d bytes, or omit it for 64 MiB", w.SegmentSize, 4*wal.SectorSize)
	case w.SegmentSize > 0 && w.SegmentSize < 4*wal.SectorSize:
		c.optionError("WithSegmentSize(%d): too small; use at least %d bytes", w.SegmentSize, 4*wal.SectorSize)
	}
	mode := [...]string{"SyncDurable", "SyncInterval", "SyncNone"}
	if w.Sync < SyncDurable || w.Sync > SyncNone {
		c.optionError("WithSyncMode(%d, %v): unknown mode; use SyncDurable, SyncInterval or SyncNone", w.Sync, w.SyncInterval)
	} else if w.SyncInterval < 0 {
		c.optionError("WithSyncMode(%s, %v): negative interval; pass a positive one, or 0 for 100ms", mode[w.Sync], w.SyncInterval)
	}
	for _, st := range c.stages {
		if st != nil {
			c.protect = append(c.protect, st)
		}
	}
	if q := c.quorum; q != nil {
		n := 1 + len(c.mirrors)
		switch {
		case len(c.mirrors) == 0:
			c.optionError("WithRedundancyQuorum(%d, %v): give the mirror directories with WithRedundancy too", q.copies, q.timeout)
		case q.copies < 1 || q.copies > n:
			c.optionError("WithRedundancyQuorum(%d, %v): the quorum counts the primary and the %d mirrors: use 1 to %d", q.copies, q.timeout, len(c.mirrors), n)
		}
		if q.timeout <= 0 {
			c.optionError("WithRedundancyQuorum(%d, %v): the timeout per copy must be positive, such as 5*time.Second", q.copies, q.timeout)
		}
	}
	c.checkCards()
	c.checkCompliance()
	if len(c.policies) > 1 {
		c.optionError("%s: pick one failure policy (without either, Emit fails closed)", strings.Join(c.policies, " and "))
	}
	return errors.Join(c.errs...)
}

func defaultConfig() config {
	return config{
		fs:       vfs.OS(),
		wal:      wal.Options{MaxRecordSize: defaultMaxEventSize},
		ledger:   ledger.DefaultConfig(),
		idemKeys: defaultIdempotencyWindow,
		onFailure: func(ev *core.LogEvent, err error) {
			if ev == nil && (errors.Is(err, ErrRepaired) || errors.Is(err, ErrMirrorStale) || errors.Is(err, ErrShipping)) {
				fmt.Fprintf(os.Stderr, "mtlog-audit: %v\n", err)
				return
			}
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
		if dir == "" {
			c.optionError("WithWAL(\"\"): the directory is empty; pass the log's directory, such as \"/var/lib/myapp/audit\"")
		}
		c.dir = dir
		for _, o := range opts {
			if o != nil {
				o(&c.wal)
			}
		}
	}
}

// PreallocOff, passed to WithPrealloc, turns off the zeros filled ahead.
const PreallocOff = 0

// WithSegmentSize sets the size at which a log segment is sealed and the
// next begins (default 64 MiB; 0 means the default). New refuses a size
// below 2 KiB.
func WithSegmentSize(bytes int64) WALOption {
	return func(o *wal.Options) { o.SegmentSize = bytes }
}

// WithPrealloc sets how far ahead of the records the active segment is
// filled with zeros by a background goroutine, so that a group commit
// overwrites blocks the filesystem already allocated and its fdatasync need
// not also commit a new file size. Without the option it is 1 MiB.
// WithPrealloc(PreallocOff) turns it off: do that on copy-on-write
// filesystems (btrfs, ZFS), where an overwrite allocates new blocks anyway
// and the zeros are only extra writes. A negative bytes also turns it off
// (deprecated: pass PreallocOff).
func WithPrealloc(bytes int64) WALOption {
	return func(o *wal.Options) {
		if bytes <= 0 {
			bytes = -1 // wal.Options: 0 is the default, negative is off
		}
		o.Prealloc = bytes
	}
}

// WithSyncMode chooses when writes are acknowledged. interval is used by
// SyncInterval only (0: the default, 100ms). New refuses an unknown mode and
// a negative interval.
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
			c.optionError("WithGroupCommit(%d, %v): both must be ≥ 0 (0: no bound, no delay)", maxBatch, maxDelay)
			return
		}
		c.wal.MaxBatchRecords = maxBatch
		c.wal.MaxDelay = maxDelay
	}
}

// WithFailureHandler sets the function that Emit calls when an event could
// not be made durable (the default prints to stderr). It is called before
// the failure policy acts; it must not call back into the Sink. With
// WithRedundancy, New also calls it once, with a nil event and a
// *RepairError (matching ErrRepaired), when it repaired a copy of the log.
// New refuses a nil h: omit the option to keep the default.
func WithFailureHandler(h func(ev *core.LogEvent, err error)) Option {
	return func(c *config) {
		if h == nil {
			c.optionError("WithFailureHandler(nil): pass a function; omit the option to print failures to stderr")
			return
		}
		c.onFailure = h
	}
}

// WithPanicOnFailure makes Emit panic after calling the failure handler.
// It excludes WithFailOpen.
func WithPanicOnFailure() Option {
	return func(c *config) {
		c.policy = policyPanic
		c.policies = append(c.policies, "WithPanicOnFailure")
	}
}

// WithFailOpen makes Emit return after calling the failure handler: the
// application proceeds and the event is lost. Use only where availability
// matters more than a complete audit trail, and alert from the handler (with
// WithMetrics, mtlog_audit_dropped_total counts the events dropped, by
// reason). It excludes WithPanicOnFailure.
func WithFailOpen() Option {
	return func(c *config) {
		c.policy = policyFailOpen
		c.policies = append(c.policies, "WithFailOpen")
	}
}

// WithMaxEventSize bounds the encoded size of one event (default 16 MiB, at
// most 128 MiB). Write refuses a larger event before it enters a group
// commit, with an error matching ErrEventTooLarge (and ErrUnwritable) that
// gives the size and the limit; the failure policies treat it as a
// permanent error (see Emit).
func WithMaxEventSize(bytes int) Option {
	return func(c *config) {
		if bytes <= 0 || bytes > maxMaxEventSize {
			c.optionError("WithMaxEventSize(%d): use 1 to %d bytes (default %d)", bytes, maxMaxEventSize, defaultMaxEventSize)
			return
		}
		c.wal.MaxRecordSize = bytes
	}
}

// WithIdempotencyWindow sets how many idempotency keys (see
// IdempotencyKeyProperty) the Sink remembers: a Write whose key is among the
// last keys written returns the first write's Receipt without writing again
// (default 16384 keys; 0 turns deduplication off, and a key is then an
// ordinary property). The window is in memory: it starts empty when the
// Sink is opened.
func WithIdempotencyWindow(keys int) Option {
	return func(c *config) {
		if keys < 0 {
			c.optionError("WithIdempotencyWindow(%d): negative; pass a number of keys, or 0 to turn deduplication off", keys)
			return
		}
		c.idemKeys = keys
	}
}

// WithFileSystem makes the Sink use fsys instead of the operating system's
// filesystem (tests use vfs.NewCrashFS and vfs.NewFaultFS). New refuses a
// nil fsys.
func WithFileSystem(fsys vfs.FS) Option {
	return func(c *config) {
		if fsys == nil {
			c.optionError("WithFileSystem(nil): pass a vfs.FS; omit the option for the operating system's filesystem")
			return
		}
		c.fs = fsys
	}
}

// WithSigningKey makes the Sink sign checkpoints of its Merkle tree with a
// signed-note Ed25519 private key ("PRIVATE+KEY+name+hash+..."; generate one
// with integrity.GenerateKey or `mtlog-audit keys generate`). Surrounding
// white space, such as the newline that ends a key file, is ignored. The
// key's name is the log's origin. Give verifiers only the public key. To
// read the key from a file, use WithSigningKeyFile. New refuses an empty
// key.
func WithSigningKey(skey string) Option {
	return func(c *config) {
		c.ledger.SigningKey = strings.TrimSpace(skey)
		if c.ledger.SigningKey == "" {
			c.optionError("WithSigningKey(\"\"): the key is empty; generate one with `mtlog-audit keys generate`, or omit the option for an unsigned log")
		}
	}
}

// WithSigningKeyFile is WithSigningKey with the key read from the file at
// path, such as the NAME.key that `mtlog-audit keys generate` writes. New
// fails if the file cannot be read, or if its permissions let group or
// others read or write it (the error says which chmod to run): whoever can
// read the key can sign a forged log.
func WithSigningKeyFile(path string) Option {
	return func(c *config) {
		if path == "" {
			c.optionError("WithSigningKeyFile(\"\"): the path is empty; pass the key file, such as the NAME.key of `mtlog-audit keys generate`")
			return
		}
		skey, err := readKeyFile(path)
		if err != nil {
			c.errs = append(c.errs, err)
			return
		}
		c.ledger.SigningKey = skey
	}
}

// readKeyFile reads a private key file, refusing one that group or others
// may access.
func readKeyFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("audit: WithSigningKeyFile: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("audit: WithSigningKeyFile: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("audit: WithSigningKeyFile(%s): not a regular file", path)
	}
	if why, fix := vfs.OwnerOnly(vfs.OS(), path, st); why != "" {
		return "", fmt.Errorf("audit: WithSigningKeyFile(%s): %w: %s lets group or others access the private key; run: %s", path, ErrKeyFilePermissions, why, fix)
	}
	data, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return "", fmt.Errorf("audit: WithSigningKeyFile(%s): %w", path, err)
	}
	skey := strings.TrimSpace(string(data))
	if skey == "" {
		return "", fmt.Errorf("audit: WithSigningKeyFile(%s): the file is empty; write a key with `mtlog-audit keys generate`", path)
	}
	return skey, nil
}

// ErrKeyFilePermissions is matched (errors.Is) by the error of New when the
// file given to WithSigningKeyFile is readable or writable by group or
// others.
var ErrKeyFilePermissions = errors.New("key file permissions too open")

// WithCheckpoints sets how often checkpoints are signed while records
// arrive: after every records records or interval, whichever comes first
// (defaults 65536 and 1s), and as a heartbeat every heartbeat when idle
// (default 1m) so that silence is visible. A checkpoint is also signed when
// a segment is sealed and on Close.
func WithCheckpoints(records int, interval, heartbeat time.Duration) Option {
	return func(c *config) {
		if records <= 0 || interval <= 0 || heartbeat <= 0 {
			c.optionError("WithCheckpoints(%d, %v, %v): all must be positive (defaults 65536, 1s, 1m)", records, interval, heartbeat)
			return
		}
		c.ledger.Every, c.ledger.Interval, c.ledger.Heartbeat = uint64(records), interval, heartbeat
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
			c.optionError("WithForwardSecurity(%v): the epoch must be positive, such as 24h", epoch)
			return
		}
		c.ledger.EpochEvery = epoch
	}
}

// WithClock makes the Sink read the time from now instead of time.Now: for
// the times of signed checkpoints (and their heartbeat and key-epoch
// schedule), of segment headers, and of an event written with a zero
// Timestamp (see Sink.Write). Other event timestamps are the caller's and
// are not affected. Tests use it to jump the clock. New refuses a nil now.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now == nil {
			c.optionError("WithClock(nil): pass a clock function; omit the option for time.Now")
			return
		}
		c.wal.Now = now
		c.ledger.Now = now
	}
}

// WithRedundancy keeps a mirror copy of the log directory in each of dirs,
// ideally on other disks, so that damage to one copy is repaired from
// another. The contract:
//   - Every file the Sink writes to the log directory is written to every
//     copy, at the same offsets, and an event is acknowledged only once it
//     is durable in every copy. An error on any copy is an error of the log
//     (a failed fsync fails the log, a full mirror fails writes with
//     ENOSPC); the primary is never rolled back. Reads come from the
//     primary (the WithWAL directory).
//   - A copy that stops answering (a hung disk or NFS mount) therefore
//     blocks every acknowledgement for as long as it hangs. To bound that,
//     add WithRedundancyQuorum: a copy that fails or misses its deadline
//     is then marked stale and left behind.
//   - Before it opens the log, New builds the verified log with the most
//     records from the copies and writes it into each copy that differs.
//     Each repair is reported once to the failure handler, as a
//     *RepairError that matches ErrRepaired, and by Sink.RepairReport. New
//     fails with ErrDiverged when no log holds every record that verifies
//     in some copy (except a record of a write that failed, which no copy
//     holds whole and the primary verifies without: with a quorum of 2 or
//     more it is left out and listed in the report), and with the
//     primary's error (matching ErrCorrupt) when no verified log can be
//     made; it then changes nothing.
//   - When a copy holds the log and a mirror directory does not exist, New
//     fails with an error that matches fs.ErrNotExist (an unmounted disk
//     looks like that). Point each mirror at a directory inside its mounted
//     filesystem; after replacing a disk, create the empty directory and
//     New fills it.
//   - Every copy holds what the log directory holds, including the
//     WithForwardSecurity key: protect it like the log directory.
//   - dirs are on the WithFileSystem filesystem; they must differ from the
//     WithWAL directory and from each other, and none may lie inside
//     another.
//
// docs/architecture.md ("Redundancy is a filesystem") describes the repair
// and what it costs; docs/performance.md ("Redundancy") has the measured
// throughput.
func WithRedundancy(dirs ...string) Option {
	return func(c *config) {
		if len(dirs) == 0 {
			c.optionError("WithRedundancy(): give at least one mirror directory")
			return
		}
		for _, d := range dirs {
			if d == "" {
				c.optionError("WithRedundancy(%q): a mirror directory path is empty", dirs)
				return
			}
		}
		c.mirrors = append(c.mirrors, dirs...)
	}
}

// quorumPolicy is what WithRedundancyQuorum set (config.quorum; nil: every
// copy, with no time limit).
type quorumPolicy struct {
	copies  int
	timeout time.Duration
}

// WithRedundancyQuorum changes how WithRedundancy waits for its copies: an
// event is acknowledged once it is durable in the primary (the WithWAL
// directory, always required, never timed out) and in enough mirrors that
// copies copies, the primary included, hold it; each mirror has
// perCopyTimeout for each write, sync or directory operation. The contract:
//   - A mirror that fails an operation or misses its deadline is marked
//     stale: it is no longer written, the failure handler is called once
//     with a nil event and a *MirrorStaleError naming it (matching
//     ErrMirrorStale and the cause, such as vfs.ErrMirrorTimeout or
//     syscall.EIO), and Sink.Mirrors reports it. The handler is called on
//     the goroutine that writes the log: keep it quick (hand the alert to
//     another goroutine if it may block). Acknowledgements go on
//     while copies copies are current; below that, writes fail with an
//     error matching vfs.ErrMirrorQuorum (and ErrFailed once the log has
//     failed), as any write error does.
//   - An operation blocked on a stale mirror is not cancelled (the kernel
//     cannot cancel a write to a hung NFS mount): its goroutine stays
//     blocked until the call returns, and what it finally writes is
//     discarded by the next repair. It holds no lock of the Sink.
//   - A stale mirror stays stale until the log is next opened: New then
//     repairs it from the other copies, as it repairs any out-of-date copy
//     (and reports the repair). New reads every copy to do so; a copy that
//     still hangs then blocks New. The repair trusts copies as the quorum
//     of the Sink that wrote the log: open a log written with copies 1
//     with copies 1 (docs/architecture.md, "Records a repair may leave
//     out").
//   - Every current mirror holds every acknowledged event, so after a
//     crash each of them, and the primary, holds every acknowledged event.
//
// copies ranges from 1 (the mirrors are best effort) to the number of
// directories (every copy, but a hung mirror fails writes after
// perCopyTimeout instead of blocking them). It requires WithRedundancy.
// Without this option every copy is required with no time limit.
func WithRedundancyQuorum(copies int, perCopyTimeout time.Duration) Option {
	return func(c *config) { c.quorum = &quorumPolicy{copies: copies, timeout: perCopyTimeout} }
}
