package export

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/expr-lang/expr/file"

	"github.com/willibrandon/mtlog-audit/event"
)

func TestFilterMatch(t *testing.T) {
	ev := roundTrip(t, &event.Event{
		Timestamp:       time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC),
		Level:           event.LevelError,
		MessageTemplate: "User {UserId} export of {Count} records failed",
		Properties: map[string]any{
			"UserId":  "u-1",
			"Count":   42,
			"Big":     uint64(1) << 63,
			"Ratio":   0.5,
			"Elapsed": 3 * time.Second,
			"Tags":    []string{"a", "b"},
			"User":    map[string]any{"Name": "Ann", "Age": 30},
			"Raw":     json.RawMessage(`{"latency":1.25,"n":7,"huge":123456789012345678901234567890}`),
			"Cause":   errors.New("disk full"),
			"Flag":    true,
		},
		Exception: errors.New("timeout"),
	})
	plain := roundTrip(t, &event.Event{Timestamp: time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC),
		Level: event.LevelInformation, MessageTemplate: "no properties"})
	cases := []struct {
		src       string
		ev        *event.Event
		seq       uint64
		want      bool
		wantError bool
	}{
		{src: `level >= Error && props.UserId == "u-1"`, ev: ev, want: true},
		{src: `level >= Error && props.UserId == "u-2"`, ev: ev, want: false},
		{src: `level >= Error && props.UserId == "u-1"`, ev: plain, want: false},
		{src: `props.UserId == "u-1"`, ev: plain, want: false},
		{src: `props.Count > 10`, ev: ev, want: true},
		{src: `props.Count > 42`, ev: ev, want: false},
		{src: `props.Count == 42 && props.Count in [41, 42]`, ev: ev, want: true},
		{src: `props.Count > 41.5`, ev: ev, want: true},
		{src: `props.Big > 10`, ev: ev, want: true},
		{src: `props.Ratio < 1`, ev: ev, want: true},
		{src: `props.Elapsed > duration("2s")`, ev: ev, want: true},
		{src: `"b" in props.Tags`, ev: ev, want: true},
		{src: `props.User.Name == "Ann" && props.User.Age >= 18`, ev: ev, want: true},
		{src: `props.Raw.latency > 1 && props.Raw.n == 7 && props.Raw.huge > 1e29`, ev: ev, want: true},
		{src: `props.Cause contains "full"`, ev: ev, want: true},
		{src: `props.Flag`, ev: ev, want: true},
		{src: `props.Missing?.Name == "x"`, ev: ev, want: false},
		{src: `(props.Count ?? 0) > 10`, ev: plain, want: false},
		{src: `message contains "export"`, ev: ev, want: true},
		{src: `message contains "u-1 export of 42"`, ev: ev, want: true},
		{src: `template startsWith "User {UserId}"`, ev: ev, want: true},
		{src: `exception == "timeout"`, ev: ev, want: true},
		{src: `exception == ""`, ev: plain, want: true},
		{src: `time > date("2024-01-01")`, ev: ev, want: true},
		{src: `time > date("2024-01-01")`, ev: plain, want: false},
		{src: `time >= date("2024-06-01T12:00:00Z") && time < date("2024-06-01T12:00:01Z")`, ev: ev, want: true},
		{src: `seq in 5..10`, ev: ev, seq: 5, want: true},
		{src: `seq in 5..10`, ev: ev, seq: 10, want: true},
		{src: `seq in 5..10`, ev: ev, seq: 11, want: false},
		{src: `seq > 3 && seq % 2 == 0`, ev: ev, seq: 4, want: true},
		{src: `level == Information`, ev: plain, want: true},
		{src: `level in [Verbose, Debug, Warning, Fatal]`, ev: plain, want: false},
		{src: `level > Information`, ev: ev, want: true},
		// Run-time type errors are errors, not panics.
		{src: `props.Count > 10`, ev: plain, want: false}, // a missing property compares false
		{src: `props.Count * 2 > 10`, ev: plain, wantError: true},
		{src: `props.UserId > 3`, ev: ev, wantError: true},
		{src: `props.UserId`, ev: ev, wantError: true},
		{src: `props.Missing.Name == "x"`, ev: ev, wantError: true},
	}
	for _, c := range cases {
		f, err := CompileFilter(c.src)
		if err != nil {
			t.Errorf("CompileFilter(%q): %v", c.src, err)
			continue
		}
		got, err := f.Match(c.seq, c.ev)
		if c.wantError {
			if err == nil {
				t.Errorf("%q on %q: no error (result %v)", c.src, c.ev.MessageTemplate, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q on %q: %v, %v; want %v", c.src, c.ev.MessageTemplate, got, err, c.want)
		}
	}
	if f, _ := CompileFilter("true"); f.String() != "true" {
		t.Errorf("String() = %q", f.String())
	}
	if f, _ := CompileFilter("true"); func() error { _, err := f.Match(1, nil); return err }() == nil {
		t.Error("Match(nil) succeeded")
	}
}

func TestFilterRuntimeErrorText(t *testing.T) {
	f, err := CompileFilter(`level >= Error || props.Count * 10 > 1`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Match(77, &event.Event{Level: event.LevelDebug})
	if err == nil {
		t.Fatal("no error for arithmetic on a missing property")
	}
	msg := err.Error()
	for _, want := range []string{"event 77", "line 1, column 31", "\n | ..............................^", "?? 0", "mtlog-audit replay --help"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	var fe *file.Error
	if !errors.As(err, &fe) {
		t.Errorf("error does not unwrap to *file.Error: %v", err)
	}
}

func TestFilterCompileErrors(t *testing.T) {
	cases := []struct {
		src  string
		want []string
	}{
		{`level >= && props.UserId == "u-1"`, []string{"line 1, column 10", " | level >= && props", "\n | .........^", "mtlog-audit replay --help"}},
		{`level >= Error &&`, []string{"column 17", "^"}},
		{"level >= Error &&\n  bogus == 1", []string{"unknown name bogus", "line 2, column 3", " |   bogus == 1", " | ..^"}},
		{`props.UserId == "u-1`, []string{"column", "^"}},
		{`level + 1`, []string{"bool", "mtlog-audit replay --help"}},
		{`message`, []string{"bool"}},
		{`level contains "x"`, []string{"column", "^"}},
		{``, []string{"empty", "mtlog-audit replay --help"}},
		{`   `, []string{"empty"}},
	}
	for _, c := range cases {
		f, err := CompileFilter(c.src)
		if err == nil {
			t.Errorf("CompileFilter(%q) = %v; want an error", c.src, f)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("CompileFilter(%q) error\n%s\nlacks %q", c.src, err, w)
			}
		}
	}
}

func TestFilterConcurrentMatch(t *testing.T) {
	f, err := CompileFilter(`props.N % 2 == 0 && message contains "n"`)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				n := g*1000 + i
				ev := &event.Event{MessageTemplate: "n={N}", Properties: map[string]any{"N": int64(n)}}
				ok, err := f.Match(uint64(n), ev)
				if err != nil || ok != (n%2 == 0) {
					t.Errorf("n=%d: %v, %v", n, ok, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestFilterDoesNotModifyEvent(t *testing.T) {
	raw := json.RawMessage(`{"a":1}`)
	ev := &event.Event{Properties: map[string]any{"Raw": raw, "E": &event.ErrorValue{Message: "x"}}}
	f, err := CompileFilter(`props.Raw.a == 1 && props.E == "x"`)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := f.Match(1, ev)
	if err != nil || !ok {
		t.Fatalf("Match = %v, %v", ok, err)
	}
	if _, isRaw := ev.Properties["Raw"].(json.RawMessage); !isRaw {
		t.Errorf("Properties[Raw] became %T", ev.Properties["Raw"])
	}
	if _, isErr := ev.Properties["E"].(*event.ErrorValue); !isErr {
		t.Errorf("Properties[E] became %T", ev.Properties["E"])
	}
}
