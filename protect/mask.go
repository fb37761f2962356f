package protect

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/willibrandon/mtlog-audit/event"
)

// Masked is the value that replaces a masked property, and its text in the
// rendered message.
const Masked = "[masked]"

// Removed replaces, in the rendered message, the text of a value that was
// removed.
const Removed = "[removed]"

// RemovedProperty is the reserved property that lists, as a []any of
// strings in sorted order, the names of the properties a stage removed
// (sensitive authentication data, WithDropFields names) and of the fields
// where it removed track data. It records that a value was there, never
// the value. A caller's own value of it is kept, and the names are
// appended to it.
const RemovedProperty = "RemovedSensitiveData"

// ErrFieldName is matched (errors.Is) by the error of NewMask for an empty
// field name.
var ErrFieldName = errors.New("protect: empty field name")

// Mask is the stage that masks or removes properties by name, at any
// depth: a top-level property, or a key of a map inside one (structs
// count as maps of their fields, as the encoder stores them). Names match
// case-insensitively and ignoring '_', '-', '.' and spaces, so "card_cvv"
// matches "CardCVV". A masked value becomes Masked; a removed entry is
// deleted and its name listed in RemovedProperty. The text of each masked
// or removed value is also replaced in the rendered message, by Masked or
// Removed, wherever it stands as a whole word (not inside a longer run of
// letters or digits), since the message was rendered from it.
//
// A Mask is safe for concurrent use.
type Mask struct {
	mask, drop []string // names folded with fold
	sad        bool     // remove sensitive authentication data (isSAD)
}

// NewMask returns a stage masking the properties named in mask and
// removing those named in drop.
func NewMask(mask, drop []string) (*Mask, error) {
	m := &Mask{}
	for _, set := range []struct {
		names []string
		to    *[]string
	}{{mask, &m.mask}, {drop, &m.drop}} {
		for _, n := range set.names {
			f := fold(n)
			if f == "" {
				return nil, fmt.Errorf("%w: %q: name each property to mask or remove, such as \"password\"", ErrFieldName, n)
			}
			*set.to = append(*set.to, f)
		}
	}
	return m, nil
}

// NewSADFilter returns the stage that removes sensitive authentication data
// (PCI DSS 3.3.1), even encrypted: properties and map keys whose name has
// a word among CVV, CVV2, CVC, CVC2, CAV2, CID, CVN, CVN2, CVD, CSC and
// PIN, or that names a PIN block, track data (Track1, Track2, TrackData)
// or a security or verification code. Words are split at '_', '-', '.',
// spaces and case changes: "CardCVV", "card_cvc2", "PINBlock" and
// "track2" match; "Spinner" and "TrackingID" do not.
func NewSADFilter() *Mask { return &Mask{sad: true} }

// Protect implements Stage.
func (m *Mask) Protect(_ context.Context, ev *event.Event) (*event.Event, error) {
	if len(ev.Properties) == 0 {
		return ev, nil
	}
	v := maskVisitors.Get().(*maskVisitor)
	*v = maskVisitor{m: m, removed: v.removed[:0], texts: v.texts[:0], masked: v.masked[:0]}
	defer maskVisitors.Put(v)
	props, changed, err := walkProps(ev.Properties, v)
	if err != nil {
		return nil, err
	}
	if !changed {
		return ev, nil
	}
	out := *ev
	out.Properties = props // a copy: walkProps copies what it changes
	if len(v.removed) > 0 {
		addRemoved(props, v.removed)
	}
	out.Message = scrub(out.Message, v.masked, Masked)
	out.Message = scrub(out.Message, v.texts, Removed)
	return &out, nil
}

// maskVisitors recycles the state of Protect calls, so that an event
// that needs no change costs no allocation.
var maskVisitors = sync.Pool{New: func() any { return new(maskVisitor) }}

// maskVisitor is the state of one Mask.Protect call.
type maskVisitor struct {
	m       *Mask
	removed []string // names of removed entries
	texts   []string // texts of removed values
	masked  []string // texts of masked values
}

func (v *maskVisitor) entry(k string, x any, _ int) (string, entryOp, any) {
	op, texts := opKeep, &v.texts
	switch {
	case v.m.sad && isSAD(k), matchAny(v.m.drop, k):
		op = opDrop
		if !slices.Contains(v.removed, k) {
			v.removed = append(v.removed, k)
		}
	case matchAny(v.m.mask, k):
		op, texts = opReplace, &v.masked
	default:
		return k, opKeep, nil
	}
	w := walker{vis: textCollector{texts}}
	w.top(x, 1)
	return k, op, Masked
}

func (v *maskVisitor) leaf(x any) (any, bool) { return x, false }

// textCollector gathers the text of every leaf of a value.
type textCollector struct{ texts *[]string }

func (textCollector) entry(k string, _ any, _ int) (string, entryOp, any) { return k, opKeep, nil }

