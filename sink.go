// Package audit is a durable audit sink for the mtlog logging library (and,
// through adapters, for slog, logr, zerolog and zap).
//
// Its one promise: an audit event that was acknowledged is never lost and
// never silently altered. Sink.Write returns a Receipt only after the event's
// bytes, and every directory entry needed to find them, are durable
// (fdatasync); Sink.Emit, the mtlog entry point, returns only then too, or
// follows the failure policy (see WithFailureHandler). Many concurrent
// writers share one write and one fdatasync (group commit).
//
//	sink, err := audit.New(audit.WithWAL("/var/lib/myapp/audit"))
//	if err != nil { ... }
//	defer sink.Close()
//	logger := mtlog.New(mtlog.WithSink(sink))
//	logger.Information("User {UserId} exported {Count} records", "u-1", 42)
package audit

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/idem"
	"github.com/willibrandon/mtlog-audit/internal/ledger"
	"github.com/willibrandon/mtlog-audit/internal/verify"
	"github.com/willibrandon/mtlog-audit/monitoring"
	"github.com/willibrandon/mtlog-audit/protect"
	"github.com/willibrandon/mtlog-audit/replica"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
	"github.com/willibrandon/mtlog/core"
)

// Event is one audit event. It is the same type as event.Event, so users need
// to import only this package.
type Event = event.Event

// Unsupported is the placeholder stored, and returned by Replay, for a
// property value that cannot be encoded (a channel, a function, a cycle, a
// marshaler that fails): the event is kept and the value names its type.
type Unsupported = event.Unsupported

// Level is an event's severity (same numbering as mtlog's core levels).
type Level = event.Level

// Levels, from least to most severe.
const (
	LevelVerbose     = event.LevelVerbose
	LevelDebug       = event.LevelDebug
	LevelInformation = event.LevelInformation
	LevelWarning     = event.LevelWarning
	LevelError       = event.LevelError
	LevelFatal       = event.LevelFatal
)

// Receipt acknowledges a durable event.
type Receipt struct {
	// Seq is the event's sequence number in the log (its Merkle leaf index
	// is Seq-1).
	Seq uint64
	// LeafHash is the event's RFC 6962 leaf hash: with it, anyone can
	// later ask for an inclusion proof and check it against a signed
	// checkpoint.
	LeafHash [32]byte
}

// IdempotencyKeyProperty is the name of the property that carries an
// event's optional idempotency key: a non-empty string of at most
// MaxIdempotencyKey bytes, such as a UUID the caller made for the audited
// action. Write remembers the keys of the last events written (see
// WithIdempotencyWindow), and a Write of an event whose key it remembers
// does not write it again but returns the first write's Receipt. So a
// caller who retries after an error that leaves the event maybe written (a
// context error) cannot write it twice. The key is stored with the event
// like any other property. It works through every adapter: pass it as the
// property, attribute or field of this name.
const IdempotencyKeyProperty = "IdempotencyKey"

// MaxIdempotencyKey is the longest idempotency key, in bytes.
const MaxIdempotencyKey = 256

var (
	// ErrUnwritable is matched by every error for an event that can never
	// be written, whatever the state of the log: ErrNilEvent,
	// ErrEventTooLarge, an event that cannot be encoded, and a malformed
	// idempotency key. Retrying such an event cannot help, so Emit and
	// EmitEvent never retry it (see Emit), and it is certainly not in the
	// log.
	ErrUnwritable = errors.New("audit: the event can never be written")
	// ErrEventTooLarge is matched by the error of Write, and reported by
	// Emit, for an event whose encoding is larger than the limit set by
	// WithMaxEventSize (default 16 MiB); the error gives both sizes. It
	// matches ErrUnwritable.
	ErrEventTooLarge = fmt.Errorf("%w: event too large", ErrUnwritable)
	// ErrSinkClosed is returned by Write, and reported by Emit, after Close.
	ErrSinkClosed = errors.New("audit: sink is closed")
	// ErrNilEvent is returned by Write, and reported by Emit, for a nil
	// event. It matches ErrUnwritable.
	ErrNilEvent = fmt.Errorf("%w: nil event", ErrUnwritable)
	// ErrCorrupt is matched by errors that report damaged log data.
	ErrCorrupt = wal.ErrCorrupt
	// ErrFailed is matched by errors returned after a write or fsync
	// failure put the log into its failed state.
	ErrFailed = wal.ErrFailed
)

