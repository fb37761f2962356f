// Package lograudit is a [logr.LogSink] that writes every log call durably to
// an mtlog-audit [audit.Sink].
//
// Mapping of a call to an [audit.Event]:
//
//   - Timestamp: the time of the call.
//   - MessageTemplate and Message: the message.
//   - Level: Info at V(0) is Information, V(1) is Debug, V(2) and above is
//     Verbose; Error is Error, with Exception set to the error.
//   - Properties: the key/value pairs of WithValues and of the call (a
//     call's pair overrides a WithValues pair with the same key); the
//     verbosity of an Info call as "LogrV"; the names given to WithName,
//     joined with "/", as "Logger". A key without a value gets the value
//     "(MISSING)"; a key that is not a string is formatted with fmt.Sprint.
//     Values implementing logr.Marshaler are replaced by MarshalLog().
//
// logr has no error result, so events are written with
// [audit.Sink.EmitEvent] and failures follow the sink's failure policy: by
// default (fail-closed) a call does not return until the event is durable
// (or the sink is closed, or the event can never be written: see
// audit.ErrUnwritable); with audit.WithFailOpen the error goes to the
// audit.WithFailureHandler handler and the call returns; with
// audit.WithPanicOnFailure the call panics. A call on a closed sink returns
// at once and the failure handler gets audit.ErrSinkClosed.
//
// Values that cannot be encoded (channels, functions, a MarshalLog that
// panics) are stored as an audit.Unsupported placeholder or a string
// saying what happened; the event is always written.
//
// Enabled reports true for every level: an audit log keeps everything, and
// verbosity filtering, if wanted, belongs in front of the audit sink.
package lograudit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	audit "github.com/willibrandon/mtlog-audit"
)

// Missing is the value stored for a key that has no value.
const Missing = "(MISSING)"

// Property names set by the adapter.
const (
	// PropV holds the verbosity level of an Info call.
	PropV = "LogrV"
	// PropLogger holds the logger name built by WithName.
	PropLogger = "Logger"
)

// LogSink is a logr.LogSink writing to an audit.Sink. It is safe for
// concurrent use; WithValues and WithName return new LogSinks.
type LogSink struct {
	sink   *audit.Sink
	name   string
	values []any // normalized pairs: string key, value, ...
}

var (
	_ logr.LogSink          = (*LogSink)(nil)
	_ logr.CallDepthLogSink = (*LogSink)(nil)
)

// ErrNilSink is returned by New for a nil sink.
var ErrNilSink = errors.New("lograudit: no audit sink: pass the *audit.Sink from audit.New")

// New returns a logr.Logger writing to sink. The Logger does not own the
// sink: closing it is the caller's job. A nil sink is refused with
// ErrNilSink: logr calls cannot report errors, so an audit logger with
// nowhere to write must fail where it is built, not drop every event.
func New(sink *audit.Sink) (logr.Logger, error) {
	if sink == nil {
		return logr.Discard(), ErrNilSink
	}
	return logr.New(&LogSink{sink: sink}), nil
}

// Init implements logr.LogSink; runtime information is not used.
func (s *LogSink) Init(logr.RuntimeInfo) {}

// WithCallDepth implements logr.CallDepthLogSink. Caller information is not
// recorded, so it returns s.
func (s *LogSink) WithCallDepth(int) logr.LogSink { return s }

// Enabled reports true for every level (see the package documentation).
func (s *LogSink) Enabled(int) bool { return true }

// Info writes a non-error message with verbosity level and key/value pairs.
func (s *LogSink) Info(level int, msg string, keysAndValues ...any) {
	props := s.props(keysAndValues)
	props[PropV] = level
	s.emit(infoLevel(level), msg, props, nil)
}

// Error writes an error message with err as the event's Exception.
func (s *LogSink) Error(err error, msg string, keysAndValues ...any) {
	s.emit(audit.LevelError, msg, s.props(keysAndValues), err)
}

// WithValues returns a LogSink that adds keysAndValues to every event.
func (s *LogSink) WithValues(keysAndValues ...any) logr.LogSink {
	s2 := *s
	s2.values = append(append(make([]any, 0, len(s.values)+len(keysAndValues)+1), s.values...), normalize(keysAndValues)...)
	return &s2
}

// WithName returns a LogSink whose "Logger" property has name appended,
// separated by "/".
func (s *LogSink) WithName(name string) logr.LogSink {
	s2 := *s
	if s2.name == "" {
		s2.name = name
	} else {
		s2.name += "/" + name
	}
	return &s2
}

func (s *LogSink) emit(level audit.Level, msg string, props map[string]any, err error) {
	_ = s.sink.EmitEvent(context.Background(), &audit.Event{
		Timestamp:       time.Now(),
		Level:           level,
		MessageTemplate: msg,
		Message:         msg,
		Properties:      props,
		Exception:       err,
	})
}

func (s *LogSink) props(kv []any) map[string]any {
	m := make(map[string]any, (len(s.values)+len(kv))/2+2)
	put := func(pairs []any) {
		for i := 0; i+1 < len(pairs); i += 2 {
			m[pairs[i].(string)] = pairs[i+1]
		}
	}
	put(s.values)
	put(normalize(kv))
	if s.name != "" {
		m[PropLogger] = s.name
	}
	return m
}

// normalize returns kv as string-keyed pairs, with Missing for a dangling
// key and logr.Marshaler values replaced by their MarshalLog().
func normalize(kv []any) []any {
	out := make([]any, 0, len(kv)+1)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			k = fmt.Sprint(kv[i])
		}
		var v any = Missing
		if i+1 < len(kv) {
			v = kv[i+1]
			if m, ok := v.(logr.Marshaler); ok {
				v = marshalLog(m)
			}
		}
		out = append(out, k, v)
	}
	return out
}

// marshalLog calls m.MarshalLog, recording a panic as the value instead of
// losing the event.
func marshalLog(m logr.Marshaler) (v any) {
	defer func() {
		if r := recover(); r != nil {
			v = fmt.Sprintf("<panic in MarshalLog: %v>", r)
		}
	}()
	return m.MarshalLog()
}

// infoLevel maps a logr verbosity to an audit level.
func infoLevel(v int) audit.Level {
	switch {
	case v <= 0:
		return audit.LevelInformation
	case v == 1:
		return audit.LevelDebug
	default:
		return audit.LevelVerbose
	}
}
