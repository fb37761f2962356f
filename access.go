package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/replica"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// Access logging (PCI DSS v4 10.2.1.3 "all access to audit logs"; HIPAA
// 164.312(b) as read by OCR's 2017 guidance): docs/access-logging.md.

// AccessDirName is the name of the access log inside a log directory: an
// audit log of its own (same format, chained, with signed checkpoints when
// a signing key is given) that holds one LifecycleRead event per read of
// the log made while no reader held the log open. Its existence is what
// tells a reader that access logging is on.
const AccessDirName = replica.AccessDir

// The properties of a LifecycleRead event (the report reads them).
const (
	ReadUserProperty    = "User"    // the OS user of the reading process
	ReadActorProperty   = "Actor"   // WithActor / --actor; may be empty
	ReadCommandProperty = "Command" // "replay", "Verify", ...
	ReadRangeProperty   = "Range"   // what was read, as text
	ReadFilterProperty  = "Filter"  // the filter, as text; may be empty
	ReadPIDProperty     = "PID"     // the reading process
)

// The properties of an anchor: a LifecycleConfig event the Sink appends to
// its own log, at open and at Close, that commits to the access log's
// length and chain head, so that Verify detects an access log deleted,
// truncated or rewritten before that point.
const (
	AccessLogProperty     = "AccessLog"     // AccessDirName
	AccessRecordsProperty = "AccessRecords" // the access log's last sequence number
	AccessHeadProperty    = "AccessHead"    // the leaf hash of that record, hex
)

const (
	readTemplate   = "Log read by {User} ({Actor}): {Command} {Range} {Filter}"
	anchorTemplate = "Access logging on: reads are recorded in {AccessLog}, {AccessRecords} records, head {AccessHead}"
	accessTemplate = "Access log anchored by the Sink of {Log} at its {Moment}"
)

var (
	// ErrReadNotRecorded is matched by the error of a read that access
	// logging could not record: the read returns no data (fail-closed)
	// unless the caller allowed unrecorded reads (ReadContext).
	ErrReadNotRecorded = errors.New("audit: the read could not be recorded in the access log")
	// ErrAccessLog is matched (with ErrIntegrity) by the error of Verify
	// when the log says access logging was on and its access log is
	// missing, shorter than the log recorded, or rewritten.
	ErrAccessLog = fmt.Errorf("%w: access log", ErrIntegrity)
)

// accessLockWait bounds how long a read waits for another reader (or the
// Sink's anchoring) to release the access log.
const accessLockWait = 10 * time.Second

// WithAccessLog turns access logging on: Sink.Replay and
// Sink.VerifyIntegrity append a LifecycleRead event to the log before
// returning data, and New creates the access log (AccessDirName) in the log
// directory, where the package-level read functions and the CLI record the
// reads they make, and anchors it in the log at open and Close (see
// docs/access-logging.md).
func WithAccessLog() Option {
	return func(c *config) { c.accessLog = true }
}

// ReadContext describes who reads, for the record of a read.
type ReadContext struct {
	// Actor names the person or service on whose behalf the read is made
	// (the OS user is recorded anyway).
	Actor string
	// Command replaces the name of the read function in the record (the
	// CLI passes its command's name).
	Command string
	// SigningKey is the log's private signing key (the text of the key
	// file), to sign the access log's checkpoint after the record; empty:
	// the record is chained but not signed.
	SigningKey string
	// SigningKeyFile is the file of that key (as WithSigningKeyFile
	// reads it), when SigningKey is empty.
	SigningKeyFile string
	// AllowUnrecorded lets a read that cannot be recorded go on; the
	// error goes to OnUnrecorded. By default such a read fails.
	AllowUnrecorded bool
	// OnUnrecorded, if set, is told of a read that went on unrecorded.
	OnUnrecorded func(error)
}

type readContextKey struct{}

// WithReadContext returns a context carrying rc, for the read functions
// (Replay, Verify, ProveInclusion, ...) and Sink.Replay.
func WithReadContext(ctx context.Context, rc ReadContext) context.Context {
	return context.WithValue(ctx, readContextKey{}, rc)
}

// WithActor returns a context whose reads are recorded as made on behalf
// of actor (the other fields of its ReadContext are kept).
func WithActor(ctx context.Context, actor string) context.Context {
	rc := readContextFrom(ctx)
	rc.Actor = actor
	return WithReadContext(ctx, rc)
}

func readContextFrom(ctx context.Context) ReadContext {
	rc, _ := ctx.Value(readContextKey{}).(ReadContext)
	return rc
}

// osUser names the user of this process.
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if n := os.Getenv("USER"); n != "" {
		return n
	}
	return "uid " + strconv.Itoa(os.Getuid())
}

// readProps are the properties of the record of a read.
func readProps(rc ReadContext, command, rng, filter string) map[string]any {
	if rc.Command != "" {
		command = rc.Command
	}
	return map[string]any{
		ReadUserProperty: osUser(), ReadActorProperty: rc.Actor, ReadCommandProperty: command,
		ReadRangeProperty: rng, ReadFilterProperty: filter, ReadPIDProperty: os.Getpid(),
	}
}