// Compile-time checks that Sink plugs into mtlog.
var (
	_ core.LogEventSink = (*Sink)(nil)
	_ core.SimpleSink   = (*Sink)(nil)
)

// Sink is a durable audit sink. It is safe for concurrent use.
type Sink struct {
	cfg    config
	w      *wal.WAL
	led    *ledger.Ledger
	closed atomic.Bool
	done   chan struct{} // closed by Close: wakes blocked fail-closed Emits
	once   sync.Once
	bufs   sync.Pool
	repair *RepairReport         // what New repaired (WithRedundancy), nil if nothing
	mirror *vfs.Mirror           // the copies (WithRedundancy), nil without
	idem   *idem.Window[Receipt] // nil: no idempotency window
	// shipper copies sealed segments and checkpoints off the box
	// (WithShipping); nil: off.
	shipper *replica.Shipper
	mon     *monitoring.Metrics // WithMetrics; nil: no metrics
	opened  time.Time           // by the Sink's clock
	life    lifecycle           // lifecycle events and flagged events (compliance.go)

	closeErr error // what Close returned; written inside once

	retMu sync.Mutex // one retention run or hold change at a time (retention.go, hold.go)
}

// New opens (creating if needed) the audit log and returns a Sink writing to
// it. WithWAL is required.
func New(opts ...Option) (*Sink, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.dir == "" {
		return nil, errors.New("audit: no WAL directory: pass audit.WithWAL(\"/path/to/audit-wal\")")
	}
	if err := cfg.openKeys(); err != nil {
		return nil, err
	}
	opened := false
	defer func() {
		if !opened {
			cfg.closeKeys()
		}
	}()
	var repaired *RepairReport
	var mirror *vfs.Mirror
	if len(cfg.mirrors) > 0 {
		var err error
		if mirror, repaired, err = openMirrors(&cfg); err != nil {
			return nil, fmt.Errorf("audit: open %s: %w", cfg.dir, err)
		}
		if repaired != nil { // reported at once: even if opening fails below
			cfg.onFailure(nil, &RepairError{Report: repaired})
		}
	}
	// The commit hook runs on the WAL's goroutine; the ledger is published
	// to it before the ledger's own goroutine can append (see ledger.Open).
	var s *Sink
	mon := cfg.startMetrics(&s)
	var published atomic.Pointer[ledger.Ledger]
	cfg.wal.PreDigest = func(p []byte) [32]byte { return integrity.PayloadHash(p) }
	cfg.wal.OnCommit = func(recs []wal.Committed) error {
		l := published.Load()
		if l == nil { // nothing is appended before the ledger is published
			return nil
		}
		return l.OnCommit(recs)
	}
	if cfg.ledger.SigningKey != "" || cfg.ledger.EpochEvery > 0 {
		// A signed log authenticates every batch (docs/integrity.md);
		// an unsigned one pays nothing for it.
		cfg.wal.Tag = func(recs []wal.Committed) ([32]byte, error) {
			l := published.Load()
			if l == nil {
				return [32]byte{}, errors.New("audit: a batch was written before the ledger was ready")
			}
			return l.Tag(recs)
		}
	}
	// The files of the layers above the WAL (docs/architecture.md, "Who
	// owns which file"): a directory holding only some of them is this
	// log's, not someone else's.
	cfg.wal.Owned = replica.ManagedName
	hooks, err := hookShipping(&cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if !opened {
			cfg.ship.close()
		}
	}()
	// The Sink releases the directory lock itself, once Close has written
	// the final checkpoint and shipped what is left: no other process may
	// open the log while its files are still being written.
	cfg.wal.KeepLock = true
	w, err := wal.Open(cfg.fs, cfg.dir, cfg.wal)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", cfg.dir, err)
	}
	led, err := ledger.Open(cfg.ledger, cfg.fs, cfg.dir, w, published.Store)
	if err != nil {
		w.Release()
		return nil, fmt.Errorf("audit: open %s: %w", cfg.dir, err)
	}
	shipper, err := hooks.start(&cfg, w)
	if err != nil {
		led.StopRunner()
		led.CloseFiles()
		w.Release()
		return nil, err
	}
	s = &Sink{cfg: cfg, w: w, led: led, done: make(chan struct{}), repair: repaired, shipper: shipper, mirror: mirror, mon: mon, opened: cfg.now()()}
	s.bufs.New = func() any { b := make([]byte, 0, 1024); return &b }
	if cfg.idemKeys > 0 {
		s.idem = idem.New[Receipt](cfg.idemKeys)
	}
	if err := s.logPendingShreds(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.startLifecycle(context.Background()); err != nil {
		s.Close()
		return nil, fmt.Errorf("audit: open %s: write the lifecycle events: %w", cfg.dir, err)
	}
	if err := s.startAccess(); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	if err := s.registerMetrics(); err != nil {
		return nil, errors.Join(fmt.Errorf("audit: open %s: %w", cfg.dir, err), s.Close())
	}
	opened = true
	return s, nil
}

