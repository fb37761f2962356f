package zapaudit_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	zapaudit "github.com/willibrandon/mtlog-audit/adapters/zap"
	"github.com/willibrandon/mtlog-audit/internal/adaptertest"
	"github.com/willibrandon/mtlog/core"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const childEnv = "MTLOG_AUDIT_ZAP_KILL_CHILD"

func TestMain(m *testing.M) { adaptertest.Main(m, childEnv, killChild) }

func newCore(t testing.TB, sink *audit.Sink, enab zapcore.LevelEnabler) zapcore.Core {
	t.Helper()
	c, err := zapaudit.NewCore(sink, enab)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type user struct {
	ID    string
	Roles []string
}

func (u user) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("id", u.ID)
	return enc.AddArray("roles", zapcore.ArrayMarshalerFunc(func(ae zapcore.ArrayEncoder) error {
		for _, r := range u.Roles {
			ae.AppendString(r)
		}
		return nil
	}))
}

type badObject struct{}

func (badObject) MarshalLogObject(zapcore.ObjectEncoder) error { return errors.New("cannot marshal") }

type stringer struct{}

func (stringer) String() string { return "stringer-value" }

// Every zapcore field type becomes a property of the expected Go type.
func TestFieldTypes(t *testing.T) {
	sink := adaptertest.OpenSink(t)
	logger := zap.New(newCore(t, sink, nil)).Named("svc").With(zap.String("app", "billing"))
	ts := time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC)
	boom := errors.New("boom")
	logger.Warn("typed",
		zap.Binary("bin", []byte{0, 1, 2}),
		zap.ByteString("bs", []byte("text")),
		zap.Bool("b", true),
		zap.Complex128("c", complex(1, 2)),
		zap.Duration("d", 1500*time.Millisecond),
		zap.Float64("f", 3.25),
		zap.Float32("f32", 0.5),
		zap.Int64("i", -7),
		zap.Int8("i8", -8),
		zap.Uint64("u", ^uint64(0)),
		zap.Uintptr("up", 0x10),
		zap.String("s", "x"),
		zap.Time("t", ts),
		zap.Stringer("str", stringer{}),
		zap.Object("user", user{ID: "u-1", Roles: []string{"admin", "ops"}}),
		zap.Ints("ints", []int{1, 2}),
		zap.Strings("strs", []string{"a", "b"}),
		zap.Namespace("ns"),
		zap.Int("inner", 1),
		zap.Error(boom),
	)
	evs := adaptertest.Events(t, sink)
	if len(evs) != 1 {
		t.Fatalf("got %d events", len(evs))
	}
	e := evs[0]
	if e.Level != audit.LevelWarning || e.Message != "typed" || e.MessageTemplate != "typed" {
		t.Fatalf("level/message %v %q", e.Level, e.Message)
	}
	if e.Exception == nil || e.Exception.Error() != "boom" {
		t.Fatalf("exception %v", e.Exception)
	}
	p := e.Properties
	want := map[string]any{
		"app":    "billing",
		"Logger": "svc",
		"bin":    []byte{0, 1, 2},
		"bs":     "text",
		"b":      true,
		"d":      1500 * time.Millisecond,
		"f":      3.25,
		"i":      int64(-7),
		"i8":     int64(-8),
		"u":      ^uint64(0),
		"s":      "x",
		"str":    "stringer-value",
		"user":   map[string]any{"id": "u-1", "roles": []any{"admin", "ops"}},
		"ints":   []any{int64(1), int64(2)},
		"strs":   []any{"a", "b"},
	}
	for k, w := range want {
		if !reflect.DeepEqual(p[k], w) {
			t.Errorf("%s = %#v (%T), want %#v (%T)", k, p[k], p[k], w, w)
		}
	}
	if tv, ok := p["t"].(time.Time); !ok || !tv.Equal(ts) {
		t.Errorf("t = %#v", p["t"])
	}
	if f, ok := p["f32"].(float64); !ok || f != 0.5 {
		t.Errorf("f32 = %#v", p["f32"])
	}
	if p["c"] == nil || p["up"] == nil {
		t.Errorf("complex %#v, uintptr %#v: want a value or placeholder, not nothing", p["c"], p["up"])
	}
	ns, ok := p["ns"].(map[string]any)
	if !ok || ns["inner"] != int64(1) || ns["error"] != "boom" {
		t.Errorf("namespace ns = %#v", p["ns"])
	}
}

