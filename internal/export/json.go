package export

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/willibrandon/mtlog-audit/event"
)

// timeLayout is RFC 3339 with exactly nine fractional digits, so that the
// text of UTC times sorts as the times do.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// errNilEvent is returned for a nil *event.Event.
var errNilEvent = errors.New("export: nil event")

// JSON returns ev, with its WAL sequence number seq, as one JSON object
// without a trailing newline: the line format of `replay --json` and
// of JSONL export. See AppendJSON for the layout.
func JSON(seq uint64, ev *event.Event) ([]byte, error) {
	return AppendJSON(nil, seq, ev)
}

// AppendJSON appends the JSON object of ev to dst and returns the extended
// buffer. The fields are, in this order:
//
//   - "seq": seq, a number;
//   - "time": ev.Timestamp in UTC, RFC 3339 with nine fractional digits;
//   - "level": the level name (Verbose, Debug, Information, Warning, Error,
//     Fatal, or Level(n) for another value);
//   - "template": ev.MessageTemplate;
//   - "message": Render(ev);
//   - "properties": ev.Properties, left out when there are none;
//   - "exception": the exception's text, left out when ev.Exception is nil.
//
// Property values are written as follows: nil, bools, int64, uint64 and
// finite float64 as JSON literals (integers exactly, whatever their size;
// NaN and ±Inf as the strings "NaN", "+Inf", "-Inf"); strings as strings
// (invalid UTF-8 bytes become U+FFFD); []byte as a standard base64 string;
// time.Time as an RFC 3339 string with nine fractional digits in the
// value's own offset; time.Duration as its String(); json.RawMessage
// verbatim (compacted; it holds exact numbers); errors (*event.ErrorValue)
// as their message; event.Unsupported as {"unsupported": type, "reason":
// reason}; complex128 as a string such as "(1+2i)"; maps as objects with
// keys sorted bytewise; slices as arrays. A value of any other type is first
// normalized with event.Normalize, exactly as storing and replaying it would,
// and anything still unknown is written as its fmt %v string, so no value is
// dropped. Output is deterministic, and no HTML escaping is applied.
//
// The only error is for a nil ev.
func AppendJSON(dst []byte, seq uint64, ev *event.Event) ([]byte, error) {
	if ev == nil {
		return dst, errNilEvent
	}
	b := append(dst, `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"time":"`...)
	b = ev.Timestamp.UTC().AppendFormat(b, timeLayout)
	b = append(b, `","level":`...)
	b = appendString(b, ev.Level.String())
	b = append(b, `,"template":`...)
	b = appendString(b, ev.MessageTemplate)
	b = append(b, `,"message":`...)
	b = appendString(b, Render(ev))
	if len(ev.Properties) > 0 {
		b = append(b, `,"properties":`...)
		b = appendObject(b, ev.Properties, false)
	}
	if ev.Exception != nil {
		b = append(b, `,"exception":`...)
		b = appendString(b, errorText(ev.Exception))
	}
	return append(b, '}'), nil
}

// appendProperties appends the JSON object of props, or nothing when props
// is empty.
func appendProperties(b []byte, props map[string]any) []byte {
	if len(props) == 0 {
		return b
	}
	return appendObject(b, props, false)
}

// appendValue appends the JSON form of a property value. normalized tells
// that v came out of event.Normalize, so an unknown type is not normalized
// again (which could not terminate if Normalize returned an unknown type).
func appendValue(b []byte, v any, normalized bool) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, x)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case uint64:
		return strconv.AppendUint(b, x, 10)
	case float64:
		return appendFloat(b, x)
	case string:
		return appendString(b, x)
	case []byte:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, x)
		return append(b, '"')
	case time.Time:
		b = append(b, '"')
		b = x.AppendFormat(b, timeLayout)
		return append(b, '"')
	case time.Duration:
		return appendString(b, x.String())
	case json.RawMessage:
		return appendRaw(b, x)
	case *event.ErrorValue:
		if x == nil {
			return append(b, "null"...)
		}
		return appendString(b, x.Message)
	case event.Unsupported:
		return appendUnsupported(b, x)
	case *event.Unsupported:
		if x == nil {
			return append(b, "null"...)
		}
		return appendUnsupported(b, *x)
	case complex128:
		return appendString(b, strconv.FormatComplex(x, 'g', -1, 128))
	case map[string]any:
		if !normalized && !isNormalized(x, 1) {
			return appendValue(b, event.Normalize(x), true)
		}
		return appendObject(b, x, true)
	case []any:
		if !normalized && !isNormalized(x, 1) {
			return appendValue(b, event.Normalize(x), true)
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, e, true)
		}
		return append(b, ']')
	case error:
		return appendString(b, errorText(x))
	}
	if !normalized {
		return appendValue(b, event.Normalize(v), true)
	}
	return appendString(b, fmt.Sprintf("%v", v))
}

// maxDepth is the deepest container nesting event.Decode returns (the
// Properties map is at depth 0, its values at depth 1).
const maxDepth = 64

// isNormalized reports whether v, at the given depth, holds only the kinds
// event.Decode returns, nested no deeper than it allows. A value that holds
// itself is not normalized (its depth is unbounded), so the check always
// ends. Values from replayed events pass it without allocating; anything
// else is passed through event.Normalize first.
func isNormalized(v any, depth int) bool {
	switch x := v.(type) {
	case nil, bool, int64, uint64, float64, complex128, string, []byte, time.Time,
		time.Duration, json.RawMessage, *event.ErrorValue, event.Unsupported:
		return true
	case map[string]any:
		if depth > maxDepth {
			return false
		}
		for _, e := range x {
			if !isNormalized(e, depth+1) {
				return false
			}
		}
		return true
	case []any:
		if depth > maxDepth {
			return false
		}
		for _, e := range x {
			if !isNormalized(e, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

// appendObject appends m as a JSON object with its keys sorted bytewise.
func appendObject(b []byte, m map[string]any, normalized bool) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendValue(b, m[k], normalized)
	}
	return append(b, '}')
}

// appendUnsupported appends {"unsupported":TYPE,"reason":REASON}.
func appendUnsupported(b []byte, u event.Unsupported) []byte {
	b = append(b, `{"unsupported":`...)
	b = appendString(b, u.Type)
	b = append(b, `,"reason":`...)
	b = appendString(b, u.Reason)
	return append(b, '}')
}

// appendRaw appends the JSON text raw, compacted. An empty raw is null; text
// that is not valid JSON (possible only for an event that did not come from
// event.Decode) is written as a string so that the output stays valid.
func appendRaw(b []byte, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return append(b, "null"...)
	}
	n := len(b)
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, raw); err != nil {
		return appendString(b[:n], string(raw))
	}
	return buf.Bytes()
}

// appendFloat appends f as encoding/json does (shortest representation that
// round-trips; exponent form below 1e-6 and from 1e21), and the non-finite
// values, which JSON cannot represent, as the strings "NaN", "+Inf", "-Inf".
func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"+Inf"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Inf"`...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9, as encoding/json does.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. It escapes what JSON requires
// plus U+2028 and U+2029 (as encoding/json does) but, unlike
// encoding/json, not <, > and &. Invalid UTF-8 bytes become U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// errorText returns err.Error(), or a placeholder if Error panics (possible
// only for an error that did not come from event.Decode, such as a typed nil
// pointer).
func errorText(err error) (s string) {
	defer func() {
		if r := recover(); r != nil {
			s = fmt.Sprintf("<error %T: Error() panicked: %v>", err, r)
		}
	}()
	return err.Error()
}