// Write encodes ev and appends it to the log, returning its Receipt once it
// is durable (in the default sync mode). ev is not modified and not
// retained. Write never retries. When it returns an error, the event was
// not acknowledged, and the error tells whether it can be in the log:
//
//   - Not written: errors matching ErrUnwritable (a nil, too large or
//     unencodable event, or a malformed idempotency key) or ErrSinkClosed.
//     The event is certainly not in the log.
//   - Maybe written: every other error. A context error (ctx done before
//     the group commit that holds the event finished) and ErrFailed leave
//     the event possibly in the log, and a retry may write it twice. To
//     retry safely, give the event an idempotency key
//     (IdempotencyKeyProperty): a Write repeating a key that was written
//     returns the first Receipt, and one that comes while the first is in
//     flight waits for its outcome (and writes the event if the first did
//     not).
//
// An event whose Timestamp is zero (time.Time{}, which is also
// 0001-01-01T00:00:00Z) is recorded with the time of the Sink's clock
// (WithClock; time.Now by default) at Write: the log, its hashes and Replay
// hold that time. Any other time, from any year, is kept as given.
func (s *Sink) Write(ctx context.Context, ev *Event) (Receipt, error) {
	if s.mon != nil {
		return s.timedWrite(ctx, ev)
	}
	return s.write(ctx, ev)
}

// write is Write.
func (s *Sink) write(ctx context.Context, ev *Event) (Receipt, error) {
	if ev == nil {
		return Receipt{}, ErrNilEvent
	}
	if s.closed.Load() {
		return Receipt{}, ErrSinkClosed
	}
	if ev.Timestamp.IsZero() {
		stamped := *ev // the caller's event is not modified
		stamped.Timestamp = time.Now()
		if s.cfg.wal.Now != nil { // WithClock
			stamped.Timestamp = s.cfg.wal.Now()
		}
		ev = &stamped
	}
	key, err := idempotencyKey(ev)
	if err != nil {
		return Receipt{}, err
	}
	if ev, err = s.admit(ctx, ev); err != nil {
		return Receipt{}, err
	}
	// The stages do not change the timestamp.
	ts := eventTime(ev)
	bp, err := s.encode(ctx, ev)
	if err != nil {
		return Receipt{}, err
	}
	if key == "" || s.idem == nil {
		defer s.bufs.Put(bp)
		return s.append(ctx, ts, *bp)
	}
	// The write may outlive this call (see idem.Window.Do): it owns a copy
	// of the bytes, and ev is not retained.
	b := append([]byte(nil), *bp...)
	s.bufs.Put(bp)
	return s.idem.Do(ctx, key, func(ctx context.Context) (Receipt, error) { return s.append(ctx, ts, b) })
}

