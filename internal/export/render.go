package export

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/willibrandon/mtlog-audit/event"
)

// Render returns the text of the event's message: ev.Message when it is not
// empty, otherwise ev.MessageTemplate with its holes filled from
// ev.Properties.
//
// A hole is {Name}, {@Name}, {$Name}, {Name:format}, {Name,width} or
// {Name,width:format} (and mtlog's Go-template form {{.Name}}). A name
// starts with a letter or '_' and goes on with letters, digits, '_', '-'
// and '.', or is all digits. "{{" and "}}" outside a hole stand for "{" and
// "}". A hole whose name is not a property, or that is not well formed, is
// left as written.
//
// Values are rendered as mtlog renders them: strings without quotes
// (format "q" quotes them), nil as "nil", time.Time as RFC 3339, durations,
// errors and unsupported values as their text, []byte as text when it is
// printable UTF-8, maps and slices as JSON (see JSON); format "j" gives any
// value as JSON. Integers accept "000" (zero-padding to the format's
// length), "Dn", "x" and "X"; floats "Fn", "En", "Gn", "Pn" (percent) and
// "0.00"; times .NET-style layouts ("yyyy-MM-dd HH:mm:ss.fff") or Go
// layouts (any format containing a digit). A positive width right-aligns,
// a negative one left-aligns, counting runes. The capturing hints @ and $
// do not change the text.
func Render(ev *event.Event) string {
	if ev == nil {
		return ""
	}
	if ev.Message != "" {
		return ev.Message
	}
	tpl := ev.MessageTemplate
	if !strings.ContainsAny(tpl, "{}") {
		return tpl
	}
	var sb strings.Builder
	sb.Grow(len(tpl) + 16)
	for i := 0; i < len(tpl); {
		c := tpl[i]
		switch {
		case c == '{' && strings.HasPrefix(tpl[i:], "{{"):
			if n, h, ok := goHole(tpl[i:]); ok {
				if v, ok := ev.Properties[h.name]; ok {
					sb.WriteString(h.render(v))
				} else {
					sb.WriteString(tpl[i : i+n])
				}
				i += n
				continue
			}
			sb.WriteByte('{')
			i += 2
		case c == '}' && strings.HasPrefix(tpl[i:], "}}"):
			sb.WriteByte('}')
			i += 2
		case c == '{':
			j := strings.IndexByte(tpl[i+1:], '}')
			if j < 0 {
				sb.WriteString(tpl[i:])
				i = len(tpl)
				continue
			}
			hole := tpl[i : i+1+j+1]
			if h, ok := parseHole(hole[1 : len(hole)-1]); ok {
				if v, ok := ev.Properties[h.name]; ok {
					sb.WriteString(h.render(v))
					i += len(hole)
					continue
				}
			}
			sb.WriteString(hole)
			i += len(hole)
		default:
			j := strings.IndexAny(tpl[i+1:], "{}")
			if j < 0 {
				sb.WriteString(tpl[i:])
				i = len(tpl)
			} else {
				sb.WriteString(tpl[i : i+1+j])
				i += 1 + j
			}
		}
	}
	return sb.String()
}

// goHole parses mtlog's Go-template hole {{.Name}} ({{@.Name}},
// {{$.Name}}) at the start of s, returning its length.
func goHole(s string) (int, hole, bool) {
	j := strings.Index(s[2:], "}}")
	if j < 0 {
		return 0, hole{}, false
	}
	inner := s[2 : 2+j]
	if inner != "" && (inner[0] == '@' || inner[0] == '$') {
		inner = inner[1:]
	}
	if !strings.HasPrefix(inner, ".") {
		return 0, hole{}, false
	}
	h, ok := parseHole(inner[1:])
	return 2 + j + 2, h, ok
}

// hole is a parsed {Name,width:format}.
type hole struct {
	name   string
	width  int
	format string
}

// parseHole parses the text between the braces of a hole.
func parseHole(s string) (hole, bool) {
	var h hole
	if s != "" && (s[0] == '@' || s[0] == '$') {
		s = s[1:]
	}
	name := s
	if k := strings.IndexAny(s, ",:"); k >= 0 {
		name = s[:k]
		rest := s[k:]
		if rest[0] == ',' {
			rest = rest[1:]
			w := rest
			if c := strings.IndexByte(rest, ':'); c >= 0 {
				w, rest = rest[:c], rest[c:]
			} else {
				rest = ""
			}
			n, err := strconv.Atoi(strings.TrimSpace(w))
			if err != nil {
				return h, false
			}
			h.width = n
		}
		if rest != "" { // rest[0] == ':'
			h.format = rest[1:]
		}
	}
	h.name = strings.TrimSpace(name)
	return h, validName(h.name)
}