// Values that cannot be encoded never lose the entry.
func TestUnencodableValue(t *testing.T) {
	sink := adaptertest.OpenSink(t)
	logger := zap.New(newCore(t, sink, nil))
	logger.Info("odd", zap.Any("ch", make(chan int)), zap.Object("bad", badObject{}), zap.Int("ok", 1))
	evs := adaptertest.Events(t, sink)
	if len(evs) != 1 {
		t.Fatalf("got %d events", len(evs))
	}
	p := evs[0].Properties
	if u, ok := p["ch"].(audit.Unsupported); !ok || u.Type != "chan int" {
		t.Errorf("ch = %#v, want an audit.Unsupported placeholder", p["ch"])
	}
	if p["badError"] != "cannot marshal" {
		t.Errorf("badError = %#v (all: %v)", p["badError"], p)
	}
	if p["ok"] != int64(1) {
		t.Errorf("ok = %#v", p["ok"])
	}
}

func TestLevels(t *testing.T) {
	sink := adaptertest.OpenSink(t)
	logger := zap.New(newCore(t, sink, zapcore.DebugLevel))
	logger.Debug("d")
	logger.Info("i")
	logger.Warn("w")
	logger.Error("e")
	logger.DPanic("dp") // development mode is off: logs, does not panic
	want := []audit.Level{audit.LevelDebug, audit.LevelInformation, audit.LevelWarning, audit.LevelError, audit.LevelFatal}
	evs := adaptertest.Events(t, sink)
	if len(evs) != len(want) {
		t.Fatalf("got %d events", len(evs))
	}
	for i, w := range want {
		if evs[i].Level != w {
			t.Errorf("event %d (%s): level %v, want %v", i, evs[i].Message, evs[i].Level, w)
		}
	}
	info := newCore(t, sink, zapcore.InfoLevel)
	if info.Enabled(zapcore.DebugLevel) || !info.Enabled(zapcore.InfoLevel) {
		t.Error("level enabler ignored")
	}
}

func TestNilSink(t *testing.T) {
	if c, err := zapaudit.NewCore(nil, nil); !errors.Is(err, zapaudit.ErrNilSink) || c != nil {
		t.Fatalf("NewCore(nil) = %v, %v", c, err)
	}
}

// After Close, Write returns the error, the failure handler hears of it,
// and Sync keeps reporting it, also through cores derived with With.
func TestClosedSinkAndSync(t *testing.T) {
	var mu sync.Mutex
	var handled []error
	sink := adaptertest.OpenSink(t, audit.WithFailureHandler(func(_ *core.LogEvent, err error) {
		mu.Lock()
		handled = append(handled, err)
		mu.Unlock()
	}))
	c := newCore(t, sink, nil)
	derived := c.With([]zapcore.Field{zap.String("k", "v")})
	if err := c.Write(zapcore.Entry{Message: "before", Time: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	if err := derived.Sync(); err != nil {
		t.Fatalf("Sync before any failure: %v", err)
	}
	sink.Close()
	err := derived.Write(zapcore.Entry{Message: "after", Time: time.Now()}, nil)
	if !errors.Is(err, audit.ErrSinkClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	for i, cc := range []zapcore.Core{c, derived} {
		if err := cc.Sync(); !errors.Is(err, audit.ErrSinkClosed) {
			t.Fatalf("core %d: Sync after a failed Write: %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != 1 || !errors.Is(handled[0], audit.ErrSinkClosed) {
		t.Fatalf("failure handler got %v", handled)
	}
}

func Example() {
	dir, _ := os.MkdirTemp("", "zapaudit-example")
	defer os.RemoveAll(dir)
	sink, err := audit.New(audit.WithWAL(filepath.Join(dir, "wal")))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sink.Close()

	core, err := zapaudit.NewCore(sink, zapcore.InfoLevel)
	if err != nil {
		fmt.Println(err)
		return
	}
	logger := zap.New(core)
	logger.Info("user exported records", zap.String("user", "u-1"), zap.Int("count", 42))

	for ev, err := range sink.Replay(context.Background(), time.Time{}, time.Time{}) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(ev.Level, ev.Message, ev.Properties["user"], ev.Properties["count"])
	}
	// Output: Information user exported records u-1 42
}

// TestKill9 SIGKILLs a child that logs through zap and the core and checks
// that every entry whose log call returned survived.
func TestKill9(t *testing.T) { adaptertest.Kill(t, childEnv) }

func killChild(dir string) {
	adaptertest.Child(dir, func(sink *audit.Sink) func(string) error {
		c, err := zapaudit.NewCore(sink, nil)
		if err != nil {
			return func(string) error { return err }
		}
		// A failed Write is reported to ErrorOutput; make it fatal so a
		// call that returned was durable.
		logger := zap.New(c, zap.ErrorOutput(zapcore.AddSync(exitWriter{})))
		return func(id string) error {
			logger.Info("call", zap.String(adaptertest.IDProp, id))
			return nil
		}
	})
}

type exitWriter struct{}

func (exitWriter) Write(p []byte) (int, error) {
	os.Stderr.Write(p)
	os.Exit(4)
	return len(p), nil
}
