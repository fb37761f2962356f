package protect

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/willibrandon/mtlog-audit/event"
)

// CardPolicy says what replaces each card number (PAN) the Cards stage
// finds. Exactly one form is chosen, so that the log never holds two forms
// of one number that could be correlated (PCI DSS 3.5.1): either a keyed
// token (KeyID and Key set) or a truncation (Truncate set).
type CardPolicy struct {
	// KeyID names Key in every token, so that a reader knows which key
	// made it after a rotation: 1 to 64 letters, digits, '.', '_' or '-'.
	KeyID string
	// Key is the HMAC-SHA256 key of tokens: at least 32 bytes, random, and
	// kept out of the log (whoever holds it can test a guessed number
	// against a token). The stage keeps a copy.
	Key []byte
	// Truncate replaces each number by its first six and last four digits
	// (fewer first digits for numbers under 16 digits, so that at least
	// six digits are always hidden), such as "411111******1111", instead
	// of a token. KeyID and Key must then be empty.
	Truncate bool
}

// Token formats. A token is TokenPrefix, the key ID, a colon and the first
// 16 bytes of HMAC-SHA256(Key, digits) in unpadded base64url (22
// characters), where digits are the number's ASCII digits without
// separators: "pan:tok:k2026:3q2-7wAAAAAAAAAAAAAAAA". The same number under
// the same key always gives the same token, so events still correlate.
const TokenPrefix = "pan:tok:"

// TrackDataRemoved replaces magnetic-stripe track data found in text
// (the PAN with what follows it in track 1, "%B…^NAME^…?", or track 2,
// ";…=…?").
const TrackDataRemoved = "[track data removed]"

// ErrCardPolicy is matched (errors.Is) by the error of NewCards for a
// policy it refuses; the error says what to pass.
var ErrCardPolicy = errors.New("protect: invalid card policy")

// minKey is the shortest HMAC key accepted: the output size of SHA-256.
const minKey = 32

// Cards is the stage that finds card numbers in every string of an event
// and replaces each with a token or a truncation (see CardPolicy). It
// reads the message template, the rendered message, the exception's text,
// every property name and map key, and every property value at any depth,
// in the form the value reaches disk (see docs/protection.md, "Card
// data"):
//
//   - strings, []byte values (as text), json.RawMessage (a number in
//     JSON becomes a JSON string), error texts, the type and reason of
//     event.Unsupported placeholders, and whatever structs, pointers,
//     fmt.Stringer and other values normalize to;
//   - integers of 13 to 19 digits, and floats holding such an integer
//     exactly: a number that passes the Luhn check becomes a string token.
//
// A number is a run of 13 to 19 digits, possibly in groups separated by
// up to three spaces or dashes, that passes the Luhn check and touches no
// other digit. Track data around a number ("%B4111…^NAME^2512…?",
// ";4111…=2512…?") is replaced whole by TrackDataRemoved, and the name of
// the property that held it is added to RemovedProperty.
//
// A Cards is safe for concurrent use.
type Cards struct {
	keyID string
	key   []byte
	trunc bool
}

// NewCards returns the stage for p, or an error matching ErrCardPolicy.
func NewCards(p CardPolicy) (*Cards, error) {
	if p.Truncate {
		if p.KeyID != "" || len(p.Key) > 0 {
			return nil, fmt.Errorf("%w: Truncate with a key: choose tokens (KeyID and Key) or truncation, never both forms of one number", ErrCardPolicy)
		}
		return &Cards{trunc: true}, nil
	}
	if err := checkKeyID(p.KeyID); err != nil {
		return nil, err
	}
	if len(p.Key) < minKey {
		return nil, fmt.Errorf("%w: the token key is %d bytes; use at least %d random bytes (crypto/rand), kept out of the log", ErrCardPolicy, len(p.Key), minKey)
	}
	return &Cards{keyID: p.KeyID, key: slices.Clone(p.Key)}, nil
}

// checkKeyID refuses a key ID that is empty, long, or holds a character
// that could be confused with the token's structure.
func checkKeyID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("%w: key ID %q: use 1 to 64 letters, digits, '.', '_' or '-', such as \"pan-2026\"", ErrCardPolicy, id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: key ID %q holds %q: use only letters, digits, '.', '_' or '-'", ErrCardPolicy, id, c)
		}
	}
	return nil
}

