package protect

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Bounds of an Encryptor's template cache (see templates): an application
// logs a fixed set of templates, and one that makes templates from data
// gets its messages rendered as if there were no cache once these are
// reached.
const (
	maxTemplates    = 1024
	maxTemplateSize = 4096 // bytes; a longer template is not kept
)

// templates caches, for each message template an Encryptor has seen, the
// property names of its holes and its last rendering with every hole
// encrypted: that rendering depends only on the template and the key ID
// (each hole shows "<encrypted key=ID>"), so the events of one subject
// under one template share it.
type templates struct {
	m sync.Map // template string → *template
	n atomic.Int64
}

// template is a cached template.
type template struct {
	holes []string                  // each hole's property name, in order
	last  atomic.Pointer[rendering] // the last rendering with every hole encrypted
}

// rendering is a message rendered with every hole encrypted under keyID.
type rendering struct{ keyID, msg string }

// get returns the cached template tmpl, parsing it on first use; nil when
// it is not kept (too long, or the cache is full).
func (c *templates) get(tmpl string) *template {
	if t, ok := c.m.Load(tmpl); ok {
		return t.(*template)
	}
	if len(tmpl) > maxTemplateSize || c.n.Load() >= maxTemplates {
		return nil
	}
	t := &template{}
	forHoles(tmpl, func(_, hole, name string) {
		if hole != "" {
			t.holes = append(t.holes, name)
		}
	})
	if v, loaded := c.m.LoadOrStore(tmpl, t); loaded {
		return v.(*template)
	}
	c.n.Add(1)
	return t
}

// message returns the message of an event whose template is tmpl, whose
// properties are props and whose properties names (sorted) are encrypted
// under keyID: rendered again with "<encrypted key=ID>" for each hole
// naming an encrypted property, and true; or "", false when no hole does
// (the message is kept). When every hole names an encrypted property, the
// rendering is the template's cached one for keyID.
func (c *templates) message(tmpl string, props map[string]any, names []string, keyID string) (string, bool) {
	isEnc := func(n string) bool { _, ok := slices.BinarySearch(names, n); return ok }
	placeholder := ""
	show := func(n string, v any) string {
		if !isEnc(n) {
			return showPlain(n, v)
		}
		if placeholder == "" {
			placeholder = Encrypted{KeyID: keyID}.String()
		}
		return placeholder
	}
	t := c.get(tmpl)
	if t == nil || slices.ContainsFunc(t.holes, func(n string) bool { return !isEnc(n) }) {
		return rerender(tmpl, props, isEnc, show)
	}
	if len(t.holes) == 0 {
		return "", false
	}
	if r := t.last.Load(); r != nil && r.keyID == keyID {
		return r.msg, true
	}
	msg, _ := rerender(tmpl, props, isEnc, show)
	t.last.Store(&rendering{keyID: keyID, msg: msg})
	return msg, true
}

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
