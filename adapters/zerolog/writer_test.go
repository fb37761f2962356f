package zerologaudit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/rs/zerolog"
	audit "github.com/willibrandon/mtlog-audit"
	zerologaudit "github.com/willibrandon/mtlog-audit/adapters/zerolog"
	"github.com/willibrandon/mtlog-audit/internal/adaptertest"
)

const childEnv = "ZEROLOGAUDIT_KILL_CHILD"

func TestMain(m *testing.M) { adaptertest.Main(m, childEnv, killChild) }

func openSink(t testing.TB, dir string) *audit.Sink {
	t.Helper()
	s, err := audit.New(audit.WithWAL(dir))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func replayAll(t testing.TB, s *audit.Sink) []*audit.Event { return adaptertest.Events(t, s) }

func Example() {
	dir, _ := os.MkdirTemp("", "zerologaudit-example")
	defer os.RemoveAll(dir)
	sink, err := audit.New(audit.WithWAL(dir))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sink.Close()

	w, err := zerologaudit.New(sink)
	if err != nil {
		fmt.Println(err)
		return
	}
	logger := zerolog.New(w).With().Timestamp().Logger()
	logger.Warn().Str("user", "u-1").Int("count", 42).Msg("records exported")

	for ev, err := range sink.Replay(context.Background(), time.Time{}, time.Time{}) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(ev.Level, ev.Message, ev.Properties["user"], ev.Properties["count"])
	}
	// Output: Warning records exported u-1 42
}