// Protect implements Stage.
func (c *Cards) Protect(_ context.Context, ev *event.Event) (*event.Event, error) {
	v := cardVisitors.Get().(*cardVisitor)
	*v = cardVisitor{c: c, removed: v.removed[:0]}
	defer cardVisitors.Put(v)
	var out *event.Event
	change := func() *event.Event {
		if out == nil {
			cp := *ev
			out = &cp
		}
		return out
	}
	v.field = "MessageTemplate"
	if s, ok := v.text(ev.MessageTemplate); ok {
		change().MessageTemplate = s
	}
	v.field = "Message"
	if s, ok := v.text(ev.Message); ok {
		change().Message = s
	}
	if ev.Exception != nil {
		v.field = "Exception"
		if x, ok := v.leaf(event.Normalize(ev.Exception)); ok {
			change().Exception = exception(x)
		}
	}
	props, changed, err := walkProps(ev.Properties, v)
	if err != nil {
		return nil, err
	}
	if changed {
		change().Properties = props
	}
	if len(v.removed) > 0 {
		e := change()
		if !changed {
			e.Properties = cloneProps(e.Properties)
		}
		addRemoved(e.Properties, v.removed)
	}
	if out == nil {
		return ev, nil
	}
	return out, nil
}

// exception turns the rewritten text of an exception (an *ErrorValue, or
// the Unsupported placeholder of an error whose Error panicked) back into
// an error.
func exception(x any) error {
	switch e := x.(type) {
	case *event.ErrorValue:
		return e
	case event.Unsupported:
		return &event.ErrorValue{Message: e.String()}
	}
	return &event.ErrorValue{Message: fmt.Sprint(x)}
}

// cardVisitors recycles the state of Protect calls, so that an event
// without card numbers costs no allocation.
var cardVisitors = sync.Pool{New: func() any { return new(cardVisitor) }}

// cardVisitor is the state of one Protect call.
type cardVisitor struct {
	c        *Cards
	field    string // the event field or property being read ("" while its name is)
	inKey    bool   // track data was found in the name of the current property
	last     pan    // the last number replaced, and its replacement
	lastRepl string
	removed  []string // fields that held track data
}

func (v *cardVisitor) entry(k string, _ any, depth int) (string, entryOp, any) {
	if depth == 0 {
		// The property's name is known once rewritten: track data in the
		// name itself is noted under the rewritten name.
		v.field, v.inKey = "", false
	}
	key, _ := v.text(k)
	if depth == 0 {
		v.field = key
		if v.inKey {
			v.note()
		}
	}
	return key, opKeep, nil
}

// note records that track data was removed from the current field.
func (v *cardVisitor) note() {
	switch {
	case v.field == "":
		v.inKey = true
	case !slices.Contains(v.removed, v.field):
		v.removed = append(v.removed, v.field)
	}
}

func (v *cardVisitor) leaf(x any) (any, bool) {
	switch y := x.(type) {
	case string:
		if s, ok := v.text(y); ok {
			return s, true
		}
	case []byte:
		if _, ok := findPAN(y, 0); !ok {
			return x, false
		}
		s, _ := v.text(string(y))
		return []byte(s), true
	case json.RawMessage:
		return v.json(y)
	case *event.ErrorValue:
		if y == nil {
			return x, false
		}
		if s, ok := v.text(y.Message); ok {
			return &event.ErrorValue{Message: s}, true
		}
	case event.Unsupported:
		t, ok1 := v.text(y.Type)
		r, ok2 := v.text(y.Reason)
		if ok1 || ok2 {
			return event.Unsupported{Type: t, Reason: r}, true
		}
	case *event.Unsupported:
		if y != nil {
			return v.leaf(*y)
		}
	case int:
		return v.integer(x, uint64(abs(int64(y))))
	case int64:
		return v.integer(x, uint64(abs(y)))
	case uint:
		return v.integer(x, uint64(y))
	case uint64:
		return v.integer(x, y)
	case uintptr:
		return v.integer(x, uint64(y))
	case float64:
		// Integers up to 2^53 are exact in a float64; 13 digits and more
		// start at 10^12.
		if y == y && y >= -(1<<53) && y <= 1<<53 && y == float64(int64(y)) {
			return v.integer(x, uint64(abs(int64(y))))
		}
	}
	return x, false
}

func abs(i int64) int64 {
	if i < 0 {
		return -i // math.MinInt64 stays negative: 19 digits, and no PAN
	}
	return i
}

