// Package slogaudit is an [slog.Handler] that writes every record durably to
// an mtlog-audit [audit.Sink].
//
// Handle returns only once the record is durable on disk, and returns an
// error when it could not be recorded. It writes with
// [audit.Sink.EmitEvent], so failures follow the sink's failure policy: by
// default (fail-closed) Handle keeps retrying and does not return until the
// record is durable, the sink is closed, or the context passed to Handle
// ends (a record that can never be written, matching audit.ErrUnwritable,
// such as one above audit.WithMaxEventSize, is not retried: Handle returns
// its error at once); with audit.WithFailOpen it returns the write error at once; with
// audit.WithPanicOnFailure it panics. Every failure also goes to the sink's
// failure handler (audit.WithFailureHandler). This matters because
// [slog.Logger] methods discard the error a Handler returns: with the
// default policy a logging call that returned has its record on disk, and
// the handler hears of every record that is not.
//
// Attribute values that cannot be encoded (channels, functions, values
// nested deeper than the encoder allows) are stored as the audit
// Unsupported placeholder naming their type; they never fail the record.
//
// Mapping of a record to an [audit.Event]:
//
//   - Timestamp: the record's time; a zero time stays zero, and the Sink
//     records such an event at its clock's time (see audit.Sink.Write).
//   - MessageTemplate and Message: the record's message.
//   - Properties: the attributes (those of WithAttrs and of the record);
//     groups (WithGroup, slog.Group) become nested map[string]any values;
//     slog.LogValuer values are resolved; empty groups and zero Attrs are
//     dropped and groups with an empty key are inlined, as slog requires.
//   - Level: by band of the slog level, as below.
//
// Level mapping:
//
//	slog level           audit level
//	< -4 (below Debug)   Verbose
//	[-4, 0)              Debug
//	[0, 4)               Information
//	[4, 8)               Warning
//	[8, 12)              Error
//	>= 12                Fatal
//
// A custom level between the named ones falls into the band below it
// (slog.LevelInfo+2 is Information).
package slogaudit

import (
	"context"
	"errors"
	"log/slog"
	"slices"

	audit "github.com/willibrandon/mtlog-audit"
)

// ErrNilSink is returned by New for a nil sink, and by Handle on a Handler
// that has no sink (the zero Handler).
var ErrNilSink = errors.New("slogaudit: no audit sink: pass the *audit.Sink from audit.New, or use NewHandler")

// Options configures a Handler.
type Options struct {
	// Level is the minimum level written; records below it are not
	// enabled. Nil means slog.LevelInfo, as for the standard handlers.
	Level slog.Leveler
}

// Handler is an slog.Handler writing to an audit.Sink. It is safe for
// concurrent use.
type Handler struct {
	sink  *audit.Sink
	level slog.Leveler
	goas  []groupOrAttrs // WithGroup/WithAttrs calls, in order
}

// groupOrAttrs is one WithGroup (group != "") or WithAttrs call.
type groupOrAttrs struct {
	group string
	attrs []slog.Attr
}

// New returns a Handler writing to sink. opts may be nil. A nil sink is
// refused with ErrNilSink, so a misconfigured audit log fails at start-up
// rather than dropping records. The Handler does not own the sink: closing
// it remains the caller's job.
func New(sink *audit.Sink, opts *Options) (*Handler, error) {
	if sink == nil {
		return nil, ErrNilSink
	}
	h := &Handler{sink: sink, level: slog.LevelInfo}
	if opts != nil && opts.Level != nil {
		h.level = opts.Level
	}
	return h, nil
}

// NewHandler opens a new audit.Sink with opts (audit.WithWAL names its
// directory) and returns a Handler writing to it with default Options. The
// caller owns the sink: call h.Sink().Close() when done.
func NewHandler(opts ...audit.Option) (*Handler, error) {
	sink, err := audit.New(opts...)
	if err != nil {
		return nil, err
	}
	return New(sink, nil)
}

// Sink returns the audit.Sink the Handler writes to (nil if it has none).
func (h *Handler) Sink() *audit.Sink { return h.sink }