func TestFieldTypes(t *testing.T) {
	s := openSink(t, t.TempDir())
	defer s.Close()
	w := mustNew(t, s)
	logger := zerolog.New(w).With().Timestamp().Logger()
	boom := errors.New("boom")
	logger.Error().
		Str("s", "x").
		Int64("i", -7).
		Uint64("umax", ^uint64(0)).
		Float64("f", 3.25).
		Bool("b", true).
		Dict("nested", zerolog.Dict().Str("k", "v").Int("n", 1).Dict("deeper", zerolog.Dict().Bool("ok", true))).
		Ints("arr", []int{1, 2, 3}).
		Err(boom).
		Msg("typed")
	// A big integer beyond float64's exact range, written as raw JSON.
	if _, err := w.Write([]byte(`{"level":"trace","time":"2024-05-01T10:20:30.123456789Z","big":9007199254740993,"huge":123456789012345678901234567890,"pi":3.141592653589793238,"message":"big"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	evs := replayAll(t, s)
	if len(evs) != 2 {
		t.Fatalf("got %d events", len(evs))
	}
	e := evs[0]
	if e.Level != audit.LevelError || e.Message != "typed" {
		t.Fatalf("level/message: %v %q", e.Level, e.Message)
	}
	if e.Exception == nil || e.Exception.Error() != "boom" || e.Properties["error"] != "boom" {
		t.Fatalf("error: %v %v", e.Exception, e.Properties["error"])
	}
	if time.Since(e.Timestamp) > time.Minute || e.Timestamp.After(time.Now().Add(time.Second)) {
		t.Fatalf("timestamp %v", e.Timestamp)
	}
	want := map[string]any{
		"s": "x", "i": int64(-7), "b": true, "error": "boom",
		"umax":   json.RawMessage("18446744073709551615"),
		"f":      json.RawMessage("3.25"),
		"nested": map[string]any{"k": "v", "n": int64(1), "deeper": map[string]any{"ok": true}},
		"arr":    []any{int64(1), int64(2), int64(3)},
	}
	if !reflect.DeepEqual(e.Properties, want) {
		t.Fatalf("properties\n got %#v\nwant %#v", e.Properties, want)
	}
	e = evs[1]
	if e.Level != audit.LevelVerbose || !e.Timestamp.Equal(time.Date(2024, 5, 1, 10, 20, 30, 123456789, time.UTC)) {
		t.Fatalf("level/time: %v %v", e.Level, e.Timestamp)
	}
	// 9007199254740993 (2^53+1) is not exact in float64 but fits int64.
	if e.Properties["big"] != int64(9007199254740993) {
		t.Fatalf("big = %#v", e.Properties["big"])
	}
	if got, _ := e.Properties["huge"].(json.RawMessage); string(got) != "123456789012345678901234567890" {
		t.Fatalf("huge = %#v", e.Properties["huge"])
	}
	if got, _ := e.Properties["pi"].(json.RawMessage); string(got) != "3.141592653589793238" {
		t.Fatalf("pi = %#v", e.Properties["pi"])
	}
}

func TestLevelsAndTime(t *testing.T) {
	s := openSink(t, t.TempDir())
	defer s.Close()
	w := mustNew(t, s)
	cases := map[string]audit.Level{
		"trace": audit.LevelVerbose, "debug": audit.LevelDebug, "info": audit.LevelInformation,
		"warn": audit.LevelWarning, "error": audit.LevelError, "fatal": audit.LevelFatal,
		"panic": audit.LevelFatal, "": audit.LevelInformation, "weird": audit.LevelInformation,
	}
	for name, lv := range cases {
		line := fmt.Sprintf(`{"level":%q,"time":1700000000,"message":%q}`, name, name)
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		_ = lv
	}
	// WriteLevel's level is used when the line has none.
	if _, err := w.WriteLevel(zerolog.WarnLevel, []byte(`{"message":"nolevel","time":"2024-01-02T03:04:05Z"}`)); err != nil {
		t.Fatal(err)
	}
	for _, e := range replayAll(t, s) {
		if e.Message == "nolevel" {
			if e.Level != audit.LevelWarning || !e.Timestamp.Equal(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)) {
				t.Fatalf("nolevel: %v %v", e.Level, e.Timestamp)
			}
			continue
		}
		if e.Level != cases[e.Message] {
			t.Errorf("level %q → %v, want %v", e.Message, e.Level, cases[e.Message])
		}
		if e.Timestamp.Unix() != 1700000000 {
			t.Errorf("time %v", e.Timestamp)
		}
	}
}

func TestUnixMsTime(t *testing.T) {
	old := zerolog.TimeFieldFormat
	zerolog.TimeFieldFormat = zerolog.TimeFormatUnixMs
	defer func() { zerolog.TimeFieldFormat = old }()
	s := openSink(t, t.TempDir())
	defer s.Close()
	if _, err := mustNew(t, s).Write([]byte(`{"time":1700000000123,"message":"ms"}`)); err != nil {
		t.Fatal(err)
	}
	e := replayAll(t, s)[0]
	if !e.Timestamp.Equal(time.UnixMilli(1700000000123)) {
		t.Fatalf("time %v", e.Timestamp)
	}
}

func TestMalformed(t *testing.T) {
	s := openSink(t, t.TempDir())
	defer s.Close()
	n, err := mustNew(t, s).Write([]byte(`{"level":"info","message":`))
	if err == nil || !errors.Is(err, zerologaudit.ErrMalformed) || n != 0 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	evs := replayAll(t, s)
	if len(evs) != 1 || evs[0].Properties["Raw"] != `{"level":"info","message":` {
		t.Fatalf("raw line not recorded: %+v", evs)
	}
}

func TestNilSink(t *testing.T) {
	if w, err := zerologaudit.New(nil); !errors.Is(err, zerologaudit.ErrNilSink) || w != nil {
		t.Fatalf("New(nil) = %v, %v", w, err)
	}
	var zero zerologaudit.Writer
	if _, err := zero.Write([]byte(`{}`)); !errors.Is(err, zerologaudit.ErrNilSink) {
		t.Fatalf("zero Writer: %v", err)
	}
}

// mustNew returns a Writer on s.
func mustNew(t testing.TB, s *audit.Sink) *zerologaudit.Writer {
	t.Helper()
	w, err := zerologaudit.New(s)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestClosedSink(t *testing.T) {
	s := openSink(t, t.TempDir())
	s.Close()
	_, err := mustNew(t, s).Write([]byte(`{"level":"info","message":"late"}`))
	if !errors.Is(err, audit.ErrSinkClosed) {
		t.Fatalf("err = %v", err)
	}
}

// TestKill SIGKILLs a child that logs through zerolog and the adapter and
// checks that every call that returned is in the reopened log.
func TestKill(t *testing.T) { adaptertest.Kill(t, childEnv) }

// killChild: a failed write makes zerolog call ErrorHandler, which exits,
// so a call that returned was durable.
func killChild(dir string) {
	zerolog.ErrorHandler = func(err error) {
		fmt.Fprintln(os.Stderr, "child write:", err)
		os.Exit(4)
	}
	adaptertest.Child(dir, func(sink *audit.Sink) func(string) error {
		w, err := zerologaudit.New(sink)
		logger := zerolog.New(w).With().Timestamp().Logger()
		return func(id string) error {
			logger.Info().Str(adaptertest.IDProp, id).Msg("kill")
			return err
		}
	})
}

// A key zerolog wrote twice keeps both values; input that is not exactly
// one JSON object is recorded raw and reported.
func TestDuplicateKeysAndNonObjects(t *testing.T) {
	s := openSink(t, t.TempDir())
	defer s.Close()
	w := mustNew(t, s)
	logger := zerolog.New(w)
	logger.Info().Str("user", "a").Str("user", "b").Str("user", "c").Msg("dup")
	for _, bad := range []string{`[1,2]`, `{"a":1} {"b":2}`, `"str"`, ``} {
		if _, err := w.Write([]byte(bad)); !errors.Is(err, zerologaudit.ErrMalformed) {
			t.Errorf("Write(%q) = %v, want ErrMalformed", bad, err)
		}
	}
	evs := replayAll(t, s)
	if len(evs) != 5 {
		t.Fatalf("got %d events, want 5", len(evs))
	}
	p := evs[0].Properties
	if p["user"] != "a" || p["user#2"] != "b" || p["user#3"] != "c" {
		t.Fatalf("duplicate keys: %v", p)
	}
	if evs[2].Properties["Raw"] != `{"a":1} {"b":2}` {
		t.Fatalf("raw: %v", evs[2].Properties)
	}
}