// integer checks an integer property of absolute value u.
func (v *cardVisitor) integer(x any, u uint64) (any, bool) {
	if u < 1e12 {
		return x, false
	}
	var b [20]byte
	d := strconv.AppendUint(b[:0], u, 10)
	if len(d) > maxPAN || !luhn(d) {
		return x, false
	}
	var p pan
	p.n = copy(p.digits[:], d)
	return v.replacement(&p), true
}

// json rewrites the card numbers in raw JSON, keeping it valid JSON: the
// value is decoded, walked, and encoded again. Invalid JSON (which the
// encoder stores as a placeholder without its text) is rewritten as text.
func (v *cardVisitor) json(raw json.RawMessage) (any, bool) {
	if _, ok := findPAN(raw, 0); !ok {
		return raw, false
	}
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.UseNumber()
	var x any
	if err := d.Decode(&x); err == nil {
		w := walker{vis: v}
		if y, changed := w.top(x, 1); changed && !w.overflow {
			if out, err := json.Marshal(y); err == nil {
				return json.RawMessage(out), true
			}
		}
	}
	s, _ := v.text(string(raw))
	return json.RawMessage(s), true
}

// text returns s with each card number replaced, and whether it changed.
// It does not allocate when s holds no card number.
func (v *cardVisitor) text(s string) (string, bool) {
	first, ok := findPAN(s, 0)
	if !ok {
		return s, false
	}
	return v.replaceAll(s, first), true
}

// replaceAll returns s with the card numbers from first on replaced.
func (v *cardVisitor) replaceAll(s string, first pan) string {
	p, ok := first, true
	var b strings.Builder
	last := 0
	for ok {
		start, end := p.start, p.end
		repl := ""
		if ts, te, isTrack := trackSpan(s, &p); isTrack {
			start, end, repl = ts, te, TrackDataRemoved
			v.note()
		} else {
			repl = v.replacement(&p)
		}
		b.WriteString(s[last:start])
		b.WriteString(repl)
		last = end
		p, ok = findPAN(s, end)
	}
	b.WriteString(s[last:])
	return b.String()
}

// replacement is the token or truncation of the number p. The last one is
// kept: a number often appears in the message and in a property.
func (v *cardVisitor) replacement(p *pan) string {
	if p.n == v.last.n && p.digits == v.last.digits {
		return v.lastRepl
	}
	v.last, v.lastRepl = *p, v.c.replacement(p)
	return v.lastRepl
}

// replacement is the token or truncation of the number p.
func (c *Cards) replacement(p *pan) string {
	d := p.digits[:p.n]
	if c.trunc {
		first := min(6, p.n-10) // at least six digits hidden
		return string(d[:first]) + strings.Repeat("*", p.n-first-4) + string(d[p.n-4:])
	}
	m := hmac.New(sha256.New, c.key)
	m.Write(d)
	sum := m.Sum(nil)
	return TokenPrefix + c.keyID + ":" + base64.RawURLEncoding.EncodeToString(sum[:16])
}

// Track-data lengths (ISO/IEC 7813): the name field of track 1 and the
// whole of tracks 1 and 2.
const (
	maxTrackName = 26
	maxTrack1    = 79
	maxTrack2    = 40
)

// trackSpan reports whether the number p in s is the start of track data,
// and the span to remove: track 1 is [%]B PAN ^ NAME ^ YYMM service
// discretionary [?], track 2 is [;] PAN = YYMM service discretionary [?].
func trackSpan(s string, p *pan) (start, end int, ok bool) {
	start, end = p.start, p.end
	if end >= len(s) {
		return 0, 0, false
	}
	switch s[end] {
	case '^': // track 1
		if start > 0 && s[start-1] == 'B' {
			start--
		}
		if start > 0 && s[start-1] == '%' {
			start--
		}
		limit := min(len(s), p.start+maxTrack1)
		end++
		if i := strings.IndexByte(s[end:min(len(s), end+maxTrackName+1)], '^'); i >= 0 {
			end += i + 1
		}
		for end < limit && s[end] != '?' && s[end] != ' ' && s[end] != '\n' {
			end++
		}
	case '=': // track 2
		if end+1 >= len(s) || !isDigit(s[end+1]) {
			return 0, 0, false
		}
		if start > 0 && s[start-1] == ';' {
			start--
		}
		limit := min(len(s), p.start+maxTrack2)
		end++
		for end < limit && (isDigit(s[end]) || s[end] == '=') {
			end++
		}
	default:
		return 0, 0, false
	}
	if end < len(s) && s[end] == '?' {
		end++
	}
	return start, end, true
}