// validName reports whether s is a property name a hole may use.
func validName(s string) bool {
	if s == "" {
		return false
	}
	digits := true
	for _, r := range s {
		if r < '0' || r > '9' {
			digits = false
			break
		}
	}
	if digits {
		return true
	}
	for i, r := range s {
		switch {
		case unicode.IsLetter(r) || r == '_':
		case i > 0 && (unicode.IsDigit(r) || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return true
}

// render formats v and aligns it to the hole's width.
func (h hole) render(v any) string {
	s := formatValue(v, h.format)
	if h.width == 0 {
		return s
	}
	w := h.width
	left := w < 0
	if left {
		w = -w
	}
	n := utf8.RuneCountInString(s)
	if n >= w {
		return s
	}
	pad := strings.Repeat(" ", w-n)
	if left {
		return s + pad
	}
	return pad + s
}

// formatValue renders one property value with an optional format.
func formatValue(v any, format string) string {
	if format == "j" {
		return string(appendValue(nil, v, false))
	}
	switch x := v.(type) {
	case nil:
		return "nil"
	case string:
		if format == "q" {
			return strconv.Quote(x)
		}
		return x
	case bool:
		return strconv.FormatBool(x)
	case int64:
		if s, ok := formatInt(x, format); ok {
			return s
		}
		return strconv.FormatInt(x, 10)
	case uint64:
		if s, ok := formatUint(x, format); ok {
			return s
		}
		return strconv.FormatUint(x, 10)
	case float64:
		if s, ok := formatFloat(x, format); ok {
			return s
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case complex128:
		return strconv.FormatComplex(x, 'g', -1, 128)
	case []byte:
		if len(x) > 0 && utf8.Valid(x) && printable(x) {
			return string(x)
		}
		return fmt.Sprintf("%v", x)
	case time.Time:
		if format != "" {
			return formatTime(x, format)
		}
		return x.Format(time.RFC3339)
	case time.Duration:
		return x.String()
	case json.RawMessage:
		return string(appendRaw(nil, x))
	case *event.ErrorValue:
		if x == nil {
			return "nil"
		}
		return x.Message
	case event.Unsupported:
		return x.String()
	case map[string]any, []any:
		return string(appendValue(nil, x, false))
	case error:
		return errorText(x)
	}
	n := event.Normalize(v)
	if isNormalized(n, 1) {
		return formatValue(n, format)
	}
	return fmt.Sprintf("%v", v)
}

// printable reports whether b has no control characters other than
// newline, carriage return and tab.
func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	return true
}

// formatInt applies an integer format: "000…" pads with zeros to the
// format's length, "Dn"/"dn" to n digits, "x"/"X" is hexadecimal; the float
// formats apply to the value as a float.
func formatInt(v int64, format string) (string, bool) {
	if format == "" {
		return "", false
	}
	neg := v < 0
	u := uint64(v)
	if neg {
		u = -u
	}
	s, ok := formatMagnitude(u, format)
	if !ok {
		return formatFloat(float64(v), format)
	}
	if neg {
		return "-" + s, true
	}
	return s, true
}

// formatUint is formatInt for unsigned values.
func formatUint(v uint64, format string) (string, bool) {
	if format == "" {
		return "", false
	}
	if s, ok := formatMagnitude(v, format); ok {
		return s, true
	}
	return formatFloat(float64(v), format)
}

// formatMagnitude applies the integer-only formats to a magnitude.
func formatMagnitude(u uint64, format string) (string, bool) {
	switch {
	case format == "x":
		return strconv.FormatUint(u, 16), true
	case format == "X":
		return strings.ToUpper(strconv.FormatUint(u, 16)), true
	case strings.Trim(format, "0") == "":
		return zeroPad(strconv.FormatUint(u, 10), len(format)), true
	case format[0] == 'D' || format[0] == 'd':
		width := 0
		if len(format) > 1 {
			n, err := strconv.Atoi(format[1:])
			if err != nil || n < 0 || n > 64 {
				return "", false
			}
			width = n
		}
		return zeroPad(strconv.FormatUint(u, 10), width), true
	}
	return "", false
}

// zeroPad left-pads s with zeros to width.
func zeroPad(s string, width int) string {
	if len(s) >= width {
		return s
	}
	return strings.Repeat("0", width-len(s)) + s
}

// formatFloat applies a float format: "Fn", "En", "Gn", "Pn" (percent, two
// decimals by default), or a "0.00" pattern.
func formatFloat(v float64, format string) (string, bool) {
	if format == "" {
		return "", false
	}
	if intPart, frac, found := strings.Cut(format, "."); strings.Trim(intPart, "0") == "" && strings.Trim(frac, "0") == "" && (found || intPart != "") {
		s := strconv.FormatFloat(v, 'f', len(frac), 64)
		neg := strings.HasPrefix(s, "-")
		s = strings.TrimPrefix(s, "-")
		whole, rest, _ := strings.Cut(s, ".")
		whole = zeroPad(whole, len(intPart))
		if rest != "" {
			whole += "." + rest
		}
		if neg {
			whole = "-" + whole
		}
		return whole, true
	}
	prec := -1
	if len(format) > 1 {
		n, err := strconv.Atoi(format[1:])
		if err != nil || n < 0 || n > 64 {
			return "", false
		}
		prec = n
	}
	switch format[0] {
	case 'F', 'f', 'N', 'n':
		return strconv.FormatFloat(v, 'f', prec, 64), true
	case 'E', 'e':
		return strconv.FormatFloat(v, format[0], prec, 64), true
	case 'G', 'g':
		return strconv.FormatFloat(v, 'g', prec, 64), true
	case 'P', 'p':
		if prec < 0 {
			prec = 2
		}
		return strconv.FormatFloat(v*100, 'f', prec, 64) + "%", true
	}
	return "", false
}

// formatTime formats t with a Go layout (a format containing a digit) or a
// .NET-style custom format: yyyy, yy, MMMM, MMM, MM, M, dddd, ddd, dd, d,
// HH, H, hh, h, mm, m, ss, s, f… and F… (fractions, up to 9), tt, zzz, zz,
// z, K; text in single or double quotes and characters after a backslash
// are literal, as is anything else.
func formatTime(t time.Time, format string) string {
	if strings.ContainsAny(format, "0123456789") {
		return t.Format(format)
	}
	var sb strings.Builder
	for i := 0; i < len(format); {
		c := format[i]
		if c == '\'' || c == '"' {
			j := strings.IndexByte(format[i+1:], c)
			if j < 0 {
				sb.WriteString(format[i+1:])
				break
			}
			sb.WriteString(format[i+1 : i+1+j])
			i += j + 2
			continue
		}
		if c == '\\' && i+1 < len(format) {
			sb.WriteByte(format[i+1])
			i += 2
			continue
		}
		n := 1
		for i+n < len(format) && format[i+n] == c {
			n++
		}
		if piece, ok := timePiece(t, c, n); ok {
			sb.WriteString(piece)
		} else {
			sb.WriteString(format[i : i+n])
		}
		i += n
	}
	return sb.String()
}

// timePiece renders a run of n letters c of a .NET-style time format.
func timePiece(t time.Time, c byte, n int) (string, bool) {
	two := func(v int) string { return zeroPad(strconv.Itoa(v), 2) }
	switch c {
	case 'y':
		if n <= 2 {
			return two(t.Year() % 100), true
		}
		return zeroPad(strconv.Itoa(t.Year()), n), true
	case 'M':
		switch n {
		case 1:
			return strconv.Itoa(int(t.Month())), true
		case 2:
			return two(int(t.Month())), true
		case 3:
			return t.Month().String()[:3], true
		}
		return t.Month().String(), true
	case 'd':
		switch n {
		case 1:
			return strconv.Itoa(t.Day()), true
		case 2:
			return two(t.Day()), true
		case 3:
			return t.Weekday().String()[:3], true
		}
		return t.Weekday().String(), true
	case 'H':
		if n == 1 {
			return strconv.Itoa(t.Hour()), true
		}
		return two(t.Hour()), true
	case 'h':
		h := t.Hour() % 12
		if h == 0 {
			h = 12
		}
		if n == 1 {
			return strconv.Itoa(h), true
		}
		return two(h), true
	case 'm':
		if n == 1 {
			return strconv.Itoa(t.Minute()), true
		}
		return two(t.Minute()), true
	case 's':
		if n == 1 {
			return strconv.Itoa(t.Second()), true
		}
		return two(t.Second()), true
	case 'f', 'F':
		if n > 9 {
			return "", false
		}
		frac := zeroPad(strconv.Itoa(t.Nanosecond()), 9)[:n]
		if c == 'F' {
			frac = strings.TrimRight(frac, "0")
		}
		return frac, true
	case 't':
		ampm := "AM"
		if t.Hour() >= 12 {
			ampm = "PM"
		}
		return ampm[:min(n, 2)], true
	case 'z':
		_, off := t.Zone()
		sign := "+"
		if off < 0 {
			sign, off = "-", -off
		}
		switch n {
		case 1:
			return sign + strconv.Itoa(off/3600), true
		case 2:
			return sign + two(off/3600), true
		}
		return sign + two(off/3600) + ":" + two(off%3600/60), true
	case 'K':
		return t.Format("Z07:00"), true
	}
	return "", false
}
