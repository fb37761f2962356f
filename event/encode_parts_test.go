package event

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// partsOf encodes e with a PartEncoder, its message replaced by msg, each
// []byte property through BytesProperty.
func partsOf(t *testing.T, p *PartEncoder, dst []byte, e *Event, msg string) []byte {
	t.Helper()
	names := make([]string, 0, len(e.Properties))
	for k := range e.Properties {
		names = append(names, k)
	}
	slices.Sort(names)
	p.Begin(dst, e, msg, len(names))
	for _, k := range names {
		if b, ok := e.Properties[k].([]byte); ok && b != nil {
			p.BytesProperty(k, len(b), func(dst []byte) []byte { return append(dst, b...) })
		} else {
			p.Property(k, e.Properties[k])
		}
	}
	out, err := p.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A PartEncoder writes what AppendEncode writes, after what dst holds,
// also when it is reused from event to event.
func TestPartEncoderMatchesAppendEncode(t *testing.T) {
	var p PartEncoder
	shared := map[string]any{"x": 1}
	withErr := mapHeavyEvent()
	withErr.Exception = errors.New("boom")
	withErr.Timestamp = time.Date(2026, 12, 2, 20, 0, 0, 7, time.FixedZone("X", 3600))
	for name, e := range map[string]*Event{
		"map heavy":      mapHeavyEvent(),
		"exception":      withErr,
		"bytes and nils": {Message: "m", Properties: map[string]any{"b": []byte("sealed"), "nb": []byte(nil), "z": nil, "": "empty name"}},
		"no properties":  {Message: "m", Properties: map[string]any{}},
		"deep":           {Properties: map[string]any{"d": nestMaps(100)}},
		"shared":         {Properties: map[string]any{"a": shared, "b": []any{shared, map[string]any{"c": shared}}}},
	} {
		t.Run(name, func(t *testing.T) {
			for _, msg := range []string{e.Message, "another message"} {
				want := *e
				want.Message = msg
				w, err := AppendEncode([]byte("pre"), &want)
				if err != nil {
					t.Fatal(err)
				}
				if g := partsOf(t, &p, []byte("pre"), e, msg); !bytes.Equal(g, w) {
					t.Fatalf("PartEncoder wrote\n%x\nAppendEncode\n%x", g, w)
				}
			}
		})
	}
}

// Misuse is an error that says what was wrong, not a panic or a silently
// different encoding.
func TestPartEncoderMisuse(t *testing.T) {
	e := &Event{Message: "m"}
	fill := func(n int) func([]byte) []byte {
		return func(dst []byte) []byte { return append(dst, make([]byte, n)...) }
	}
	for _, c := range []struct {
		name  string
		count int
		use   func(p *PartEncoder)
		want  string
	}{
		{"out of order", 2, func(p *PartEncoder) { p.Property("b", 1); p.Property("a", 2) }, "ascending"},
		{"twice", 2, func(p *PartEncoder) { p.Property("a", 1); p.Property("a", 2) }, "ascending"},
		{"too many", 1, func(p *PartEncoder) { p.Property("a", 1); p.Property("b", 2) }, "more properties"},
		{"too few", 2, func(p *PartEncoder) { p.Property("a", 1) }, "fewer"},
		{"fill too short", 1, func(p *PartEncoder) { p.BytesProperty("a", 4, fill(3)) }, "appended 3"},
		{"fill too long", 1, func(p *PartEncoder) { p.BytesProperty("a", 4, fill(5)) }, "appended 5"},
		{"negative size", 1, func(p *PartEncoder) { p.BytesProperty("a", -1, fill(0)) }, "-1 bytes"},
		{"negative count", -1, func(p *PartEncoder) {}, "0 or more"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var p PartEncoder
			p.Begin(nil, e, e.Message, c.count)
			c.use(&p)
			if _, err := p.Bytes(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
		})
	}
	var p PartEncoder
	p.Begin([]byte("pre"), nil, "", 0)
	if b, err := p.Bytes(); !errors.Is(err, errNilEvent) || string(b) != "pre" {
		t.Fatalf("a nil event: %q, %v", b, err)
	}
}
