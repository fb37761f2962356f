package slogaudit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/slogtest"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	slogaudit "github.com/willibrandon/mtlog-audit/adapters/slog"
	"github.com/willibrandon/mtlog-audit/internal/adaptertest"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog/core"
)

const childEnv = "MTLOG_AUDIT_SLOG_KILL_CHILD"

func TestMain(m *testing.M) { adaptertest.Main(m, childEnv, killChild) }

func openSink(t testing.TB, opts ...audit.Option) *audit.Sink {
	return adaptertest.OpenSink(t, opts...)
}

func events(t testing.TB, s *audit.Sink) []*audit.Event { return adaptertest.Events(t, s) }

func newHandler(t testing.TB, sink *audit.Sink, opts *slogaudit.Options) *slogaudit.Handler {
	t.Helper()
	h, err := slogaudit.New(sink, opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// stampClock is the clock of the slogtest sinks: the Sink stamps a record
// without a time with it (audit.Sink.Write), so an event at this time had
// none, which is what slogtest checks.
var stampClock = time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)

// toMap converts a replayed event to the map form slogtest expects.
func toMap(ev *audit.Event) map[string]any {
	m := map[string]any{}
	if !ev.Timestamp.Equal(stampClock) {
		m[slog.TimeKey] = ev.Timestamp
	}
	m[slog.LevelKey] = ev.Level
	m[slog.MessageKey] = ev.Message
	for k, v := range ev.Properties {
		m[k] = v
	}
	return m
}

func TestSlogtest(t *testing.T) {
	var sink *audit.Sink
	slogtest.Run(t, func(t *testing.T) slog.Handler {
		sink = openSink(t, audit.WithClock(func() time.Time { return stampClock }))
		return newHandler(t, sink, &slogaudit.Options{Level: slog.LevelDebug})
	}, func(t *testing.T) map[string]any {
		evs := events(t, sink)
		if len(evs) != 1 {
			t.Fatalf("got %d events, want 1", len(evs))
		}
		return toMap(evs[0])
	})
}

type token string

func (tk token) LogValue() slog.Value { return slog.StringValue("resolved-" + string(tk)) }

func TestMapping(t *testing.T) {
	sink := openSink(t)
	h := newHandler(t, sink, &slogaudit.Options{Level: slog.Level(-100)})
	l := slog.New(h).With("app", "x").WithGroup("req").With("id", 7)
	ts := time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)
	r := slog.NewRecord(ts, slog.LevelWarn+1, "hello", 0)
	r.AddAttrs(slog.Any("tok", token("t")), slog.Group("g", slog.Bool("ok", true)), slog.Group("empty"))
	if err := l.Handler().Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	evs := events(t, sink)
	if len(evs) != 1 {
		t.Fatalf("got %d events", len(evs))
	}
	ev := evs[0]
	if !ev.Timestamp.Equal(ts) || ev.Level != audit.LevelWarning || ev.Message != "hello" || ev.MessageTemplate != "hello" {
		t.Fatalf("bad event %+v", ev)
	}
	got := fmt.Sprint(ev.Properties)
	want := "map[app:x req:map[g:map[ok:true] id:7 tok:resolved-t]]"
	if got != want {
		t.Fatalf("properties %s, want %s", got, want)
	}
	for _, c := range []struct {
		l    slog.Level
		want audit.Level
	}{
		{-100, audit.LevelVerbose}, {-5, audit.LevelVerbose}, {-4, audit.LevelDebug}, {-1, audit.LevelDebug},
		{0, audit.LevelInformation}, {2, audit.LevelInformation}, {4, audit.LevelWarning}, {7, audit.LevelWarning},
		{8, audit.LevelError}, {11, audit.LevelError}, {12, audit.LevelFatal}, {100, audit.LevelFatal},
	} {
		if g := slogaudit.Level(c.l); g != c.want {
			t.Errorf("Level(%d) = %v, want %v", c.l, g, c.want)
		}
	}
	if h.Enabled(context.Background(), -101) || !h.Enabled(context.Background(), -100) {
		t.Error("Enabled ignores Options.Level")
	}
	if newHandler(t, sink, nil).Enabled(context.Background(), slog.LevelDebug) {
		t.Error("default level should be Info")
	}
}