// idempotencyKey returns ev's idempotency key ("" if none).
func idempotencyKey(ev *Event) (string, error) {
	v, ok := ev.Properties[IdempotencyKeyProperty]
	if !ok {
		return "", nil
	}
	k, ok := v.(string)
	switch {
	case !ok:
		return "", fmt.Errorf("%w: property %s is a %T; it must be a string, such as a UUID", ErrUnwritable, IdempotencyKeyProperty, v)
	case k == "" || len(k) > MaxIdempotencyKey:
		return "", fmt.Errorf("%w: property %s is %d bytes long; use 1 to %d bytes (a UUID, or a hash of a longer key)", ErrUnwritable, IdempotencyKeyProperty, len(k), MaxIdempotencyKey)
	}
	return k, nil
}

// protectError is the error of the data-protection stages (see
// protect.Stage): a transient one (protect.ErrUnavailable) is returned as it
// is, so that the failure policy may retry; any other refuses the event for
// good.
func protectError(err error) error {
	if errors.Is(err, protect.ErrUnavailable) {
		return fmt.Errorf("audit: %w", err)
	}
	return fmt.Errorf("%w: %w", ErrUnwritable, err)
}

// encode runs the data-protection stages on ev and encodes what they
// return into a pooled buffer (the last stage may write the encoding
// itself: see protect.Pipeline.AppendEncode), refusing an event above the
// WithMaxEventSize limit. The caller puts the buffer back.
func (s *Sink) encode(ctx context.Context, ev *Event) (*[]byte, error) {
	bp := s.bufs.Get().(*[]byte)
	var b []byte
	var err error
	if len(s.cfg.protect) > 0 {
		b, err = s.cfg.protect.AppendEncode(ctx, (*bp)[:0], ev)
		if err != nil {
			err = protectError(err)
		}
	} else if b, err = event.AppendEncode((*bp)[:0], ev); err != nil {
		err = fmt.Errorf("%w: encode: %w", ErrUnwritable, err)
	}
	*bp = b[:0]
	if err != nil {
		s.bufs.Put(bp)
		return nil, err
	}
	if max := s.cfg.wal.MaxRecordSize; len(b) > max {
		s.bufs.Put(bp)
		return nil, fmt.Errorf("%w: it encodes to %d bytes, above the limit of %d (WithMaxEventSize): raise the limit, or log less (a large property belongs in a file the event names)", ErrEventTooLarge, len(b), max)
	}
	*bp = b
	return bp, nil
}

// eventTime is the record timestamp of ev (clamped, see wal.UnixNano).
func eventTime(ev *Event) int64 { return wal.UnixNano(ev.Timestamp) }

// append appends the encoded event b, of timestamp ts, to the log.
func (s *Sink) append(ctx context.Context, ts int64, b []byte) (Receipt, error) {
	ack, err := s.w.AppendAck(ctx, wal.RecordEvent, ts, b)
	if err != nil {
		if errors.Is(err, wal.ErrClosed) {
			return Receipt{}, ErrSinkClosed
		}
		return Receipt{}, fmt.Errorf("audit: %w", err)
	}
	return Receipt{Seq: ack.Seq, LeafHash: ack.Digest}, nil
}

// Emit writes an mtlog event durably (a zero Timestamp is stamped with the
// Sink's clock, as by Write). It implements core.LogEventSink, whose
// Emit has no error result, so failures follow the failure policy:
//
//   - default (fail-closed): the error goes to the failure handler, then Emit
//     keeps retrying (backing off from 10ms to 1s) and does not return until
//     the event is durable or the Sink is closed. The goroutine that logged
//     the audited action does not proceed unrecorded. Retrying can succeed
//     after a transient error such as a full disk that was freed; after an
//     fsync error the log stays failed and Emit blocks until Close.
//   - WithPanicOnFailure: the handler is called, then Emit panics with the
//     error.
//   - WithFailOpen: the handler is called and Emit returns.
//
// A permanent error, one matching ErrUnwritable (the event is too large for
// WithMaxEventSize, cannot be encoded, or has a malformed idempotency key),
// is never retried, because no retry can write that event: the handler is
// called once with it, then Emit returns under the default policy and under
// WithFailOpen, and panics under WithPanicOnFailure. Blocking would hold the
// logging goroutine forever without protecting anything; the handler is
// where the missing event is reported. After Close, and for a nil event,
// the handler gets the error and Emit returns. Emit never modifies ev.
func (s *Sink) Emit(ev *core.LogEvent) {
	if ev == nil {
		s.cfg.onFailure(nil, ErrNilEvent)
		s.dropped(context.Background(), ErrNilEvent)
		return
	}
	_ = s.emit(context.Background(), ev, fromLogEvent(ev))
}

