package audit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog/core"
)

// watchdog fails the test if done is not closed soon: it catches a call
// that blocks forever, and is no timing assertion (a minute is ample).
func watchdog(t *testing.T, what string, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("%s did not return", what)
	}
}

// A 16 MiB event can never be written under the default limit: fail-closed
// Emit must tell the handler once and return, not retry until Close.
func TestOversizedEventIsNotRetried(t *testing.T) {
	var calls atomic.Int64
	var last atomic.Value
	s, _ := newSink(t, audit.WithFailureHandler(func(_ *core.LogEvent, err error) {
		calls.Add(1)
		last.Store(err)
	}))
	big := strings.Repeat("x", 16<<20)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Emit(&core.LogEvent{Timestamp: time.Now(), MessageTemplate: "big {Blob}", Properties: map[string]any{"Blob": big}})
	}()
	watchdog(t, "fail-closed Emit of a 16 MiB event", done)
	if n := calls.Load(); n != 1 {
		t.Fatalf("failure handler called %d times, want 1", n)
	}
	err, _ := last.Load().(error)
	if !errors.Is(err, audit.ErrEventTooLarge) || !errors.Is(err, audit.ErrUnwritable) {
		t.Fatalf("handler got %v, want ErrEventTooLarge", err)
	}
	for _, want := range []string{"WithMaxEventSize", fmt.Sprint(16 << 20)} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not name %q", err, want)
		}
	}
	if err := s.EmitEvent(context.Background(), &audit.Event{MessageTemplate: big}); !errors.Is(err, audit.ErrEventTooLarge) {
		t.Fatalf("fail-closed EmitEvent: %v", err)
	}
	if n := s.LastSeq(); n != 0 {
		t.Fatalf("the log holds %d records, want none", n)
	}
}

// WithMaxEventSize moves the limit both ways, and the check happens before
// the event enters a batch (nothing is written).
func TestMaxEventSize(t *testing.T) {
	s, _ := newSink(t, audit.WithMaxEventSize(1024))
	_, err := s.Write(context.Background(), &audit.Event{MessageTemplate: strings.Repeat("y", 2048)})
	if !errors.Is(err, audit.ErrEventTooLarge) || !strings.Contains(err.Error(), "limit of 1024") {
		t.Fatalf("2 KiB event under a 1 KiB limit: %v", err)
	}
	if _, err := s.Write(context.Background(), &audit.Event{MessageTemplate: "small"}); err != nil {
		t.Fatal(err)
	}
	if evs := all(t, s); len(evs) != 1 || evs[0].MessageTemplate != "small" {
		t.Fatalf("events: %+v", evs)
	}

	s2, _ := newSink(t, audit.WithMaxEventSize(20<<20))
	if _, err := s2.Write(context.Background(), &audit.Event{MessageTemplate: strings.Repeat("z", 17<<20)}); err != nil {
		t.Fatalf("17 MiB event under a 20 MiB limit: %v", err)
	}
}

// Each failure policy with a permanent error: fail-open returns after the
// handler, panic panics; neither retries.
func TestPermanentErrorPolicies(t *testing.T) {
	big := &core.LogEvent{MessageTemplate: strings.Repeat("x", 2048), Properties: map[string]any{}}
	var calls atomic.Int64
	count := audit.WithFailureHandler(func(_ *core.LogEvent, err error) {
		if !errors.Is(err, audit.ErrEventTooLarge) {
			t.Errorf("handler got %v", err)
		}
		calls.Add(1)
	})
	open, _ := newSink(t, audit.WithFailOpen(), audit.WithMaxEventSize(1024), count)
	open.Emit(big)
	if err := open.EmitEvent(context.Background(), &audit.Event{MessageTemplate: big.MessageTemplate}); !errors.Is(err, audit.ErrEventTooLarge) {
		t.Fatalf("fail-open EmitEvent: %v", err)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("handler called %d times for two events, want 2", n)
	}

	p, _ := newSink(t, audit.WithPanicOnFailure(), audit.WithMaxEventSize(1024), count)
	func() {
		defer func() {
			if err, _ := recover().(error); !errors.Is(err, audit.ErrEventTooLarge) {
				t.Fatalf("panic value %v, want ErrEventTooLarge", err)
			}
		}()
		p.Emit(big)
	}()
	if n := calls.Load(); n != 3 {
		t.Fatalf("handler called %d times, want 3", n)
	}
}
