package protect

import (
	"fmt"
	"strings"
)

// rerender renders the message template tmpl with each hole's property
// taken from props and shown by show, when a hole names a property that
// changed reports true; otherwise it returns "", false and the message is
// kept. Holes are {Name}, {@Name}, {$Name}, with an optional ,alignment and
// :format (ignored); {{ and }} are literal braces; a hole naming no
// property is kept as written.
func rerender(tmpl string, props map[string]any, changed func(string) bool, show func(string, any) string) (string, bool) {
	hit := false
	forHoles(tmpl, func(name string) {
		if changed(name) {
			hit = true
		}
	}, nil)
	if !hit {
		return "", false
	}
	var b strings.Builder
	forHoles(tmpl, func(name string) {}, func(lit, hole, name string) {
		b.WriteString(lit)
		if hole == "" {
			return
		}
		if v, ok := props[name]; ok {
			b.WriteString(show(name, v))
		} else {
			b.WriteString(hole)
		}
	})
	return b.String(), true
}

// forHoles calls name for each hole's property name and, when emit is not
// nil, emit for each literal run followed by the hole ("" at the end).
func forHoles(tmpl string, name func(string), emit func(lit, hole, name string)) {
	var lit strings.Builder
	for i := 0; i < len(tmpl); {
		c := tmpl[i]
		switch {
		case (c == '{' || c == '}') && i+1 < len(tmpl) && tmpl[i+1] == c:
			lit.WriteByte(c)
			i += 2
			continue
		case c == '{':
			end := strings.IndexByte(tmpl[i:], '}')
			if end < 0 {
				break
			}
			hole := tmpl[i : i+end+1]
			n := strings.TrimLeft(hole[1:len(hole)-1], "@$")
			if j := strings.IndexAny(n, ",:"); j >= 0 {
				n = n[:j]
			}
			name(n)
			if emit != nil {
				emit(lit.String(), hole, n)
				lit.Reset()
			}
			i += end + 1
			continue
		}
		lit.WriteByte(c)
		i++
	}
	if emit != nil {
		emit(lit.String(), "", "")
	}
}

// showPlain shows a value in a message as mtlog would for simple values:
// a string as it is, anything else with fmt's %v.
func showPlain(_ string, v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}
