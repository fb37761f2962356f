package export

import (
	"errors"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/event"
)

func TestRender(t *testing.T) {
	props := map[string]any{
		"Name":        "Bob",
		"Count":       int64(42),
		"Neg":         int64(-7),
		"Big":         uint64(18446744073709551615),
		"Pi":          3.14159,
		"Ratio":       0.256,
		"When":        time.Date(2024, 3, 4, 15, 6, 7, 890000000, time.FixedZone("X", 5*3600+30*60)),
		"Elapsed":     1500 * time.Millisecond,
		"Err":         &event.ErrorValue{Message: "disk full"},
		"Unsup":       event.Unsupported{Type: "func()", Reason: "cannot encode functions"},
		"Bytes":       []byte("text"),
		"Bin":         []byte{1, 2},
		"List":        []any{int64(1), "a"},
		"Map":         map[string]any{"k": true},
		"Nil":         nil,
		"Dotted.Name": "d",
		"user-id":     "u-9",
		"0":           "zero",
		"Uni":         "日本",
	}
	cases := []struct{ tpl, want string }{
		{"Hello {Name}", "Hello Bob"},
		{"{@Name} {$Name}", "Bob Bob"},
		{"{Name:q} {Name:l}", `"Bob" Bob`},
		{"{Count} {Count:000000} {Count:x} {Count:X} {Count:D5} {Neg:000}", "42 000042 2a 2A 00042 -007"},
		{"{Big} {Big:x}", "18446744073709551615 ffffffffffffffff"},
		{"{Pi:F2} {Pi:E1} {Ratio:P} {Ratio:P0} {Pi:0.00} {Pi:000.0} {Pi}", "3.14 3.1E+00 25.60% 26% 3.14 003.1 3.14159"},
		{"{Count:F1}", "42.0"},
		{"{When}", "2024-03-04T15:06:07+05:30"},
		{"{When:yyyy-MM-dd HH:mm:ss.fff}", "2024-03-04 15:06:07.890"},
		{"{When:dddd d MMM yy h tt zzz}", "Monday 4 Mar 24 3 PM +05:30"},
		{"{When:'at' HH\\h}", "at 15h"},
		{"{When:2006-01-02}", "2024-03-04"},
		{"{Elapsed} {Err} {Unsup}", "1.5s disk full <unsupported func(): cannot encode functions>"},
		{"{Bytes} {Bin}", "text [1 2]"},
		{"{List} {Map} {Name:j} {Count:j}", `[1,"a"] {"k":true} "Bob" 42`},
		{"{Nil}", "nil"},
		{"{Dotted.Name} {user-id} {0}", "d u-9 zero"},
		{"[{Name,6}] [{Name,-6}] [{Count,5:000}] [{Uni,4}]", "[   Bob] [Bob   ] [  042] [  日本]"},
		{"{Missing} {@Missing:fmt} {Name,x}", "{Missing} {@Missing:fmt} {Name,x}"},
		{"{{Name}} {{ {Name} }}", "{Name} { Bob }"},
		{"{{.Name}} {{@.Count}} {{.Missing}}", "Bob 42 {{.Missing}}"},
		{"{ Name }", "Bob"},
		{"{bad name} {} {1a}", "{bad name} {} {1a}"},
		{"unclosed {Name", "unclosed {Name"},
		{"lone } brace", "lone } brace"},
		{"no holes", "no holes"},
		{"", ""},
		{"{Name}{Name}", "BobBob"},
	}
	for _, c := range cases {
		got := Render(&event.Event{MessageTemplate: c.tpl, Properties: props})
		if got != c.want {
			t.Errorf("Render(%q) = %q; want %q", c.tpl, got, c.want)
		}
	}
}

func TestRenderPrefersMessage(t *testing.T) {
	ev := &event.Event{MessageTemplate: "Hi {Name}", Message: "rendered by mtlog", Properties: map[string]any{"Name": "x"}}
	if got := Render(ev); got != "rendered by mtlog" {
		t.Errorf("Render = %q", got)
	}
	if got := Render(nil); got != "" {
		t.Errorf("Render(nil) = %q", got)
	}
	// Values that replay never returns are normalized as storing them would.
	live := &event.Event{MessageTemplate: "{A} {B} {C}", Properties: map[string]any{
		"A": int(5), "B": errors.New("e"), "C": struct{ X int }{1},
	}}
	if got, want := Render(live), `5 e {"X":1}`; got != want {
		t.Errorf("Render(live) = %q; want %q", got, want)
	}
	if got := Render(roundTrip(t, live)); got != `5 e {"X":1}` {
		t.Errorf("Render(replayed) = %q", got)
	}
}
