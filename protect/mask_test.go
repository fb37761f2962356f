package protect

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/willibrandon/mtlog-audit/event"
)

func TestIsSAD(t *testing.T) {
	for name, want := range map[string]bool{
		"CVV": true, "cvv2": true, "CardCVV": true, "card_cvc2": true, "cvc": true,
		"CID": true, "CAV2": true, "PIN": true, "pin_code": true, "PINBlock": true,
		"pin-block": true, "Track1": true, "track_2": true, "TrackData": true,
		"card.security_code": true, "CardVerificationValue": true,
		"Spinner": false, "TrackingID": false, "Pinned": false, "Card": false,
		"Amount": false, "": false, "cvvx": false, "Opinion": false,
	} {
		if got := isSAD(name); got != want {
			t.Errorf("isSAD(%q) = %v, want %v", name, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { isSAD("CustomerAccountReference") }); n != 0 {
		t.Errorf("isSAD allocates %v times", n)
	}
}

func TestSADFilter(t *testing.T) {
	ev := &event.Event{
		Message: "charge with cvv 123 and pin 4321 ok, 1234 stays",
		Properties: map[string]any{
			"CVV":    "123",
			"Amount": 10,
			"Card":   map[string]any{"Pin": 4321, "Holder": "J"},
		},
	}
	out, err := NewSADFilter().Protect(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"Amount":        10,
		"Card":          map[string]any{"Holder": "J"},
		RemovedProperty: []any{"CVV", "Pin"},
	}
	if !reflect.DeepEqual(out.Properties, want) {
		t.Errorf("properties %v, want %v", out.Properties, want)
	}
	if want := "charge with cvv [removed] and pin [removed] ok, 1234 stays"; out.Message != want {
		t.Errorf("message %q, want %q", out.Message, want)
	}
	if _, ok := ev.Properties["CVV"]; !ok {
		t.Error("the caller's event was modified")
	}
}

func TestMask(t *testing.T) {
	m, err := NewMask([]string{"password", "card_number"}, []string{"ssn"})
	if err != nil {
		t.Fatal(err)
	}
	ev := &event.Event{
		Message: `login "hunter2" by 078-05-1120`,
		Properties: map[string]any{
			"Password": "hunter2",
			"User":     map[string]any{"SSN": "078-05-1120", "CardNumber": "x", "Name": "n"},
			"List":     []any{map[string]any{"PASSWORD": 1}},
		},
	}
	out, err := m.Protect(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"Password":      Masked,
		"User":          map[string]any{"CardNumber": Masked, "Name": "n"},
		"List":          []any{map[string]any{"PASSWORD": Masked}},
		RemovedProperty: []any{"SSN"},
	}
	if !reflect.DeepEqual(out.Properties, want) {
		t.Errorf("properties %v, want %v", out.Properties, want)
	}
	if want := `login "[masked]" by [removed]`; out.Message != want {
		t.Errorf("message %q, want %q", out.Message, want)
	}
	if _, err := NewMask([]string{"_"}, nil); !errors.Is(err, ErrFieldName) {
		t.Errorf("NewMask(\"_\") = %v, want ErrFieldName", err)
	}
}

func TestScrubWholeWords(t *testing.T) {
	for _, c := range []struct {
		msg   string
		texts []string
		want  string
	}{
		{"pin 12 in 123 and 12", []string{"12"}, "pin [removed] in 123 and [removed]"},
		{"a-b a-bc", []string{"a-b"}, "[removed] a-bc"},
		{"", []string{"x"}, ""},
	} {
		if got := scrub(c.msg, c.texts, Removed); got != c.want {
			t.Errorf("scrub(%q, %q) = %q, want %q", c.msg, c.texts, got, c.want)
		}
	}
}

func TestMaskNoMatchDoesNotAllocate(t *testing.T) {
	m, _ := NewMask([]string{"password"}, []string{"ssn"})
	sad := NewSADFilter()
	ev := &event.Event{Message: "m", Properties: map[string]any{
		"User": "u-1", "Amount": 99.95, "M": map[string]any{"a": []any{"b", 1}},
	}}
	if n := testing.AllocsPerRun(100, func() {
		m.Protect(context.Background(), ev)
		sad.Protect(context.Background(), ev)
	}); n != 0 {
		t.Errorf("Protect allocates %v times on an event with nothing to mask", n)
	}
}