// EmitSimple implements core.SimpleSink, mtlog's fast path for plain messages.
func (s *Sink) EmitSimple(timestamp time.Time, level core.LogEventLevel, message string) {
	ev := &Event{Timestamp: timestamp, Level: toLevel(level), MessageTemplate: message, Message: message}
	_ = s.emit(context.Background(), nil, ev)
}

// EmitEvent writes ev durably under the failure policy, as Emit does for an
// mtlog event, and reports the outcome: it is the entry point for loggers
// whose API cannot return an error to the caller that logged (slog.Logger,
// logr, zerolog, zap drop or only print it), where a plain Write error would
// let the log call return with the event unrecorded.
//
// It returns nil once ev is durable. Under the default fail-closed policy it
// keeps retrying transient errors, and returns an error in three cases only,
// which tell whether ev may be in the log (as for Write):
//
//   - the error matches ErrUnwritable (ev is nil, too large, cannot be
//     encoded, or has a malformed idempotency key): not written, and never
//     retried;
//   - the Sink was closed (ErrSinkClosed): not written, unless the error
//     also wraps an earlier attempt's maybe-written error (such as
//     ErrFailed);
//   - ctx ended (the error matches ctx.Err()): maybe written, because the
//     event may have been in a group commit when ctx ended.
//
// A retry of a maybe-written event can write it twice unless it carries an
// idempotency key (IdempotencyKeyProperty). With WithFailOpen it returns
// the first write error; with WithPanicOnFailure it panics. Every error is
// also given to the failure handler first.
func (s *Sink) EmitEvent(ctx context.Context, ev *Event) error {
	if ev == nil {
		s.cfg.onFailure(nil, ErrNilEvent)
		s.dropped(ctx, ErrNilEvent)
		return ErrNilEvent
	}
	return s.emit(ctx, nil, ev)
}

// emit writes ev under the failure policy, counting it as dropped (with
// WithMetrics) when it gives up.
func (s *Sink) emit(ctx context.Context, orig *core.LogEvent, ev *Event) error {
	err := s.emitPolicy(ctx, orig, ev)
	s.dropped(ctx, err)
	s.noteEmit(ctx, err)
	return err
}

func (s *Sink) emitPolicy(ctx context.Context, orig *core.LogEvent, ev *Event) error {
	_, err := s.Write(ctx, ev)
	if err == nil {
		return nil
	}
	if orig == nil {
		orig = &core.LogEvent{Timestamp: ev.Timestamp, Level: core.LogEventLevel(ev.Level), MessageTemplate: ev.MessageTemplate, Properties: map[string]any{}}
	}
	s.cfg.onFailure(orig, err)
	if errors.Is(err, ErrSinkClosed) || ctx.Err() != nil {
		return err
	}
	switch s.cfg.policy {
	case policyFailOpen:
		return err
	case policyPanic:
		panic(fmt.Errorf("audit: event not recorded (WithPanicOnFailure): %w", err))
	}
	if errors.Is(err, ErrUnwritable) { // no retry can write it
		return err
	}
	delay := 10 * time.Millisecond
	for {
		t := time.NewTimer(delay)
		select {
		case <-s.done:
			t.Stop()
			return fmt.Errorf("%w (event not acknowledged: %w)", ErrSinkClosed, err)
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("audit: event not acknowledged: %w (last write error: %w)", ctx.Err(), err)
		case <-t.C:
		}
		_, werr := s.Write(ctx, ev)
		if werr == nil {
			return nil
		}
		if errors.Is(werr, ErrSinkClosed) {
			return fmt.Errorf("%w (event not acknowledged: %w)", werr, err)
		}
		if ctx.Err() != nil { // keep the write error that made us wait
			return fmt.Errorf("audit: event not acknowledged: %w (last write error: %w)", ctx.Err(), err)
		}
		err = werr
		delay = min(2*delay, time.Second)
	}
}

