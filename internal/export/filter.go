package export

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/willibrandon/mtlog-audit/event"
)

// filterHelp ends every filter error: where to read about the variables.
const filterHelp = "see `mtlog-audit replay --help` for the variables " +
	"(seq, time, level, message, template, exception, props) and https://expr-lang.org for the language"

// Filter is a compiled filter expression (expr-lang/expr). It is safe for
// concurrent use.
type Filter struct {
	src  string
	prog *vm.Program
}

// filterEnv is what a filter expression sees.
type filterEnv struct {
	Seq       uint64         `expr:"seq"`
	Time      time.Time      `expr:"time"`
	Level     int            `expr:"level"`
	Message   string         `expr:"message"`
	Template  string         `expr:"template"`
	Exception string         `expr:"exception"`
	Props     map[string]any `expr:"props"`

	Verbose     int `expr:"Verbose"`
	Debug       int `expr:"Debug"`
	Information int `expr:"Information"`
	Warning     int `expr:"Warning"`
	Error       int `expr:"Error"`
	Fatal       int `expr:"Fatal"`
}

// newEnv returns an environment with the level constants set.
func newEnv() filterEnv {
	return filterEnv{
		Verbose:     int(event.LevelVerbose),
		Debug:       int(event.LevelDebug),
		Information: int(event.LevelInformation),
		Warning:     int(event.LevelWarning),
		Error:       int(event.LevelError),
		Fatal:       int(event.LevelFatal),
	}
}

// CompileFilter compiles src, an expr-lang expression
// (https://expr-lang.org) that must evaluate to a bool. It sees:
//
//   - seq (uint64): the event's WAL sequence number;
//   - time (time.Time): the event's timestamp; date("2024-01-01") and
//     now() are available, a date without a zone is UTC;
//   - level (int), and the constants Verbose, Debug, Information, Warning,
//     Error, Fatal (0 … 5), so `level >= Warning` works; level names are
//     case-insensitive and the short forms work too (ERROR, error, ERR,
//     WRN, info), as in event.ParseLevel;
//   - message (the rendered message, see Render), template, exception (its
//     text, "" when there is none);
//   - props (map[string]any): the properties. A missing property is nil,
//     so `props.UserId == "u-1"` is false for an event without UserId,
//     and a comparison with <, >, <= or >= is false when either side is
//     nil: `props.Count > 10` is false for an event without Count (and so
//     is `props.Count <= 10`; write `(props.Count ?? 0) <= 10` to count a
//     missing one as 0). Arithmetic on nil is still an error. Integer
//     properties compare with integer and float literals. For filtering
//     only (the event is not changed), json.RawMessage values are decoded
//     (numbers become int64, or float64 when they are not integers that
//     fit), uint64 values above the int64 range become float64 (expr
//     compares integers as int, which would wrap them), errors become their
//     message and unsupported values their text; durations compare with
//     duration("1s").
//
// Examples: `level >= Error && props.UserId == "u-1"`,
// `message contains "export"`, `seq in 5..10`,
// `time > date("2024-01-01")`.
//
// A malformed expression, an unknown variable or an expression whose result
// is not a bool gives an error with the line and column of the problem and
// the line with a caret under it.
func CompileFilter(src string) (*Filter, error) {
	if strings.TrimSpace(src) == "" {
		return nil, fmt.Errorf("filter expression: empty; write an expression such as `level >= Error`; %s", filterHelp)
	}
	prog, err := expr.Compile(src, expr.Env(filterEnv{}), expr.AsBool(), expr.Timezone("UTC"),
		compareOption, expr.Patch(&filterPatcher{locals: localNames(src)}))
	if err != nil {
		return nil, filterError("filter expression", src, err)
	}
	return &Filter{src: src, prog: prog}, nil
}

// String returns the source of the expression.
func (f *Filter) String() string { return f.src }

// Match reports whether the event ev, whose WAL sequence number is seq,
// satisfies the filter. An error at run time (a type mismatch such as
// comparing a string property with a number) is returned, naming the
// event; Match never panics on it.
func (f *Filter) Match(seq uint64, ev *event.Event) (bool, error) {
	if ev == nil {
		return false, errNilEvent
	}
	env := newEnv()
	env.Seq = seq
	env.Time = ev.Timestamp
	env.Level = int(ev.Level)
	env.Message = Render(ev)
	env.Template = ev.MessageTemplate
	if ev.Exception != nil {
		env.Exception = errorText(ev.Exception)
	}
	env.Props = filterProps(ev.Properties)
	out, err := expr.Run(f.prog, env)
	if err != nil {
		return false, filterError(fmt.Sprintf("filter expression on event %d", seq), f.src, err)
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("filter expression on event %d: result is %T, not a bool; %s", seq, out, filterHelp)
	}
	return b, nil
}