func TestNilSink(t *testing.T) {
	if h, err := slogaudit.New(nil, nil); !errors.Is(err, slogaudit.ErrNilSink) || h != nil {
		t.Fatalf("New(nil): %v, %v", h, err)
	}
	var zero slogaudit.Handler
	err := zero.Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelInfo, "x", 0))
	if !errors.Is(err, slogaudit.ErrNilSink) {
		t.Fatalf("Handle on the zero Handler: %v", err)
	}
	slog.New(&zero).Info("must not panic")
	if _, err := slogaudit.NewHandler(); err == nil || !strings.Contains(err.Error(), "WithWAL") {
		t.Fatalf("NewHandler without a directory: %v", err)
	}
}

// Values the encoder cannot store become a placeholder naming their type;
// the record is still written.
func TestUnencodableValue(t *testing.T) {
	sink := openSink(t)
	l := slog.New(newHandler(t, sink, nil))
	l.Info("odd", "ch", make(chan int), "fn", func() {}, "ok", 1)
	evs := events(t, sink)
	if len(evs) != 1 {
		t.Fatalf("got %d events", len(evs))
	}
	p := evs[0].Properties
	for _, k := range []string{"ch", "fn"} {
		u, ok := p[k].(audit.Unsupported)
		if !ok || u.Type == "" {
			t.Errorf("property %s = %#v, want an audit.Unsupported placeholder", k, p[k])
		}
	}
	if p["ok"] != int64(1) {
		t.Errorf("ok = %#v", p["ok"])
	}
}

// With the default fail-closed policy, a record that cannot be written
// blocks the slog call (slog.Logger drops Handle's error) instead of being
// lost, and the failure handler hears of it.
func TestFailClosedThroughLogger(t *testing.T) {
	ffs := vfs.NewFaultFS(vfs.NewCrashFS())
	var failures atomic.Int64
	h, err := slogaudit.NewHandler(audit.WithWAL("/wal"), audit.WithFileSystem(ffs),
		audit.WithFailureHandler(func(*core.LogEvent, error) { failures.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Sink().Close()
	ffs.SetWriteBudget(0)
	done := make(chan struct{})
	go func() { slog.New(h).Info("waits for space"); close(done) }()
	select {
	case <-done:
		t.Fatal("slog call returned while its record was not durable")
	case <-time.After(200 * time.Millisecond):
	}
	ffs.SetWriteBudget(-1)
	<-done
	if evs := events(t, h.Sink()); len(evs) != 1 || evs[0].Message != "waits for space" || failures.Load() == 0 {
		t.Fatalf("events %+v, failures %d", evs, failures.Load())
	}
}

func TestClosedSink(t *testing.T) {
	h, err := slogaudit.NewHandler(audit.WithWAL(filepath.Join(t.TempDir(), "wal")))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelInfo, "before", 0)); err != nil {
		t.Fatal(err)
	}
	if err := h.Sink().Close(); err != nil {
		t.Fatal(err)
	}
	err = h.Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelInfo, "after", 0))
	if !errors.Is(err, audit.ErrSinkClosed) {
		t.Fatalf("Handle after Close: %v, want ErrSinkClosed", err)
	}
}

func Example() {
	dir, _ := os.MkdirTemp("", "slogaudit-example")
	defer os.RemoveAll(dir)

	h, err := slogaudit.NewHandler(audit.WithWAL(filepath.Join(dir, "wal")))
	if err != nil {
		panic(err)
	}
	defer h.Sink().Close()
	logger := slog.New(h)
	logger.Info("user exported records", "user", "u-1", slog.Group("export", "count", 42))

	for ev, err := range h.Sink().Replay(context.Background(), time.Time{}, time.Time{}) {
		if err != nil {
			panic(err)
		}
		fmt.Println(ev.Level, ev.Message, ev.Properties["user"], ev.Properties["export"])
	}
	// Output: Information user exported records u-1 map[count:42]
}

// TestKill9 SIGKILLs a child that logs through slog.Logger and the handler
// and checks that every record whose log call returned survived.
func TestKill9(t *testing.T) { adaptertest.Kill(t, childEnv) }

func killChild(dir string) {
	adaptertest.Child(dir, func(sink *audit.Sink) func(string) error {
		h, err := slogaudit.New(sink, nil)
		if err != nil {
			return func(string) error { return err }
		}
		logger := slog.New(h)
		return func(id string) error {
			logger.Info("call", adaptertest.IDProp, id)
			return nil
		}
	})
}