// Replay returns the events whose timestamps t satisfy from ≤ t < to, in
// sequence order, as they are durable when Replay is called. A zero from or
// to leaves that end open; any other time.Time, of any year, is an exact
// bound. It stops at the first error (damage, or ctx done).
//
// Fields encrypted by WithEncryption are decrypted with the Sink's keyring
// (see protect.Reveal): a shredded one reads as Shredded. A field that does
// not decrypt is yielded with its event and a *protect.FieldError (the
// event is not nil then), and the replay goes on if the caller goes on.
func (s *Sink) Replay(ctx context.Context, from, to time.Time) iter.Seq2[*Event, error] {
	return s.reveal(ctx, loggedSeq(ctx, func(ctx context.Context) error { return s.logRead(ctx, "Replay", TimeRange(from, to), "") }, func() iter.Seq2[*Event, error] { return verify.Replay(ctx, s.w.Reader(), from, to) }))
}

// LastSeq returns the sequence number of the last record written.
func (s *Sink) LastSeq() uint64 { return s.w.LastSeq() }

// Dir returns the log directory.
func (s *Sink) Dir() string { return s.w.Dir() }

// Close waits for in-flight writes, seals the log, signs a final
// checkpoint covering everything (when a signing key is configured) and
// releases the directory. With WithShipping, it then ships what the
// backends lack, the final checkpoint included, waiting at most
// WithShippingCloseTimeout; what is not shipped by then is told to the
// failure handler, not returned. It is safe to call while other goroutines
// Emit; later Emits report ErrSinkClosed to the failure handler.
//
// If the log is in its failed state (a failed fsync, or its directory
// removed or replaced), Close returns that failure, matching ErrFailed and
// carrying its cause, so that a shutdown path can alert. Close is
// idempotent: every call returns the first call's error (a concurrent call
// waits for the first to finish).
func (s *Sink) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		close(s.done)
		stopErr := s.stopLifecycle()
		aerr := s.closeAccess()
		s.led.StopRunner()
		werr := s.w.Close()
		if s.idem != nil {
			s.idem.Close() // keyed writes in flight end with the log
		}
		if werr != nil {
			stopErr = nil // the log's failure says it all
		}
		lerr := s.led.Close() // the final checkpoint
		// The shipper ran on: it now ships what is left, within a bound.
		s.finishShipping()
		s.cfg.ship.close()
		uerr := s.w.ReleaseLock() // only now may another process open the log
		s.closeErr = errors.Join(stopErr, aerr, werr, lerr, s.cfg.closeKeys(), uerr)
		if s.mon != nil {
			s.mon.Close()
		}
	})
	return s.closeErr
}

func toLevel(l core.LogEventLevel) Level {
	switch {
	case l < 0:
		return LevelVerbose
	case l > 255:
		return Level(255)
	}
	return Level(l)
}

// fromLogEvent builds an audit Event from an mtlog event without modifying
// or copying its properties (the encoder only reads them).
func fromLogEvent(le *core.LogEvent) *Event {
	return &Event{
		Timestamp:       le.Timestamp,
		Level:           toLevel(le.Level),
		MessageTemplate: le.MessageTemplate,
		Message:         render(le),
		Properties:      le.Properties,
		Exception:       le.Exception,
	}
}

// render renders the message template; a template the renderer cannot
// handle is kept as it is rather than losing the event.
func render(le *core.LogEvent) (msg string) {
	defer func() {
		if recover() != nil {
			msg = le.MessageTemplate
		}
	}()
	if le.Properties == nil {
		return le.MessageTemplate
	}
	return le.RenderMessage()
}