// Enabled reports whether level is at or above the configured minimum.
func (h *Handler) Enabled(_ context.Context, level slog.Level) bool {
	if h == nil || h.level == nil {
		return level >= slog.LevelInfo
	}
	return level >= h.level.Level()
}

// WithAttrs returns a Handler that adds attrs to every record, inside the
// groups opened so far.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	res := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		a.Value = a.Value.Resolve()
		res[i] = a
	}
	return h.with(groupOrAttrs{attrs: res})
}

// WithGroup returns a Handler that nests the attributes added later under
// name. An empty name returns h unchanged.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with(groupOrAttrs{group: name})
}

func (h *Handler) with(g groupOrAttrs) *Handler {
	h2 := *h
	h2.goas = append(slices.Clip(h.goas), g)
	return &h2
}

// Handle writes r durably and returns nil once it is on disk. Otherwise it
// returns why not, under the sink's failure policy (see the package
// documentation): ErrNilSink for the zero Handler, an error matching
// audit.ErrSinkClosed after the sink was closed, one matching ctx.Err() if
// ctx ends first, the write error with audit.WithFailOpen.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if h == nil || h.sink == nil {
		return ErrNilSink
	}
	cur := make(map[string]any, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		addAttr(cur, a)
		return true
	})
	// Walk the WithGroup/WithAttrs chain from the innermost out. Attrs
	// from WithAttrs never override a later (record) attr of the same
	// key; a group left empty is dropped.
	for i := len(h.goas) - 1; i >= 0; i-- {
		g := h.goas[i]
		if g.group != "" {
			if len(cur) == 0 {
				continue
			}
			cur = map[string]any{g.group: cur}
			continue
		}
		pre := make(map[string]any, len(g.attrs))
		for _, a := range g.attrs {
			addAttr(pre, a)
		}
		merge(cur, pre)
	}
	if len(cur) == 0 {
		cur = nil
	}
	ev := &audit.Event{
		Timestamp:       r.Time,
		Level:           Level(r.Level),
		MessageTemplate: r.Message,
		Message:         r.Message,
		Properties:      cur,
	}
	return h.sink.EmitEvent(ctx, ev)
}

// merge adds to dst the entries of src whose keys dst lacks; nested maps
// present in both are merged the same way.
func merge(dst, src map[string]any) {
	for k, v := range src {
		old, ok := dst[k]
		if !ok {
			dst[k] = v
			continue
		}
		om, ok1 := old.(map[string]any)
		nm, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			merge(om, nm)
		}
	}
}

// addAttr adds a to m following the slog Handler rules.
func addAttr(m map[string]any, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		attrs := a.Value.Group()
		if len(attrs) == 0 {
			return
		}
		if a.Key == "" {
			for _, ga := range attrs {
				addAttr(m, ga)
			}
			return
		}
		sub, _ := m[a.Key].(map[string]any)
		if sub == nil {
			sub = make(map[string]any, len(attrs))
		}
		for _, ga := range attrs {
			addAttr(sub, ga)
		}
		if len(sub) > 0 {
			m[a.Key] = sub
		}
		return
	}
	m[a.Key] = value(a.Value)
}

// value converts a resolved, non-group slog.Value to a property value.
func value(v slog.Value) any {
	switch v.Kind() {
	case slog.KindString:
		return v.String()
	case slog.KindInt64:
		return v.Int64()
	case slog.KindUint64:
		return v.Uint64()
	case slog.KindFloat64:
		return v.Float64()
	case slog.KindBool:
		return v.Bool()
	case slog.KindDuration:
		return v.Duration()
	case slog.KindTime:
		return v.Time()
	default:
		return v.Any()
	}
}

// Level maps an slog level to an audit level (see the package
// documentation for the bands).
func Level(l slog.Level) audit.Level {
	switch {
	case l < slog.LevelDebug:
		return audit.LevelVerbose
	case l < slog.LevelInfo:
		return audit.LevelDebug
	case l < slog.LevelWarn:
		return audit.LevelInformation
	case l < slog.LevelError:
		return audit.LevelWarning
	case l < slog.LevelError+4:
		return audit.LevelError
	default:
		return audit.LevelFatal
	}
}

var _ slog.Handler = (*Handler)(nil)
