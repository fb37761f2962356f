package protect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/event"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func tokens(t testing.TB) *Cards {
	t.Helper()
	c, err := NewCards(CardPolicy{KeyID: "k1", Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func truncation(t testing.TB) *Cards {
	t.Helper()
	c, err := NewCards(CardPolicy{Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewCardsRefuses(t *testing.T) {
	for _, p := range []CardPolicy{
		{KeyID: "k1", Key: testKey[:31]},
		{KeyID: "", Key: testKey},
		{KeyID: "a:b", Key: testKey},
		{KeyID: strings.Repeat("k", 65), Key: testKey},
		{KeyID: "k1", Key: testKey, Truncate: true},
		{},
	} {
		if _, err := NewCards(p); !errors.Is(err, ErrCardPolicy) {
			t.Errorf("NewCards(%q, %d bytes, truncate %v) = %v, want ErrCardPolicy", p.KeyID, len(p.Key), p.Truncate, err)
		}
	}
}

type stringer struct{ s string }

func (s stringer) String() string { return s.s }

type payment struct {
	Card  string
	Inner map[string]int64
}

type jsonCard struct{}

func (jsonCard) MarshalJSON() ([]byte, error) {
	return []byte(`{"pan":4111111111111111,"s":"x 5500-0000-0000-0004 y"}`), nil
}

// TestCardsEveryField puts a card number in every kind of field and checks
// that none is left in the encoded event.
func TestCardsEveryField(t *testing.T) {
	const pan = "4111111111111111"
	ev := &event.Event{
		Timestamp:       time.Unix(1, 0),
		MessageTemplate: "paid with " + pan,
		Message:         "paid with 4111 1111 1111 1111",
		Exception:       errors.New("declined: 4111-1111-1111-1111"),
		Properties: map[string]any{
			"Card":    pan,
			"Int":     int64(4111111111111111),
			"Uint":    uint64(4111111111111111),
			"Float":   float64(4111111111111111),
			"Bytes":   []byte("b " + pan),
			"Err":     fmt.Errorf("wrapped %s", pan),
			"Str":     stringer{"s " + pan},
			"Struct":  payment{Card: pan, Inner: map[string]int64{pan: 4111111111111111}},
			"Ptr":     &payment{Card: pan},
			"JSON":    json.RawMessage(`{"n":4111111111111111}`),
			"Marshal": jsonCard{},
			"Unsup":   event.Unsupported{Type: "T", Reason: "panicked: " + pan},
			pan:       "key",
			"Nested":  map[string]any{"a": []any{map[string]any{"b": []any{"x " + pan + " y"}}}},
		},
	}
	orig := fmt.Sprint(ev.Properties)
	for name, c := range map[string]*Cards{"tokens": tokens(t), "truncation": truncation(t)} {
		t.Run(name, func(t *testing.T) {
			out, err := c.Protect(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			b, err := event.AppendEncode(nil, out)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{pan, "5500000000000004", "4111 1111", "4111-1111"} {
				if strings.Contains(string(b), s) {
					t.Errorf("%q left in the encoded event: %q", s, b)
				}
			}
			dec, err := event.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := json.Marshal(dec.Properties["JSON"]); err != nil {
				t.Errorf("JSON property no longer JSON: %v", err)
			}
			if name == "truncation" && !strings.Contains(dec.Message, "411111******1111") {
				t.Errorf("message %q, want the truncation", dec.Message)
			}
			if name == "tokens" && !strings.Contains(dec.Message, TokenPrefix+"k1:") {
				t.Errorf("message %q, want a token", dec.Message)
			}
		})
	}
	if fmt.Sprint(ev.Properties) != orig {
		t.Error("Protect modified the caller's event")
	}
}

func TestCardsTokenStable(t *testing.T) {
	c := tokens(t)
	v := cardVisitor{c: c}
	a, _ := v.text("4111111111111111")
	b, _ := v.text("4111 1111-1111 1111")
	if a != b || !strings.HasPrefix(a, "pan:tok:k1:") || len(a) != len("pan:tok:k1:")+22 {
		t.Errorf("tokens %q and %q: want one token of the same number", a, b)
	}
	other, _ := NewCards(CardPolicy{KeyID: "k1", Key: []byte(strings.Repeat("z", 32))})
	v2 := cardVisitor{c: other}
	if c2, _ := v2.text("4111111111111111"); c2 == a {
		t.Error("another key gave the same token")
	}
}

func TestCardsTruncation(t *testing.T) {
	v := cardVisitor{c: truncation(t)}
	for in, want := range map[string]string{
		"4111111111111111":    "411111******1111",
		"378282246310005":     "37828******0005",
		"4222222222222":       "422******2222",
		"4000000000000000006": "400000*********0006",
	} {
		if got, _ := v.text(in); got != want {
			t.Errorf("truncation of %s = %s, want %s", in, got, want)
		}
	}
}

func TestCardsTrackData(t *testing.T) {
	c := truncation(t)
	ev := &event.Event{Properties: map[string]any{
		"Swipe":  "read %B4111111111111111^DOE/JOHN^25121011234567890?; done",
		"Track2": "x",
		"Raw":    "t2 ;4111111111111111=25121011234567?",
	}}
	out, err := c.Protect(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Properties["Swipe"]; got != "read "+TrackDataRemoved+"; done" {
		t.Errorf("Swipe = %q", got)
	}
	if got := out.Properties["Raw"]; got != "t2 "+TrackDataRemoved {
		t.Errorf("Raw = %q", got)
	}
	if got, want := out.Properties[RemovedProperty], []any{"Raw", "Swipe"}; !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %v, want %v", RemovedProperty, got, want)
	}
}

func TestCardsNoMatchReturnsSameEvent(t *testing.T) {
	c := tokens(t)
	ev := &event.Event{Message: "user 12345 paid 99.95", Properties: map[string]any{
		"User": "u-1", "Amount": 99.95, "N": int64(12345), "M": map[string]any{"a": []any{"b", 1}},
	}}
	out, err := c.Protect(context.Background(), ev)
	if err != nil || out != ev {
		t.Fatalf("Protect = %p, %v; want the same event", out, err)
	}
	if n := testing.AllocsPerRun(100, func() { c.Protect(context.Background(), ev) }); n != 0 {
		t.Errorf("Protect allocates %v times on an event without card numbers", n)
	}
}

// TestCardsDeepAndCyclic: deep nesting and cycles neither panic nor leak.
func TestCardsDeepAndCyclic(t *testing.T) {
	const pan = "4111111111111111"
	var deep any = pan
	for range 1000 {
		deep = map[string]any{"d": deep}
	}
	cyc := map[string]any{"pan": pan}
	cyc["self"] = cyc
	shared := map[string]any{"pan": pan}
	for range 16 { // 2^16 paths through the same maps
		shared = map[string]any{"a": shared, "b": shared}
	}
	ev := &event.Event{Properties: map[string]any{"Deep": deep, "Cycle": cyc, "Shared": shared, "Big": strings.Repeat("x", 10<<20) + pan}}
	out, err := tokens(t).Protect(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := event.AppendEncode(nil, out)
	if strings.Contains(string(b), pan) {
		t.Error("card number left in a deep, cyclic or shared value")
	}
}

// benchEvent is the ~256-byte event of the audit package's benchmarks.
func benchEvent(card string) *event.Event {
	return &event.Event{
		Timestamp:       time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC),
		MessageTemplate: "User {UserId} performed {Action} on {Resource}",
		Message:         "User u-1001 performed export on patients/42",
		Properties: map[string]any{
			"UserId": "u-1001", "Action": "export", "Resource": "patients/42",
			"Count": 250, "TraceId": strings.Repeat("f", 32), "Ip": "203.0.113.7", "Card": card,
		},
	}
}

// BenchmarkProtect is the cost per event of the stages WithCardTokens
// turns on (the SAD filter, then tokens), on an event without a card
// number and on one with one.
func BenchmarkProtect(b *testing.B) {
	st := Pipeline{NewSADFilter(), tokens(b)}
	for name, card := range map[string]string{"none": "n/a", "one": "4111 1111 1111 1111"} {
		b.Run("card="+name, func(b *testing.B) {
			ev := benchEvent(card)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := st.Protect(context.Background(), ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
