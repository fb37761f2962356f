package lograudit_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	audit "github.com/willibrandon/mtlog-audit"
	lograudit "github.com/willibrandon/mtlog-audit/adapters/logr"
	"github.com/willibrandon/mtlog-audit/internal/adaptertest"
	"github.com/willibrandon/mtlog/core"
)

const childEnv = "MTLOG_AUDIT_LOGR_KILL_CHILD"

func TestMain(m *testing.M) { adaptertest.Main(m, childEnv, killChild) }

func openSink(t testing.TB, opts ...audit.Option) *audit.Sink {
	return adaptertest.OpenSink(t, opts...)
}

func events(t testing.TB, s *audit.Sink) []*audit.Event { return adaptertest.Events(t, s) }

func newLogger(t testing.TB, sink *audit.Sink) logr.Logger {
	t.Helper()
	l, err := lograudit.New(sink)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

type secret string

func (secret) MarshalLog() any { return "***" }

func TestMapping(t *testing.T) {
	sink := openSink(t)
	l := newLogger(t, sink).WithName("api").WithValues("app", "x", "k", "old").WithName("users")
	l.Info("zero", "k", "new", 42, "intkey", "pw", secret("hunter2"), "dangling")
	l.V(1).Info("one")
	l.V(5).Info("five")
	l.Error(errors.New("boom"), "failed", "id", 7)
	evs := events(t, sink)
	if len(evs) != 4 {
		t.Fatalf("got %d events, want 4", len(evs))
	}
	want := []struct {
		lvl   audit.Level
		msg   string
		props string
	}{
		{audit.LevelInformation, "zero", "map[42:intkey Logger:api/users LogrV:0 app:x dangling:(MISSING) k:new pw:***]"},
		{audit.LevelDebug, "one", "map[Logger:api/users LogrV:1 app:x k:old]"},
		{audit.LevelVerbose, "five", "map[Logger:api/users LogrV:5 app:x k:old]"},
		{audit.LevelError, "failed", "map[Logger:api/users app:x id:7 k:old]"},
	}
	for i, w := range want {
		ev := evs[i]
		if ev.Level != w.lvl || ev.Message != w.msg || ev.MessageTemplate != w.msg || fmt.Sprint(ev.Properties) != w.props {
			t.Errorf("event %d: %v %q %v, want %v %q %s", i, ev.Level, ev.Message, ev.Properties, w.lvl, w.msg, w.props)
		}
		if ev.Timestamp.IsZero() {
			t.Errorf("event %d: zero timestamp", i)
		}
	}
	if evs[3].Exception == nil || evs[3].Exception.Error() != "boom" || evs[0].Exception != nil {
		t.Errorf("exceptions: %v, %v", evs[3].Exception, evs[0].Exception)
	}
	for _, v := range []int{0, 1, 10} {
		if !l.V(v).Enabled() {
			t.Errorf("V(%d) not enabled", v)
		}
	}
}

func TestNilSink(t *testing.T) {
	l, err := lograudit.New(nil)
	if !errors.Is(err, lograudit.ErrNilSink) {
		t.Fatalf("New(nil): %v", err)
	}
	l.WithName("n").WithValues("a", 1).Info("must not panic")
	l.Error(errors.New("e"), "must not panic")
}

type panicky struct{}

func (panicky) MarshalLog() any { panic("bad marshaler") }

// Values that cannot be encoded never lose the event.
func TestUnencodableValue(t *testing.T) {
	sink := openSink(t)
	newLogger(t, sink).Info("odd", "ch", make(chan int), "p", panicky{}, "ok", 1)
	evs := events(t, sink)
	if len(evs) != 1 {
		t.Fatalf("got %d events", len(evs))
	}
	p := evs[0].Properties
	if u, ok := p["ch"].(audit.Unsupported); !ok || u.Type != "chan int" {
		t.Errorf("ch = %#v, want an audit.Unsupported placeholder", p["ch"])
	}
	if s, _ := p["p"].(string); !strings.Contains(s, "panic in MarshalLog") {
		t.Errorf("p = %#v", p["p"])
	}
	if p["ok"] != int64(1) {
		t.Errorf("ok = %#v", p["ok"])
	}
}

func TestClosedSink(t *testing.T) {
	var mu sync.Mutex
	var got []error
	sink := openSink(t, audit.WithFailOpen(), audit.WithFailureHandler(func(_ *core.LogEvent, err error) {
		mu.Lock()
		got = append(got, err)
		mu.Unlock()
	}))
	l := newLogger(t, sink)
	l.Info("before")
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	l.Info("after")
	l.Error(errors.New("x"), "after")
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("failure handler got %d errors (%v), want 2", len(got), got)
	}
	for _, err := range got {
		if !errors.Is(err, audit.ErrSinkClosed) {
			t.Fatalf("failure handler got %v, want ErrSinkClosed", err)
		}
	}
}

func Example() {
	dir, _ := os.MkdirTemp("", "lograudit-example")
	defer os.RemoveAll(dir)

	sink, err := audit.New(audit.WithWAL(filepath.Join(dir, "wal")))
	if err != nil {
		panic(err)
	}
	defer sink.Close()
	logger, err := lograudit.New(sink)
	if err != nil {
		panic(err)
	}
	logger = logger.WithName("exporter")
	logger.Info("user exported records", "user", "u-1", "count", 42)

	for ev, err := range sink.Replay(context.Background(), time.Time{}, time.Time{}) {
		if err != nil {
			panic(err)
		}
		fmt.Println(ev.Level, ev.Message, ev.Properties["user"], ev.Properties["count"], ev.Properties["Logger"])
	}
	// Output: Information user exported records u-1 42 exporter
}

// TestKill9 SIGKILLs a child that logs through logr and checks that every
// event whose Info call returned survived.
func TestKill9(t *testing.T) { adaptertest.Kill(t, childEnv) }

func killChild(dir string) {
	adaptertest.Child(dir, func(sink *audit.Sink) func(string) error {
		l, err := lograudit.New(sink)
		return func(id string) error {
			l.Info("call", adaptertest.IDProp, id)
			return err
		}
	})
}