// TimeRange describes the range [from, to) of a read as text.
func TimeRange(from, to time.Time) string {
	f, t := "start", "end"
	if !from.IsZero() {
		f = from.UTC().Format(time.RFC3339Nano)
	}
	if !to.IsZero() {
		t = to.UTC().Format(time.RFC3339Nano)
	}
	return "time " + f + " .. " + t
}

// unrecorded applies rc's policy to a read that could not be recorded.
func unrecorded(rc ReadContext, err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("%w: %w", ErrReadNotRecorded, err)
	if !rc.AllowUnrecorded {
		return err
	}
	if rc.OnUnrecorded != nil {
		rc.OnUnrecorded(err)
	}
	return nil
}

// AccessLogOn reports whether access logging is on for the log in dir:
// whether its access log directory exists.
func AccessLogOn(fsys vfs.FS, dir string) (bool, error) {
	fi, err := fsys.Stat(filepath.Join(dir, AccessDirName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("audit: access log of %s: %w", dir, err)
	}
	return fi.IsDir(), nil
}

// RecordRead records a read of the log in dir in its access log, when
// access logging is on for it (AccessLogOn), before the caller returns
// any data; command, rng and filter say what was read. Who reads comes
// from ctx (WithReadContext, WithActor). The access log is opened
// (waiting up to 10 s for another reader), appended to durably, and closed
// (signing a checkpoint with ReadContext.SigningKey). It returns an error
// matching ErrReadNotRecorded when the read cannot be recorded, unless
// ReadContext.AllowUnrecorded.
func RecordRead(ctx context.Context, fsys vfs.FS, dir, command, rng, filter string) error {
	rc := readContextFrom(ctx)
	on, err := AccessLogOn(fsys, dir)
	if err != nil || !on {
		return unrecorded(rc, err)
	}
	var key Option
	switch {
	case rc.SigningKey != "":
		key = WithSigningKey(rc.SigningKey)
	case rc.SigningKeyFile != "":
		key = WithSigningKeyFile(rc.SigningKeyFile)
	}
	_, err = withAccessLog(ctx, fsys, dir, key, func(a *Sink) (Receipt, error) {
		return a.appendLifecycle(ctx, LifecycleRead, readTemplate, readProps(rc, command, rng, filter))
	})
	return unrecorded(rc, err)
}

// withAccessLog opens the access log of dir (creating it), runs fn on it
// and closes it, waiting for its lock up to accessLockWait. key (nil:
// none) signs its checkpoints.
func withAccessLog(ctx context.Context, fsys vfs.FS, dir string, key Option, fn func(*Sink) (Receipt, error)) (Receipt, error) {
	adir := filepath.Join(dir, AccessDirName)
	opts := []Option{WithWAL(adir), WithFileSystem(fsys), WithIdempotencyWindow(0), key}
	deadline := time.Now().Add(accessLockWait)
	delay := 5 * time.Millisecond
	for {
		a, err := New(opts...)
		if err == nil {
			rc, err := fn(a)
			return rc, errors.Join(err, a.Close())
		}
		if key != nil && errors.Is(err, ErrUnauthenticated) {
			// A reader without the key appended after the last signed
			// checkpoint: a keyed writer must not sign that, so this
			// record is appended unsigned too, and the anchors in the
			// log commit to it (docs/access-logging.md).
			key, opts = nil, opts[:len(opts)-1]
			continue
		}
		if !errors.Is(err, vfs.ErrLocked) {
			return Receipt{}, err
		}
		if time.Now().After(deadline) {
			return Receipt{}, fmt.Errorf("the access log %s stayed locked by another process for %v (%w); retry when it is done", adir, accessLockWait, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return Receipt{}, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// startAccess is New's part of WithAccessLog: it creates the access log
// and anchors it in the log.
func (s *Sink) startAccess() error {
	if !s.cfg.accessLog {
		return nil
	}
	return s.anchorAccess(context.Background(), "open")
}

// closeAccess is Close's part: it anchors the reads made while the Sink
// was open.
func (s *Sink) closeAccess() error {
	if !s.cfg.accessLog {
		return nil
	}
	return s.anchorAccess(context.Background(), "close")
}

// anchorAccess appends a record to the access log and then, to the log,
// an anchor naming that record's sequence number and leaf hash.
func (s *Sink) anchorAccess(ctx context.Context, moment string) error {
	var key Option
	if s.cfg.ledger.SigningKey != "" {
		key = WithSigningKey(s.cfg.ledger.SigningKey)
	}
	rc, err := withAccessLog(ctx, s.cfg.fs, s.w.Dir(), key, func(a *Sink) (Receipt, error) {
		return a.appendLifecycle(ctx, LifecycleConfig, accessTemplate, map[string]any{"Log": s.w.Dir(), "Moment": moment})
	})
	if err == nil {
		_, err = s.appendLifecycle(ctx, LifecycleConfig, anchorTemplate, map[string]any{
			AccessLogProperty: AccessDirName, AccessRecordsProperty: rc.Seq, AccessHeadProperty: hex.EncodeToString(rc.LeafHash[:]),
		})
	}
	if err != nil {
		return fmt.Errorf("audit: anchor the access log of %s at %s: %w", s.w.Dir(), moment, err)
	}
	return nil
}

// logRead records, in the Sink's own log, a read made through the Sink
// (when access logging is on).
func (s *Sink) logRead(ctx context.Context, command, rng, filter string) error {
	if !s.cfg.accessLog {
		return nil
	}
	rc := readContextFrom(ctx)
	_, err := s.appendLifecycle(ctx, LifecycleRead, readTemplate, readProps(rc, command, rng, filter))
	return unrecorded(rc, err)
}

// loggedSeq records a read (by record) when iteration begins, then reads
// seq() (which so holds the record, if it is in range); if the read
// cannot be recorded, it yields only the error.
func loggedSeq(ctx context.Context, record func(context.Context) error, seq func() iter.Seq2[*Event, error]) iter.Seq2[*Event, error] {
	return func(yield func(*Event, error) bool) {
		if err := record(ctx); err != nil {
			yield(nil, err)
			return
		}
		seq()(yield)
	}
}

// anchor is one anchor event read back from the log.
type anchor struct {
	seq     uint64 // the anchor event's own sequence number in the log
	records uint64
	head    string
}

// anchorMark preselects the records that may be anchors, before decoding.
var anchorMark = []byte(AccessHeadProperty)

// anchors are the anchor events of a log, collected by visit while
// Verify reads it.
type anchors []anchor

// visit collects rec if it is an anchor.
func (as *anchors) visit(rec wal.Record) {
	if rec.Type != wal.RecordEvent || !bytes.Contains(rec.Payload, anchorMark) {
		return
	}
	ev, err := event.Decode(rec.Payload)
	if err != nil || ev.Properties[LifecycleProperty] != LifecycleConfig {
		return
	}
	n, ok := ev.Properties[AccessRecordsProperty].(uint64)
	if !ok {
		if i, isInt := ev.Properties[AccessRecordsProperty].(int64); isInt && i >= 0 {
			n, ok = uint64(i), true
		}
	}
	if head, _ := ev.Properties[AccessHeadProperty].(string); ok && head != "" {
		*as = append(*as, anchor{seq: rec.Seq, records: n, head: head})
	}
}

// verifyAccess checks the access log of dir against the anchors as the
// log holds, and verifies it (with keys, as the log). It is nil for a log that
// never had access logging on.
func verifyAccess(ctx context.Context, fsys vfs.FS, dir string, as anchors, keys []string) error {
	adir := filepath.Join(dir, AccessDirName)
	on, err := AccessLogOn(fsys, dir)
	if err != nil {
		return err
	}
	if !on {
		if len(as) == 0 {
			return nil
		}
		a := as[len(as)-1]
		return fmt.Errorf("%w: access logging was on (record %d of the log anchors %d access records) and the access log %s is gone", ErrAccessLog, a.seq, a.records, adir)
	}
	if _, err := verifyLog(ctx, fsys, adir, func() *wal.Reader { return wal.NewReader(fsys, adir) }, []VerifyOption{WithTrustedKeys(keys...)}); err != nil {
		// %v: the access log's own damage is not the log's (an exit status
		// of "missing file" or "damaged log" would send the reader astray).
		return fmt.Errorf("%w: %s: %v", ErrAccessLog, adir, err)
	}
	if len(as) == 0 {
		return nil
	}
	heads, last, err := leafHashes(ctx, wal.NewReader(fsys, adir), as)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrAccessLog, adir, err)
	}
	for _, a := range as {
		switch h, ok := heads[a.records]; {
		case !ok:
			return fmt.Errorf("%w: %s is truncated: record %d of the log anchors %d access records, and it holds %d", ErrAccessLog, adir, a.seq, a.records, last)
		case h != a.head:
			return fmt.Errorf("%w: %s is rewritten: its record %d is not the one record %d of the log anchors (leaf hash %s, anchored %s)", ErrAccessLog, adir, a.records, a.seq, h, a.head)
		}
	}
	return nil
}

// leafHashes walks the log of r and returns the leaf hashes (hex) of the
// records the anchors name, and the last sequence number.
func leafHashes(ctx context.Context, r *wal.Reader, as anchors) (map[uint64]string, uint64, error) {
	want := make(map[uint64]bool, len(as))
	for _, a := range as {
		want[a.records] = true
	}
	got := make(map[uint64]string, len(as))
	var prev integrity.Hash
	var last uint64
	for rec, err := range r.Records(ctx, 1) {
		if err != nil {
			return nil, 0, err
		}
		prev = integrity.LeafHash(integrity.Record{Index: rec.Seq - 1, Prev: prev, Time: rec.Time, Type: uint8(rec.Type), PayloadHash: integrity.PayloadHash(rec.Payload)})
		if want[rec.Seq] {
			got[rec.Seq] = hex.EncodeToString(prev[:])
		}
		last = rec.Seq
	}
	return got, last, nil
}
