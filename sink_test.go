package audit_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/willibrandon/mtlog"
	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
	"github.com/willibrandon/mtlog/core"
	"github.com/willibrandon/mtlog/sinks"
)

func newSink(t *testing.T, opts ...audit.Option) (*audit.Sink, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "audit")
	s, err := audit.New(append([]audit.Option{audit.WithWAL(dir)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func all(t *testing.T, s *audit.Sink) []*audit.Event {
	t.Helper()
	var out []*audit.Event
	for ev, err := range s.Replay(context.Background(), time.Time{}, time.Time{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func TestMtlogLoggerWritesDurableEvents(t *testing.T) {
	s, dir := newSink(t)
	logger := mtlog.New(mtlog.WithSink(s))
	logger.Information("User {UserId} logged in from {City}", "u-1", "Oslo")
	logger.Error("Payment {PaymentId} failed: {Err}", 42, errors.New("card declined"))
	logger.Information("plain message") // mtlog's EmitSimple fast path
	evs := all(t, s)
	if len(evs) != 3 {
		t.Fatalf("got %d events, want 3", len(evs))
	}
	if evs[0].Message != "User u-1 logged in from Oslo" || evs[0].Properties["UserId"] != "u-1" || evs[0].Level != audit.LevelInformation {
		t.Fatalf("event 0: %+v", evs[0])
	}
	if ev, ok := evs[1].Properties["Err"].(*event.ErrorValue); !ok || ev.Message != "card declined" {
		t.Fatalf("error property stored as %#v, want its message", evs[1].Properties["Err"])
	}
	if evs[1].Properties["PaymentId"] != int64(42) || evs[1].Level != audit.LevelError {
		t.Fatalf("event 1: %+v", evs[1])
	}
	if evs[2].Message != "plain message" {
		t.Fatalf("event 2: %+v", evs[2])
	}
	s.Close()
	rep, err := audit.Verify(context.Background(), dir)
	if err != nil || !rep.OK || rep.Events != 3 {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}

func TestEmitDoesNotMutateEvent(t *testing.T) {
	s, _ := newSink(t)
	props := map[string]any{"A": 1, "B": map[string]any{"C": []any{1, "x"}}}
	ev := &core.LogEvent{Timestamp: time.Now(), Level: core.WarningLevel, MessageTemplate: "A={A}", Properties: props}
	before := fmt.Sprintf("%#v", *ev)
	s.Emit(ev)
	if after := fmt.Sprintf("%#v", *ev); after != before || !reflect.DeepEqual(ev.Properties, map[string]any{"A": 1, "B": map[string]any{"C": []any{1, "x"}}}) {
		t.Fatalf("Emit changed the event:\n%s\n%s", before, after)
	}
}

func TestRouterSinkAuditRoute(t *testing.T) {
	s, _ := newSink(t)
	other := sinks.NewMemorySink()
	router := sinks.NewRouterSink(sinks.AllMatch, sinks.AuditRoute("audit", s), sinks.NewRoute("all").When(func(*core.LogEvent) bool { return true }).To(other))
	logger := mtlog.New(mtlog.WithSink(router))
	logger.Information("ordinary {X}", 1)
	logger.ForContext("Audit", true).Information("audited {X}", 2)
	evs := all(t, s)
	if len(evs) != 1 || evs[0].Properties["X"] != int64(2) || evs[0].Properties["Audit"] != true {
		t.Fatalf("audit sink got %d events: %+v", len(evs), evs)
	}
	if n := len(other.Events()); n != 2 {
		t.Fatalf("other sink got %d events, want 2", n)
	}
}

func TestNilEventAndNilProperties(t *testing.T) {
	var got []error
	s, _ := newSink(t, audit.WithFailureHandler(func(_ *core.LogEvent, err error) { got = append(got, err) }))
	s.Emit(nil)
	s.Emit(&core.LogEvent{MessageTemplate: "no props {X}"})
	if _, err := s.Write(context.Background(), nil); !errors.Is(err, audit.ErrNilEvent) {
		t.Fatalf("Write(nil): %v", err)
	}
	if len(got) != 1 || !errors.Is(got[0], audit.ErrNilEvent) {
		t.Fatalf("failure handler got %v", got)
	}
	if evs := all(t, s); len(evs) != 1 || evs[0].MessageTemplate != "no props {X}" {
		t.Fatalf("events: %+v", evs)
	}
}

func TestCloseWhileEmitting(t *testing.T) {
	var closedReports atomic.Int64
	s, _ := newSink(t, audit.WithFailureHandler(func(_ *core.LogEvent, err error) {
		if !errors.Is(err, audit.ErrSinkClosed) {
			t.Errorf("unexpected failure: %v", err)
		}
		closedReports.Add(1)
	}))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				s.Emit(&core.LogEvent{Timestamp: time.Now(), MessageTemplate: "x", Properties: map[string]any{}})
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()
	if closedReports.Load() == 0 {
		t.Fatal("Emit after Close did not report ErrSinkClosed")
	}
	if _, err := s.Write(context.Background(), &audit.Event{}); !errors.Is(err, audit.ErrSinkClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
}

// failingSink opens a sink on a fault-injecting filesystem.
func failingSink(t *testing.T, opts ...audit.Option) (*audit.Sink, *vfs.FaultFS) {
	ffs := vfs.NewFaultFS(vfs.NewCrashFS())
	s, err := audit.New(append([]audit.Option{audit.WithWAL("/audit"), audit.WithFileSystem(ffs)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s, ffs
}

func TestFailClosedBlocksUntilDurable(t *testing.T) {
	var failures atomic.Int64
	s, ffs := failingSink(t, audit.WithFailureHandler(func(*core.LogEvent, error) { failures.Add(1) }))
	defer s.Close()
	ffs.SetWriteBudget(0) // disk full
	done := make(chan struct{})
	go func() {
		s.Emit(&core.LogEvent{Timestamp: time.Now(), MessageTemplate: "blocked", Properties: map[string]any{}})
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("Emit returned while the event could not be made durable")
	case <-time.After(200 * time.Millisecond):
	}
	if failures.Load() != 1 {
		t.Fatalf("failure handler called %d times, want 1", failures.Load())
	}
	ffs.SetWriteBudget(-1) // space freed
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Emit did not resume after space was freed")
	}
	if evs := all(t, s); len(evs) != 1 || evs[0].MessageTemplate != "blocked" {
		t.Fatalf("events after resume: %+v", evs)
	}
}

func TestFailClosedUnblocksOnClose(t *testing.T) {
	s, ffs := failingSink(t, audit.WithFailureHandler(func(*core.LogEvent, error) {}))
	ffs.FailSyncs(syscall.EIO)
	done := make(chan struct{})
	go func() {
		s.Emit(&core.LogEvent{Timestamp: time.Now(), MessageTemplate: "x", Properties: map[string]any{}})
		close(done)
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("Emit returned after an fsync failure in fail-closed mode")
	default:
	}
	s.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release a blocked Emit")
	}
}

func TestPanicAndFailOpenPolicies(t *testing.T) {
	s, ffs := failingSink(t, audit.WithPanicOnFailure(), audit.WithFailureHandler(func(*core.LogEvent, error) {}))
	defer s.Close()
	ffs.FailSyncs(syscall.EIO)
	func() {
		defer func() {
			r := recover()
			err, ok := r.(error)
			if !ok || !errors.Is(err, audit.ErrFailed) || !errors.Is(err, syscall.EIO) {
				t.Fatalf("panic value %v, want an error matching ErrFailed and EIO", r)
			}
		}()
		s.Emit(&core.LogEvent{Timestamp: time.Now(), MessageTemplate: "x", Properties: map[string]any{}})
	}()

	var got error
	s2, ffs2 := failingSink(t, audit.WithFailOpen(), audit.WithFailureHandler(func(_ *core.LogEvent, err error) { got = err }))
	defer s2.Close()
	ffs2.FailSyncs(syscall.EIO)
	s2.Emit(&core.LogEvent{Timestamp: time.Now(), MessageTemplate: "x", Properties: map[string]any{}})
	if !errors.Is(got, audit.ErrFailed) {
		t.Fatalf("fail-open handler got %v", got)
	}
}

func TestReplayTimeRange(t *testing.T) {
	s, _ := newSink(t, audit.WithWAL(filepath.Join(t.TempDir(), "r"), audit.WithSegmentSize(4096)))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 100; i++ {
		// out of order on purpose: time-range replay must not assume order
		ts := base.Add(time.Duration((i*37)%100) * time.Minute)
		if _, err := s.Write(context.Background(), &audit.Event{Timestamp: ts, MessageTemplate: "e", Properties: map[string]any{"I": i}}); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for ev, err := range s.Replay(context.Background(), base.Add(10*time.Minute), base.Add(20*time.Minute)) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Timestamp.Before(base.Add(10*time.Minute)) || !ev.Timestamp.Before(base.Add(20*time.Minute)) {
			t.Fatalf("event at %v outside the range", ev.Timestamp)
		}
		n++
	}
	if n != 10 {
		t.Fatalf("got %d events in a 10-minute window, want 10", n)
	}
}

func TestBadInput(t *testing.T) {
	if _, err := audit.New(); err == nil || !strings.Contains(err.Error(), "WithWAL") {
		t.Fatalf("New without WAL: %v", err)
	}
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, []byte("x"), 0o600)
	if _, err := audit.New(audit.WithWAL(file)); !errors.Is(err, wal.ErrNotWAL) || !strings.Contains(err.Error(), "regular file") {
		t.Fatalf("file path: %v", err)
	}
	// Unwritable paths, even for root: under a regular file, and on a
	// read-only filesystem.
	for _, p := range []string{filepath.Join(file, "sub"), "/proc/mtlog-audit-test/wal"} {
		if _, err := audit.New(audit.WithWAL(p)); err == nil || !strings.Contains(err.Error(), p) {
			t.Fatalf("unwritable path %s: %v", p, err)
		}
	}
	s, dir := newSink(t)
	_, err := audit.New(audit.WithWAL(dir))
	if !errors.Is(err, vfs.ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second Sink on the same directory: %v", err)
	}
	s.Close()
	if _, err := audit.New(audit.WithWAL(dir), audit.WithGroupCommit(-1, 0)); err == nil {
		t.Fatal("negative group commit accepted")
	}
}

func TestConcurrentWritersAllDurable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	s, _ := newSink(t, audit.WithWAL(dir, audit.WithSegmentSize(32<<10)))
	var wg sync.WaitGroup
	seqs := make(chan uint64, 64*50)
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				r, err := s.Write(context.Background(), &audit.Event{Timestamp: time.Now(), MessageTemplate: "g{G} i{I}", Properties: map[string]any{"G": g, "I": i}})
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- r.Seq
			}
		}(g)
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for q := range seqs {
		if seen[q] {
			t.Fatalf("sequence %d acknowledged twice", q)
		}
		seen[q] = true
	}
	s.Close()
	rep, err := audit.Verify(context.Background(), dir)
	if err != nil || rep.Events != 64*50 {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}

func TestEmitEventFollowsFailurePolicy(t *testing.T) {
	var got []error
	s, _ := newSink(t, audit.WithFailOpen(), audit.WithFailureHandler(func(_ *core.LogEvent, err error) { got = append(got, err) }))
	if err := s.EmitEvent(context.Background(), &audit.Event{Timestamp: time.Now(), MessageTemplate: "kept"}); err != nil {
		t.Fatal(err)
	}
	if err := s.EmitEvent(context.Background(), nil); !errors.Is(err, audit.ErrNilEvent) {
		t.Fatalf("nil event: %v", err)
	}
	if evs := all(t, s); len(evs) != 1 || evs[0].MessageTemplate != "kept" {
		t.Fatalf("events: %+v", evs)
	}
	s.Close()
	if err := s.EmitEvent(context.Background(), &audit.Event{MessageTemplate: "late"}); !errors.Is(err, audit.ErrSinkClosed) {
		t.Fatalf("closed sink: %v", err)
	}
	if len(got) != 2 || !errors.Is(got[0], audit.ErrNilEvent) || !errors.Is(got[1], audit.ErrSinkClosed) {
		t.Fatalf("failure handler got %v", got)
	}
}

// Under fail-closed, EmitEvent returns nil only when durable; while the disk
// is full it blocks, and returns an error when its context ends or the sink
// closes, never nil for an unrecorded event.
func TestEmitEventFailClosed(t *testing.T) {
	s, ffs := failingSink(t, audit.WithFailureHandler(func(*core.LogEvent, error) {}))
	defer s.Close()
	ffs.SetWriteBudget(0)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	err := s.EmitEvent(ctx, &audit.Event{Timestamp: time.Now(), MessageTemplate: "full"})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("EmitEvent on a full disk after the deadline: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		done <- s.EmitEvent(context.Background(), &audit.Event{Timestamp: time.Now(), MessageTemplate: "waits"})
	}()
	time.Sleep(100 * time.Millisecond)
	ffs.SetWriteBudget(-1)
	if err := <-done; err != nil {
		t.Fatalf("EmitEvent after space was freed: %v", err)
	}
	ffs.FailSyncs(syscall.EIO)
	go func() {
		done <- s.EmitEvent(context.Background(), &audit.Event{Timestamp: time.Now(), MessageTemplate: "lost"})
	}()
	time.Sleep(100 * time.Millisecond)
	s.Close()
	if err := <-done; !errors.Is(err, audit.ErrSinkClosed) {
		t.Fatalf("EmitEvent released by Close: %v", err)
	}
	evs := all(t, s)
	if len(evs) != 1 || evs[0].MessageTemplate != "waits" {
		t.Fatalf("events: %+v", evs)
	}
}

// TestPrealloc checks that zeros are filled ahead of the records by default
// and not at all with WithPrealloc(PreallocOff).
func TestPrealloc(t *testing.T) {
	segSize := func(t *testing.T, dir string) int64 {
		t.Helper()
		segs, err := filepath.Glob(filepath.Join(dir, "*.wal"))
		if err != nil || len(segs) != 1 {
			t.Fatalf("segments %v, %v", segs, err)
		}
		fi, err := os.Stat(segs[0])
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	write := func(t *testing.T, s *audit.Sink) {
		t.Helper()
		for i := 0; i < 10; i++ {
			if _, err := s.Write(context.Background(), &audit.Event{Timestamp: time.Now(), MessageTemplate: "e{I}", Properties: map[string]any{"I": i}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("default", func(t *testing.T) {
		s, dir := newSink(t)
		write(t, s)
		deadline := time.Now().Add(10 * time.Second)
		for segSize(t, dir) < 512<<10 {
			if time.Now().After(deadline) {
				t.Fatalf("segment is %d bytes: no zeros were filled ahead", segSize(t, dir))
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	// PreallocOff, and the deprecated negative sizes, turn it off.
	for _, bytes := range []int64{audit.PreallocOff, -1} {
		t.Run(fmt.Sprintf("off/%d", bytes), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "audit")
			s, _ := newSink(t, audit.WithWAL(dir, audit.WithPrealloc(bytes)))
			write(t, s)
			time.Sleep(200 * time.Millisecond) // time enough for a fill to show, were one started
			if n := segSize(t, dir); n >= 64<<10 {
				t.Fatalf("segment is %d bytes with WithPrealloc(%d): zeros were filled ahead", n, bytes)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if rep, err := audit.Verify(context.Background(), dir); err != nil || rep.Events != 10 {
				t.Fatalf("verify: %v %+v", err, rep)
			}
		})
	}
}
