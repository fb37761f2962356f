package export

import (
	"testing"

	"github.com/willibrandon/mtlog-audit/event"
)

// TestFilterMissingProperty: the example of `replay --help`
// (`props.Count > 10 || message contains "export"`) works on events that
// lack Count: an ordering comparison with a missing property is false, not
// an error. Level names are case-insensitive (`level >= ERROR`).
func TestFilterMissingProperty(t *testing.T) {
	withCount := &event.Event{Level: event.LevelInformation, MessageTemplate: "{Count} exported", Properties: map[string]any{"Count": int64(11)}}
	small := &event.Event{Level: event.LevelInformation, MessageTemplate: "{Count} exported", Properties: map[string]any{"Count": int64(3)}}
	without := &event.Event{Level: event.LevelError, MessageTemplate: "login failed"}
	exportMsg := &event.Event{Level: event.LevelInformation, MessageTemplate: "export started"}
	cases := []struct {
		src  string
		ev   *event.Event
		want bool
	}{
		{`props.Count > 10 || message contains "export"`, withCount, true},
		{`props.Count > 10 || message contains "export"`, small, true},
		{`props.Count > 10 || message contains "export"`, without, false},
		{`props.Count > 10 || message contains "export"`, exportMsg, true},
		{`props.Count < 10`, without, false},
		{`props.Count <= 10`, small, true},
		{`props.Count >= 11`, withCount, true},
		{`10 < props.Count`, without, false},
		{`props.Count > props.Missing`, withCount, false},
		{`(props.Count ?? 0) <= 10`, without, true},
		{`props.Count == nil`, without, true},
		{`level >= ERROR`, without, true},
		{`level >= ERROR`, withCount, false},
		{`level >= error`, without, true},
		{`level == Err`, without, true},
		{`level < WRN`, withCount, true},
		{`level >= Error`, without, true},
		{`let error = 1; error == 1`, withCount, true},
		{`seq in 1..5`, withCount, true},
	}
	for _, c := range cases {
		f, err := CompileFilter(c.src)
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		got, err := f.Match(3, c.ev)
		if err != nil {
			t.Fatalf("%s on %q: %v", c.src, c.ev.MessageTemplate, err)
		}
		if got != c.want {
			t.Errorf("%s on %q = %v, want %v", c.src, c.ev.MessageTemplate, got, c.want)
		}
	}
	// A type mismatch between present values is still an error.
	f, err := CompileFilter(`props.Count > "ten"`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Match(1, withCount); err == nil {
		t.Error(`props.Count > "ten" on an integer Count: no error`)
	}
	// An unknown identifier that is no level is still a compile error.
	if _, err := CompileFilter(`level >= Eror`); err == nil {
		t.Error("level >= Eror compiled")
	}
}