// exprError is a filter error with our text that still unwraps to expr's.
type exprError struct {
	msg string
	err error
}

// Error returns the message with position, snippet and help.
func (e *exprError) Error() string { return e.msg }

// Unwrap returns expr's error (a *file.Error for a positioned one).
func (e *exprError) Unwrap() error { return e.err }

// filterError describes err, an error of expr about src, with the line and
// column of the problem, the line with a caret, a hint for the common
// mistake of comparing a missing property, and where to read more.
func filterError(what, src string, err error) error {
	var fe *file.Error
	if !errors.As(err, &fe) || fe.Snippet == "" {
		msg := err.Error()
		if errors.As(err, &fe) {
			msg = fe.Message
		}
		return &exprError{msg: fmt.Sprintf("%s %q: %s; %s", what, src, msg, filterHelp), err: err}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s: %s at line %d, column %d:%s\n", what, fe.Message, fe.Line, fe.Column+1, fe.Snippet)
	if strings.Contains(fe.Message, "<nil>") {
		sb.WriteString("a property missing from the event is nil: write `(props.Name ?? 0) > 1` or `props.Name != nil && …`, or `props.A?.B` for a nested one; ")
	}
	sb.WriteString(filterHelp)
	return &exprError{msg: sb.String(), err: err}
}

// filterProps returns props as the filter sees them: the same map when every
// value is usable as it is, else a converted copy (see filterValue). A nil
// map becomes an empty one.
func filterProps(props map[string]any) map[string]any {
	if props == nil {
		return map[string]any{}
	}
	for _, v := range props {
		if convertible(v, 1) {
			m := make(map[string]any, len(props))
			for k, v := range props {
				m[k] = filterValue(v)
			}
			return m
		}
	}
	return props
}

// convertible reports whether filterValue would change v: v holds a kind the
// filter converts or one event.Decode does not return, or is nested too deep.
func convertible(v any, depth int) bool {
	switch x := v.(type) {
	case nil, bool, int64, float64, complex128, string, []byte, time.Time, time.Duration:
		return false
	case uint64:
		return x > math.MaxInt64
	case map[string]any:
		if depth > maxDepth {
			return true
		}
		for _, e := range x {
			if convertible(e, depth+1) {
				return true
			}
		}
		return false
	case []any:
		if depth > maxDepth {
			return true
		}
		for _, e := range x {
			if convertible(e, depth+1) {
				return true
			}
		}
		return false
	}
	return true
}

// filterValue converts a property value for the filter: a value that is not
// what event.Decode returns is normalized first (as storing it would), then
// json.RawMessage is decoded, errors become their text and unsupported
// values their String, inside containers too.
func filterValue(v any) any {
	if !isNormalized(v, 1) {
		v = event.Normalize(v)
	}
	return convertNormalized(v)
}

// convertNormalized is filterValue for a normalized value.
func convertNormalized(v any) any {
	switch x := v.(type) {
	case uint64:
		if x > math.MaxInt64 {
			// expr compares integers as int: this one would wrap.
			return float64(x)
		}
		return x
	case json.RawMessage:
		return decodeRaw(x)
	case *event.ErrorValue:
		if x == nil {
			return nil
		}
		return x.Message
	case event.Unsupported:
		return x.String()
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = convertNormalized(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = convertNormalized(e)
		}
		return s
	}
	return v
}

// decodeRaw decodes JSON text for the filter: numbers become int64 when
// they are integers that fit, else float64; text that does not decode stays
// a string.
func decodeRaw(raw json.RawMessage) any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return string(raw)
	}
	return jsonNumbers(v)
}

// jsonNumbers replaces the json.Numbers in v, in place.
func jsonNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		if f, err := strconv.ParseFloat(string(x), 64); err == nil || errors.Is(err, strconv.ErrRange) {
			return f
		}
		return string(x)
	case map[string]any:
		for k, e := range x {
			x[k] = jsonNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = jsonNumbers(e)
		}
	}
	return v
}
