// Package zapaudit is a zapcore.Core that writes zap log entries to a
// durable audit sink.
//
//	sink, _ := audit.New(audit.WithWAL("/var/lib/myapp/audit"))
//	defer sink.Close()
//	core, _ := zapaudit.NewCore(sink, zapcore.InfoLevel)
//	logger := zap.New(core)
//	logger.Info("exported", zap.String("user", "u-1"), zap.Int("count", 42))
//
// Each entry is written with [audit.Sink.EmitEvent]: Core.Write returns only
// once the event is durable, and returns an error otherwise (zap prints it
// to the logger's ErrorOutput). Failures follow the sink's failure policy:
// by default (fail-closed) Write keeps retrying until the event is durable
// or the sink is closed, so a log call that returned is on disk, except an
// event that can never be written (audit.ErrUnwritable, such as one above
// audit.WithMaxEventSize), whose error is returned at once; with
// audit.WithFailOpen it returns the write error at once. Every failure also
// goes to the sink's failure handler, and Sync reports the first one.
//
// Levels: Debug → Debug, Info → Information, Warn → Warning,
// Error → Error, DPanic, Panic and Fatal → Fatal (anything else →
// Information).
//
// Fields (the core's With fields first, then the entry's) are encoded with
// zapcore.NewMapObjectEncoder, so every zap field type is supported: objects
// become map[string]any, arrays []any, durations time.Duration, binary
// []byte, times time.Time, and so on. The error of zap.Error(err) (key
// "error") also becomes the event's Exception. The entry's logger name, if
// any, is stored as property "Logger", its caller, if defined, as "Caller"
// ("file:line") and its stack, if any, as "Stack". The message is both
// Message and MessageTemplate. A value that cannot be encoded (a
// zap.Reflect of a channel, an ObjectMarshaler that fails) is stored as an
// audit.Unsupported placeholder or as the "<field>Error" text zap's encoder
// produces; the entry is always written.
package zapaudit

import (
	"context"
	"errors"
	"sync"

	audit "github.com/willibrandon/mtlog-audit"
	"go.uber.org/zap/zapcore"
)

// ErrNilSink is returned by NewCore for a nil sink.
var ErrNilSink = errors.New("zapaudit: no audit sink: pass the *audit.Sink from audit.New")

type state struct {
	mu       sync.Mutex
	firstErr error
}

func (s *state) record(err error) {
	s.mu.Lock()
	if s.firstErr == nil {
		s.firstErr = err
	}
	s.mu.Unlock()
}

type core struct {
	zapcore.LevelEnabler
	sink   *audit.Sink
	fields []zapcore.Field
	st     *state // shared by the core and every core derived with With
}

// NewCore returns a zapcore.Core that writes entries enabled by enab to
// sink. A nil enab enables every level. A nil sink is refused with
// ErrNilSink. The core does not own the sink: closing it is the caller's
// job.
func NewCore(sink *audit.Sink, enab zapcore.LevelEnabler) (zapcore.Core, error) {
	if sink == nil {
		return nil, ErrNilSink
	}
	if enab == nil {
		enab = zapcore.DebugLevel - 1
	}
	return &core{LevelEnabler: enab, sink: sink, st: &state{}}, nil
}

// With returns a core that adds fields to every entry.
func (c *core) With(fields []zapcore.Field) zapcore.Core {
	nf := make([]zapcore.Field, 0, len(c.fields)+len(fields))
	nf = append(append(nf, c.fields...), fields...)
	return &core{LevelEnabler: c.LevelEnabler, sink: c.sink, fields: nf, st: c.st}
}

// Check adds the core to ce when ent's level is enabled.
func (c *core) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(ent.Level) {
		return ce.AddCore(ent, c)
	}
	return ce
}

// Write records ent and fields durably.
func (c *core) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fields {
		f.AddTo(enc)
	}
	props := enc.Fields
	ev := &audit.Event{
		Timestamp:       ent.Time,
		Level:           mapLevel(ent.Level),
		MessageTemplate: ent.Message,
		Message:         ent.Message,
	}
	if ent.LoggerName != "" {
		props["Logger"] = ent.LoggerName
	}
	if ent.Caller.Defined {
		props["Caller"] = ent.Caller.String()
	}
	if ent.Stack != "" {
		props["Stack"] = ent.Stack
	}
	if err := errorField(c.fields, fields); err != nil {
		ev.Exception = err
	}
	if len(props) > 0 {
		ev.Properties = props
	}
	if err := c.sink.EmitEvent(context.Background(), ev); err != nil {
		c.st.record(err)
		return err
	}
	return nil
}

// errorField returns the error of the last field keyed "error" holding an
// error (as zap.Error makes), nil if none.
func errorField(lists ...[]zapcore.Field) error {
	var found error
	for _, l := range lists {
		for _, f := range l {
			if f.Type == zapcore.ErrorType && f.Key == "error" {
				if err, ok := f.Interface.(error); ok && err != nil {
					found = err
				}
			}
		}
	}
	return found
}

// Sync writes nothing (every Write is already durable); it returns the first
// error any Write of this core, or of a core derived from it with With,
// returned so far, nil if none.
func (c *core) Sync() error {
	c.st.mu.Lock()
	defer c.st.mu.Unlock()
	return c.st.firstErr
}

func mapLevel(l zapcore.Level) audit.Level {
	switch l {
	case zapcore.DebugLevel:
		return audit.LevelDebug
	case zapcore.InfoLevel:
		return audit.LevelInformation
	case zapcore.WarnLevel:
		return audit.LevelWarning
	case zapcore.ErrorLevel:
		return audit.LevelError
	case zapcore.DPanicLevel, zapcore.PanicLevel, zapcore.FatalLevel:
		return audit.LevelFatal
	}
	return audit.LevelInformation
}
