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

var (
	// ErrSinkClosed is returned by Write, and reported by Emit, after Close.
	ErrSinkClosed = errors.New("audit: sink is closed")
	// ErrNilEvent is returned by Write, and reported by Emit, for a nil event.
	ErrNilEvent = errors.New("audit: nil event")
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
	led    *ledger
	closed atomic.Bool
	done   chan struct{} // closed by Close: wakes blocked fail-closed Emits
	once   sync.Once
	bufs   sync.Pool
	repair *RepairReport // what New repaired (WithRedundancy), nil if nothing

	closeErr error // what Close returned; written inside once
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
	if cfg.err != nil {
		return nil, cfg.err
	}
	if cfg.dir == "" {
		return nil, errors.New("audit: no WAL directory: pass audit.WithWAL(\"/path/to/audit-wal\")")
	}
	var repaired *RepairReport
	if len(cfg.mirrors) > 0 {
		var err error
		if repaired, err = openMirrors(&cfg); err != nil {
			return nil, fmt.Errorf("audit: open %s: %w", cfg.dir, err)
		}
		if repaired != nil { // reported at once: even if opening fails below
			cfg.onFailure(nil, &RepairError{Report: repaired})
		}
	}
	// The commit hook runs on the WAL's goroutine; the ledger is published
	// to it before the ledger's own goroutine can append (see openLedger).
	var published atomic.Pointer[ledger]
	cfg.wal.PreDigest = func(p []byte) [32]byte { return integrity.PayloadHash(p) }
	cfg.wal.OnCommit = func(recs []wal.Committed) error {
		l := published.Load()
		if l == nil { // nothing is appended before the ledger is published
			return nil
		}
		return l.onCommit(recs)
	}
	if cfg.ledger.signingKey != "" || cfg.ledger.epochEvery > 0 {
		// A signed log authenticates every batch (docs/integrity.md);
		// an unsigned one pays nothing for it.
		cfg.wal.Tag = func(recs []wal.Committed) ([32]byte, error) {
			l := published.Load()
			if l == nil {
				return [32]byte{}, errors.New("audit: a batch was written before the ledger was ready")
			}
			return l.tag(recs)
		}
	}
	w, err := wal.Open(cfg.fs, cfg.dir, cfg.wal)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", cfg.dir, err)
	}
	led, err := openLedger(cfg.ledger, cfg.fs, cfg.dir, w, published.Store)
	if err != nil {
		w.Release()
		return nil, fmt.Errorf("audit: open %s: %w", cfg.dir, err)
	}
	s := &Sink{cfg: cfg, w: w, led: led, done: make(chan struct{}), repair: repaired}
	s.bufs.New = func() any { b := make([]byte, 0, 1024); return &b }
	return s, nil
}

// Write encodes ev and appends it to the log, returning once it is durable
// (in the default sync mode). ev is not modified and not retained. If ctx is
// done first, Write returns ctx.Err() and the event is not acknowledged (it
// may still appear in the log).
func (s *Sink) Write(ctx context.Context, ev *Event) (Receipt, error) {
	if ev == nil {
		return Receipt{}, ErrNilEvent
	}
	if s.closed.Load() {
		return Receipt{}, ErrSinkClosed
	}
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	b, err := event.AppendEncode((*bp)[:0], ev)
	if err != nil {
		return Receipt{}, fmt.Errorf("audit: encode event: %w", err)
	}
	*bp = b
	var ts int64
	if !ev.Timestamp.IsZero() {
		ts = ev.Timestamp.UnixNano()
	}
	ack, err := s.w.AppendAck(ctx, wal.RecordEvent, ts, b)
	if err != nil {
		if errors.Is(err, wal.ErrClosed) {
			return Receipt{}, ErrSinkClosed
		}
		return Receipt{}, fmt.Errorf("audit: %w", err)
	}
	return Receipt{Seq: ack.Seq, LeafHash: ack.Digest}, nil
}

// Emit writes an mtlog event durably. It implements core.LogEventSink, whose
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
// After Close, and for a nil event, the handler gets the error and Emit
// returns. Emit never modifies ev.
func (s *Sink) Emit(ev *core.LogEvent) {
	if ev == nil {
		s.cfg.onFailure(nil, ErrNilEvent)
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
// It returns nil once ev is durable. Under the default fail-closed policy
// it keeps retrying and returns an error only when the event cannot be
// recorded at all: the Sink is closed (ErrSinkClosed), ctx ends (the error
// matches ctx.Err() and wraps the last write error), or ev is nil
// (ErrNilEvent). With WithFailOpen it returns the first write error; with
// WithPanicOnFailure it panics. Every error is also given to the failure
// handler first.
func (s *Sink) EmitEvent(ctx context.Context, ev *Event) error {
	if ev == nil {
		s.cfg.onFailure(nil, ErrNilEvent)
		return ErrNilEvent
	}
	return s.emit(ctx, nil, ev)
}

func (s *Sink) emit(ctx context.Context, orig *core.LogEvent, ev *Event) error {
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
	delay := 10 * time.Millisecond
	for {
		t := time.NewTimer(delay)
		select {
		case <-s.done:
			t.Stop()
			return fmt.Errorf("%w (event not recorded: %w)", ErrSinkClosed, err)
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("audit: event not recorded: %w (last write error: %w)", ctx.Err(), err)
		case <-t.C:
		}
		_, werr := s.Write(ctx, ev)
		if werr == nil {
			return nil
		}
		if errors.Is(werr, ErrSinkClosed) {
			return werr
		}
		if ctx.Err() != nil { // keep the write error that made us wait
			return fmt.Errorf("audit: event not recorded: %w (last write error: %w)", ctx.Err(), err)
		}
		err = werr
		delay = min(2*delay, time.Second)
	}
}

// Replay returns the events whose timestamps t satisfy from ≤ t < to, in
// sequence order, as they are durable when Replay is called. A zero from or
// to leaves that end open. It stops at the first error (damage, or ctx done).
func (s *Sink) Replay(ctx context.Context, from, to time.Time) iter.Seq2[*Event, error] {
	return replay(ctx, s.w.Reader(), from, to)
}

// LastSeq returns the sequence number of the last record written.
func (s *Sink) LastSeq() uint64 { return s.w.LastSeq() }

// Dir returns the log directory.
func (s *Sink) Dir() string { return s.w.Dir() }

// Close waits for in-flight writes, seals the log, signs a final
// checkpoint covering everything (when a signing key is configured) and
// releases the directory. It is safe to call while other goroutines Emit;
// later Emits report ErrSinkClosed to the failure handler.
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
		s.led.stopRunner()
		s.closeErr = errors.Join(s.w.Close(), s.led.close())
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
