// Package zerologaudit sends zerolog output to a durable audit sink.
//
//	sink, _ := audit.New(audit.WithWAL("/var/lib/myapp/audit"))
//	defer sink.Close()
//	logger := zerolog.New(zerologaudit.New(sink)).With().Timestamp().Logger()
//	logger.Info().Str("user", "u-1").Msg("exported")
//
// Every zerolog write is parsed as one JSON object and written to the sink
// with [audit.Sink.EmitEvent]: Write returns only once the event is durable,
// and returns an error to zerolog otherwise (zerolog passes it to
// zerolog.ErrorHandler, by default printing it to stderr). Failures follow the
// sink's failure policy: by default (fail-closed) Write keeps retrying until
// the event is durable or the sink is closed, so a log call that returned is
// on disk, except an event that can never be written (audit.ErrUnwritable,
// such as one above audit.WithMaxEventSize), whose error is returned at
// once; with audit.WithFailOpen it returns the write error at once. The
// sink's failure handler hears of every failure.
//
// Field mapping:
//
//   - "level" (zerolog.LevelFieldName) sets the level: trace → Verbose,
//     debug → Debug, info → Information, warn → Warning, error → Error,
//     fatal and panic → Fatal; a missing, empty ("no level") or unknown
//     level → Information. The level passed to WriteLevel is used when the
//     line has no "level" field.
//   - "message" (zerolog.MessageFieldName) sets Message and MessageTemplate.
//   - "time" (zerolog.TimestampFieldName) sets Timestamp. RFC 3339 strings
//     (with or without fractional seconds) and unix numbers are accepted;
//     numbers are read as seconds, milliseconds, microseconds or
//     nanoseconds according to zerolog.TimeFieldFormat (seconds when the
//     format is not a unix one). A missing or unparsable time leaves the
//     value as a property and the Timestamp set to time.Now().
//   - "error" (zerolog.ErrorFieldName), when a string, sets Exception and is
//     also kept as the "error" property.
//   - every other field becomes a property (a key that appears more than
//     once keeps every value: the second under "key#2", and so on): nested
//     objects as
//     map[string]any, arrays as []any, strings, bools and null as
//     themselves. Numbers are decoded without loss: an integer that fits in
//     int64 is stored as int64; any other number (a larger integer such as
//     18446744073709551615, or a float) is stored as json.RawMessage holding
//     its exact JSON text, so no digit is lost to float64 rounding.
//
// A write that is not a valid JSON object is still recorded, so nothing is
// lost: as an Information event whose message is "zerolog: malformed JSON"
// and whose property "Raw" holds the raw bytes as a string. Write then
// returns an error saying the input was malformed (wrapping the sink's
// error too, if the event could not be recorded).
package zerologaudit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fastjson"
	audit "github.com/willibrandon/mtlog-audit"
)

// ErrNilSink is returned by New for a nil sink, and by Write on a Writer
// without one (the zero Writer).
var ErrNilSink = errors.New("zerologaudit: no audit sink: pass the *audit.Sink from audit.New")

// ErrMalformed is matched (errors.Is) by the error Write returns for input
// that is not one JSON object. The raw input is still recorded.
var ErrMalformed = errors.New("zerologaudit: malformed JSON log line")

// Writer is an io.Writer and zerolog.LevelWriter that records each zerolog
// line as a durable audit event. It is safe for concurrent use.
type Writer struct {
	sink *audit.Sink
}

var (
	_ io.Writer           = (*Writer)(nil)
	_ zerolog.LevelWriter = (*Writer)(nil)
)

// New returns a Writer that records into sink. A nil sink is refused with
// ErrNilSink. The Writer does not own the sink: closing it is the caller's
// job.
func New(sink *audit.Sink) (*Writer, error) {
	if sink == nil {
		return nil, ErrNilSink
	}
	return &Writer{sink: sink}, nil
}

// Write parses p as one zerolog JSON object and writes it durably. It
// returns len(p) once the event is durable, or 0 and an error.
func (w *Writer) Write(p []byte) (int, error) {
	return w.write(p, zerolog.NoLevel)
}

// WriteLevel is Write for zerolog.LevelWriter; lvl is used only when the
// line carries no level field.
func (w *Writer) WriteLevel(lvl zerolog.Level, p []byte) (int, error) {
	return w.write(p, lvl)
}

func (w *Writer) write(p []byte, lvl zerolog.Level) (int, error) {
	if w == nil || w.sink == nil {
		return 0, ErrNilSink
	}
	ev, perr := Parse(p)
	if perr != nil {
		ev = &audit.Event{
			Timestamp:       time.Now(),
			Level:           audit.LevelInformation,
			MessageTemplate: "zerolog: malformed JSON",
			Message:         "zerolog: malformed JSON",
			Properties:      map[string]any{"Raw": string(p)},
		}
	} else if _, ok := ev.Properties[zerolog.LevelFieldName]; !ok && lvl != zerolog.NoLevel {
		ev.Level = mapLevel(lvl.String())
	}
	if err := w.sink.EmitEvent(context.Background(), ev); err != nil {
		if perr != nil {
			return 0, fmt.Errorf("%w (%v); recording the raw line also failed: %w", ErrMalformed, perr, err)
		}
		return 0, err
	}
	if perr != nil {
		return 0, fmt.Errorf("%w (%v); raw line recorded in property \"Raw\"", ErrMalformed, perr)
	}
	return len(p), nil
}