func (c textCollector) leaf(x any) (any, bool) {
	s := ""
	switch y := x.(type) {
	case string:
		s = y
	case []byte:
		s = string(y)
	case *event.ErrorValue:
		if y != nil {
			s = y.Message
		}
	case int:
		s = strconv.Itoa(y)
	case int64:
		s = strconv.FormatInt(y, 10)
	case int32:
		s = strconv.FormatInt(int64(y), 10)
	case uint64:
		s = strconv.FormatUint(y, 10)
	case uint:
		s = strconv.FormatUint(uint64(y), 10)
	case uint32:
		s = strconv.FormatUint(uint64(y), 10)
	case float64:
		s = strconv.FormatFloat(y, 'f', -1, 64)
	}
	if s != "" {
		*c.texts = append(*c.texts, s)
	}
	return x, false
}

// scrub replaces in msg each whole-word occurrence of each text with
// repl, longest text first.
func scrub(msg string, texts []string, repl string) string {
	slices.SortFunc(texts, func(a, b string) int { return len(b) - len(a) })
	for _, t := range texts {
		if !strings.Contains(msg, t) {
			continue
		}
		var b strings.Builder
		rest := msg
		for {
			i := strings.Index(rest, t)
			if i < 0 {
				break
			}
			j := i + len(t)
			if (i > 0 && isWord(rest[i-1]) && isWord(t[0])) || (j < len(rest) && isWord(rest[j]) && isWord(t[len(t)-1])) {
				b.WriteString(rest[:i+1])
				rest = rest[i+1:]
				continue
			}
			b.WriteString(rest[:i])
			b.WriteString(repl)
			rest = rest[j:]
		}
		b.WriteString(rest)
		msg = b.String()
	}
	return msg
}

func isWord(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c >= 0x80
}

// fold is name lower-cased without '_', '-', '.' and spaces.
func fold(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isNameSep(c) {
			b.WriteByte(lower(c))
		}
	}
	return b.String()
}

func isNameSep(c byte) bool { return c == '_' || c == '-' || c == '.' || c == ' ' }

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// matchAny reports whether name folds to one of the folded names, without
// allocating.
func matchAny(folded []string, name string) bool {
	for _, f := range folded {
		i := 0
		for j := 0; j < len(name); j++ {
			c := name[j]
			if isNameSep(c) {
				continue
			}
			if i >= len(f) || f[i] != lower(c) {
				i = -1
				break
			}
			i++
		}
		if i == len(f) {
			return true
		}
	}
	return false
}

// sadWords are the words of a property name that mark sensitive
// authentication data; sadPhrases are runs of words that do.
var (
	sadWords   = []string{"cvv", "cvv2", "cvc", "cvc2", "cav2", "cid", "cvn", "cvn2", "cvd", "csc", "pin", "pinblock", "track1", "track2", "trackdata"}
	sadPhrases = []string{"pinblock", "track1", "track2", "trackdata", "securitycode", "verificationcode", "verificationvalue"}
)

// isSAD reports whether name names sensitive authentication data (see
// NewSADFilter), without allocating for names up to 64 bytes.
func isSAD(name string) bool {
	var buf [64]byte
	joined := buf[:0] // name lower-cased, without separators
	start := -1       // start of the current word in joined
	var prev byte
	for i := 0; i < len(name); i++ {
		c := name[i]
		if isNameSep(c) {
			if isSADWord(joined, start) {
				return true
			}
			start, prev = -1, c
			continue
		}
		// A word starts after a separator, at a lower-to-upper change, and
		// at the last upper of a run followed by a lower ("PINBlock": PIN,
		// Block).
		isUp := 'A' <= c && c <= 'Z'
		boundary := start < 0 ||
			isUp && 'a' <= prev && prev <= 'z' ||
			isUp && 'A' <= prev && prev <= 'Z' && i+1 < len(name) && 'a' <= name[i+1] && name[i+1] <= 'z'
		if boundary {
			if isSADWord(joined, start) {
				return true
			}
			start = len(joined)
		}
		joined = append(joined, lower(c))
		prev = c
	}
	if isSADWord(joined, start) {
		return true
	}
	for _, p := range sadPhrases {
		if strings.Contains(string(joined), p) {
			return true
		}
	}
	return false
}

// isSADWord reports whether the word joined[start:] is one of sadWords
// (false if start < 0: no word).
func isSADWord(joined []byte, start int) bool {
	if start < 0 {
		return false
	}
	for _, w := range sadWords {
		if string(joined[start:]) == w {
			return true
		}
	}
	return false
}

// cloneProps returns a copy of props (an empty map for nil, since the
// caller adds to it).
func cloneProps(props map[string]any) map[string]any {
	if props == nil {
		return make(map[string]any, 1)
	}
	return maps.Clone(props)
}

// addRemoved adds names to RemovedProperty in props, which the stage owns.
func addRemoved(props map[string]any, names []string) {
	slices.Sort(names)
	var list []any
	switch old := props[RemovedProperty].(type) {
	case nil:
	case []any:
		list = append(list, old...)
	default:
		list = append(list, old)
	}
	for _, n := range names {
		list = append(list, n)
	}
	props[RemovedProperty] = list
}
