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
	var stack [512]byte
	b, hit := stack[:0], false
	forHoles(tmpl, func(lit, hole, name string) {
		if hole == "" {
			b = append(b, lit...)
		} else if v, ok := props[name]; ok {
			hit = hit || changed(name)
			b = append(b, show(name, v)...)
		} else {
			b = append(b, hole...)
		}
	})
	if !hit {
		return "", false
	}
	return string(b), true
}

// forHoles calls emit, in order, for each run of literal text (lit, with
// "{{" and "}}" read as one brace; hole and name "") and for each hole
// (hole as written, name its property's name; lit "").
func forHoles(tmpl string, emit func(lit, hole, name string)) {
	start := 0 // of the literal text not yet emitted
	for i := 0; i < len(tmpl); {
		c := tmpl[i]
		if c != '{' && c != '}' {
			i++
			continue
		}
		if i+1 < len(tmpl) && tmpl[i+1] == c { // {{ or }}
			emit(tmpl[start:i+1], "", "")
			i += 2
			start = i
			continue
		}
		end := strings.IndexByte(tmpl[i:], '}')
		if c == '}' || end < 0 { // a lone brace is literal
			i++
			continue
		}
		if start < i {
			emit(tmpl[start:i], "", "")
		}
		hole := tmpl[i : i+end+1]
		emit("", hole, holeName(hole))
		i += end + 1
		start = i
	}
	if start < len(tmpl) {
		emit(tmpl[start:], "", "")
	}
}

// holeName returns the property name of a hole "{...}": without its
// leading @ and $, its ,alignment and its :format.
func holeName(hole string) string {
	n := hole[1 : len(hole)-1]
	for len(n) > 0 && (n[0] == '@' || n[0] == '$') {
		n = n[1:]
	}
	for i := 0; i < len(n); i++ {
		if n[i] == ',' || n[i] == ':' {
			return n[:i]
		}
	}
	return n
}

// showPlain shows a value in a message as mtlog would for simple values:
// a string as it is, anything else with fmt's %v.
func showPlain(_ string, v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}
