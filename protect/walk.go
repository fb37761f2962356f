package protect

import (
	"encoding/json"
	"errors"
	"maps"
	"strconv"
	"time"

	"github.com/willibrandon/mtlog-audit/event"
)

// This file is the shared walker of property values: it visits every map
// entry and every leaf value of an event's properties, at any depth, in
// the form they reach disk, and rebuilds only what a visitor changes (copy
// on write: a walk that changes nothing allocates nothing for the
// containers it passes through).
//
// What reaches disk is what the event encoder makes of a value
// (docs/event-encoding.md). map[string]any and []any are walked as they
// are; the leaf kinds the encoder stores as themselves go to the visitor
// as they are; any other value (structs, pointers, typed maps and slices,
// errors, fmt.Stringer, encoding.TextMarshaler, json.Marshaler values) is
// first normalized with event.Normalize, which gives exactly the tree the
// encoder writes, and that tree is walked. When the visitor changes
// nothing in it, the original value is kept.
//
// A walk deeper than walkMaxDepth, or longer than walkBudget values (a
// cycle of maps, or a map shared many times over), stops and starts over
// on the normalized value of that property, which is finite: the encoder
// cuts cycles and depth beyond its own limit into event.Unsupported
// placeholders, so what the walk does not reach is not written either.

// walkMaxDepth is deeper than the encoder's depth limit (64), below which
// every value it writes lies.
const walkMaxDepth = 100

// Budgets of values visited in one property: a walk of the value as given
// that meets more falls back to the normalized form, which holds at most
// the 1<<18 values the encoder writes of one event, so the second budget
// is never reached.
const (
	walkBudget       = 1 << 16
	normalizedBudget = 1 << 19
)

// entryOp is what a visitor does with one map entry.
type entryOp int

const (
	opKeep    entryOp = iota // keep the entry and walk its value
	opReplace                // replace the value with another, not walked
	opDrop                   // remove the entry
)

// A visitor is told of everything a walk meets.
type visitor interface {
	// entry is called for each map entry k: v, before its value is walked
	// (at depth 0, k is a property name). It returns the key to store (k
	// when unchanged) and what to do with the value; repl is the new value
	// for opReplace.
	entry(k string, v any, depth int) (key string, op entryOp, repl any)
	// leaf rewrites a value that holds no other value (see isLeaf). It
	// returns v and false when it changes nothing.
	leaf(v any) (any, bool)
}

// errWalk is returned when even the normalized form of a property could
// not be walked; the event is then refused rather than written unchecked.
var errWalk = errors.New("protect: a property value is too deep or too large to check; the event is refused")

// walker holds the state of one walk.
type walker struct {
	vis      visitor
	visits   int // values visited in the current property
	budget   int // the limit of visits (0: walkBudget)
	overflow bool
}

// walkProps returns props with v applied to every entry and leaf at any
// depth; changed is false (and props returned as is) when nothing changed.
func walkProps(props map[string]any, v visitor) (out map[string]any, changed bool, err error) {
	w := walker{vis: v}
	out, changed = w.mapAny(props, 0)
	if w.overflow {
		return nil, false, errWalk
	}
	return out, changed, nil
}

// top walks the value of one property, falling back to its normalized form
// when the walk overflows.
func (w *walker) top(v any, depth int) (any, bool) {
	w.visits, w.budget = 0, walkBudget
	out, changed := w.value(v, depth)
	if !w.overflow {
		return out, changed
	}
	w.overflow, w.visits, w.budget = false, 0, normalizedBudget
	n := event.Normalize(v)
	if out, changed = w.value(n, depth); w.overflow || changed {
		return out, changed
	}
	return v, false
}

// value walks v, found at depth.
func (w *walker) value(v any, depth int) (any, bool) {
	if w.visits++; w.visits > max(w.budget, walkBudget) || depth > walkMaxDepth {
		w.overflow = true
		return v, false
	}
	switch x := v.(type) {
	case map[string]any:
		if x == nil {
			return v, false
		}
		if out, changed := w.mapAny(x, depth+1); changed {
			return out, true
		}
		return v, false
	case []any:
		if x == nil {
			return v, false
		}
		if out, changed := w.slice(x, depth+1); changed {
			return out, true // boxed only when changed
		}
		return v, false
	}
	if isLeaf(v) {
		return w.vis.leaf(v)
	}
	n := event.Normalize(v)
	if out, changed := w.value(n, depth); changed || w.overflow {
		return out, changed
	}
	return v, false
}

// isLeaf reports whether the encoder stores v as itself, holding no other
// value.
func isLeaf(v any) bool {
	switch v.(type) {
	case nil, string, []byte, bool,
		int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, uintptr,
		float32, float64, complex64, complex128,
		time.Time, *time.Time, time.Duration, *time.Duration,
		*event.ErrorValue, event.Unsupported, *event.Unsupported, json.RawMessage:
		return true
	}
	return false
}

// mapAny walks the entries of m (a map at depth; the properties at 0).
func (w *walker) mapAny(m map[string]any, depth int) (map[string]any, bool) {
	var out map[string]any // a copy of m, made at the first change
	var moved map[string]any
	for k, v := range m {
		key, op, repl := w.vis.entry(k, v, depth)
		nv, changed := v, false
		switch op {
		case opKeep:
			if depth == 0 {
				nv, changed = w.top(v, depth)
			} else {
				nv, changed = w.value(v, depth)
			}
			if w.overflow {
				return m, false
			}
		case opReplace:
			nv, changed = repl, true
		case opDrop:
		}
		if !changed && key == k && op != opDrop {
			continue
		}
		if out == nil {
			out = maps.Clone(m)
		}
		if key != k || op == opDrop {
			delete(out, k)
		}
		if op == opDrop {
			continue
		}
		if key != k {
			if moved == nil {
				moved = make(map[string]any)
			}
			moved[key] = nv
			continue
		}
		out[k] = nv
	}
	// Renamed keys are added last, so that a new name that collides with a
	// name kept as it was gets a suffix rather than replacing it.
	for k, v := range moved {
		name := k
		for i := 2; ; i++ {
			if _, taken := out[name]; !taken {
				break
			}
			name = k + "#" + strconv.Itoa(i)
		}
		out[name] = v
	}
	if out == nil {
		return m, false
	}
	return out, true
}

// slice walks the elements of s.
func (w *walker) slice(s []any, depth int) ([]any, bool) {
	var out []any
	for i, v := range s {
		nv, changed := w.value(v, depth)
		if w.overflow {
			return s, false
		}
		if !changed {
			continue
		}
		if out == nil {
			out = append([]any(nil), s...)
		}
		out[i] = nv
	}
	if out == nil {
		return s, false
	}
	return out, true
}