// parsers pools fastjson parsers; a parser's values are valid until its
// next Parse, and everything is copied out before it is returned.
var parsers fastjson.ParserPool

// Parse converts one zerolog JSON line into an audit event, following the
// field mapping in the package documentation. It fails when p is not one
// JSON object.
func Parse(p []byte) (*audit.Event, error) {
	ps := parsers.Get()
	defer parsers.Put(ps)
	v, err := ps.ParseBytes(p)
	if err != nil {
		return nil, err
	}
	o, err := v.Object()
	if err != nil {
		return nil, errors.New("not a JSON object")
	}
	// The level, message and time fields are taken straight from the
	// parser (the first of each, when it has the expected type); every
	// other field, and any repeat of those, becomes a property.
	ev := &audit.Event{Level: audit.LevelInformation}
	var haveLevel, haveMsg, haveTime bool
	m := make(map[string]any, o.Len())
	o.Visit(func(k []byte, v *fastjson.Value) {
		switch {
		case !haveLevel && v.Type() == fastjson.TypeString && string(k) == zerolog.LevelFieldName:
			b, _ := v.StringBytes()
			ev.Level, haveLevel = mapLevel(string(b)), true
			return
		case !haveMsg && v.Type() == fastjson.TypeString && string(k) == zerolog.MessageFieldName:
			b, _ := v.StringBytes()
			ev.Message, haveMsg = string(b), true
			ev.MessageTemplate = ev.Message
			return
		case !haveTime && string(k) == zerolog.TimestampFieldName:
			if t, ok := parseTime(convert(v)); ok {
				ev.Timestamp, haveTime = t, true
				return
			}
		}
		put(m, string(k), convert(v))
	})
	if !haveTime {
		ev.Timestamp = time.Now()
	}
	if s, ok := m[zerolog.ErrorFieldName].(string); ok {
		ev.Exception = errors.New(s)
	}
	if len(m) > 0 {
		ev.Properties = m
	}
	return ev, nil
}

// put stores v under k, keeping every value of a repeated key: the second
// goes under "k#2", the third under "k#3", and so on.
func put(m map[string]any, k string, v any) {
	if _, dup := m[k]; !dup {
		m[k] = v
		return
	}
	for n := 2; ; n++ {
		kn := k + "#" + strconv.Itoa(n)
		if _, dup := m[kn]; !dup {
			m[kn] = v
			return
		}
	}
}

// convert copies a parsed JSON value out of the parser: objects become
// map[string]any, arrays []any, integers that fit int64 int64, and other
// numbers json.RawMessage with their exact text.
func convert(v *fastjson.Value) any {
	switch v.Type() {
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return string(b)
	case fastjson.TypeNumber:
		if i, err := v.Int64(); err == nil {
			return i
		}
		return json.RawMessage(v.MarshalTo(nil))
	case fastjson.TypeTrue:
		return true
	case fastjson.TypeFalse:
		return false
	case fastjson.TypeObject:
		o, _ := v.Object()
		m := make(map[string]any, o.Len())
		o.Visit(func(k []byte, e *fastjson.Value) { put(m, string(k), convert(e)) })
		return m
	case fastjson.TypeArray:
		vs, _ := v.Array()
		a := make([]any, len(vs))
		for i, e := range vs {
			a[i] = convert(e)
		}
		return a
	}
	return nil
}

func mapLevel(s string) audit.Level {
	switch strings.ToLower(s) {
	case "trace":
		return audit.LevelVerbose
	case "debug":
		return audit.LevelDebug
	case "warn", "warning":
		return audit.LevelWarning
	case "error":
		return audit.LevelError
	case "fatal", "panic":
		return audit.LevelFatal
	}
	return audit.LevelInformation
}

func parseTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case string:
		if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
			return t, true
		}
		if zerolog.TimeFieldFormat != "" && zerolog.TimeFieldFormat != time.RFC3339Nano {
			if t, err := time.Parse(zerolog.TimeFieldFormat, x); err == nil {
				return t, true
			}
		}
	case int64:
		switch zerolog.TimeFieldFormat {
		case zerolog.TimeFormatUnixMs:
			return time.UnixMilli(x), true
		case zerolog.TimeFormatUnixMicro:
			return time.UnixMicro(x), true
		case zerolog.TimeFormatUnixNano:
			return time.Unix(0, x), true
		}
		return time.Unix(x, 0), true
	case json.RawMessage: // a fractional unix time
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return time.Time{}, false
		}
		sec := f
		switch zerolog.TimeFieldFormat {
		case zerolog.TimeFormatUnixMs:
			sec = f / 1e3
		case zerolog.TimeFormatUnixMicro:
			sec = f / 1e6
		case zerolog.TimeFormatUnixNano:
			sec = f / 1e9
		}
		return time.Unix(0, int64(sec*1e9)), true
	}
	return time.Time{}, false
}
