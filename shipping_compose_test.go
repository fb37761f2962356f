package audit_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/backends"
)

// closeCounter is a backend that counts its Close calls.
type closeCounter struct {
	backends.Backend
	closes *atomic.Int32
}

func (c closeCounter) Close() error { c.closes.Add(1); return c.Backend.Close() }

// Two WithShipping and a WithShippingOpen form one set, in the order
// given, under the largest quorum given: every backend ends up holding
// everything, and the backend the Sink opened is closed with it, once.
func TestShippingComposes(t *testing.T) {
	dir := t.TempDir()
	fbs := shipBackends(t, 4)
	var closes atomic.Int32
	h := newHandlerErrors()
	s := openShipping(t, dir, h,
		audit.WithShipping(1, fbs[0]),
		audit.WithShippingOpen(func(context.Context) (backends.Backend, error) {
			return closeCounter{fbs[1], &closes}, nil
		}),
		audit.WithShipping(2, fbs[2], fbs[3]),
	)
	writeEvents(t, s, 200)
	if err := s.WaitShipped(context.Background()); err != nil {
		t.Fatal(err)
	}
	health, _ := s.ShippingHealth()
	if health.Quorum != 2 || len(health.Backends) != 4 {
		t.Fatalf("quorum %d of %d backends, want 2 of 4", health.Quorum, len(health.Backends))
	}
	for i, want := range []string{fbs[0].Name(), fbs[1].Name(), fbs[2].Name(), fbs[3].Name()} {
		if health.Backends[i].Name != want {
			t.Errorf("backend %d is %s, want %s", i, health.Backends[i].Name, want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if n := closes.Load(); n != 1 {
		t.Fatalf("the opened backend was closed %d times, want once", n)
	}
}

// WithShippingQuorum overrides the largest quorum given, within the set.
func TestShippingQuorumOption(t *testing.T) {
	fbs := shipBackends(t, 3)
	s := openShipping(t, t.TempDir(), newHandlerErrors(),
		audit.WithShipping(1, fbs[0]), audit.WithShipping(1, fbs[1], fbs[2]), audit.WithShippingQuorum(3))
	writeEvents(t, s, 100)
	if err := s.WaitShipped(context.Background()); err != nil {
		t.Fatal(err)
	}
	health, _ := s.ShippingHealth()
	s.Close()
	if health.Quorum != 3 {
		t.Fatalf("quorum %d, want 3", health.Quorum)
	}
	for _, b := range health.Backends {
		if b.Held.Segment == 0 {
			t.Errorf("%s holds nothing after WaitShipped with quorum 3", b.Name)
		}
	}
}

// An opener's error fails New, matching ErrShipping and the opener's
// error; a New that fails after the openers ran closes what they opened;
// an opener is not called when the options are invalid.
func TestShippingOpenFails(t *testing.T) {
	fbs := shipBackends(t, 1)
	bad := errors.New("no such bucket")
	_, err := audit.New(audit.WithWAL(t.TempDir()),
		audit.WithShippingOpen(func(context.Context) (backends.Backend, error) { return nil, bad }))
	if !errors.Is(err, audit.ErrShipping) || !errors.Is(err, bad) {
		t.Fatalf("New = %v, want ErrShipping and the opener's error", err)
	}
	_, err = audit.New(audit.WithWAL(t.TempDir()),
		audit.WithShippingOpen(func(context.Context) (backends.Backend, error) { return nil, nil }))
	if !errors.Is(err, audit.ErrShipping) {
		t.Fatalf("an opener returning nothing: New = %v, want ErrShipping", err)
	}
	if _, err := audit.New(audit.WithWAL(t.TempDir()), audit.WithShippingOpen(nil)); !errors.Is(err, audit.ErrInvalidOption) {
		t.Fatalf("WithShippingOpen(nil): New = %v, want ErrInvalidOption", err)
	}

	var closes, calls atomic.Int32
	open := audit.WithShippingOpen(func(context.Context) (backends.Backend, error) {
		calls.Add(1)
		return closeCounter{fbs[0], &closes}, nil
	})
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.New(audit.WithWAL(notDir), open); err == nil {
		t.Fatal("New on a file as the log's directory succeeded")
	}
	if calls.Load() != 1 || closes.Load() != 1 {
		t.Fatalf("New failed after opening: opened %d, closed %d; want 1 and 1", calls.Load(), closes.Load())
	}
	if _, err := audit.New(audit.WithWAL(t.TempDir()), open, audit.WithShippingAlarm(-time.Second)); !errors.Is(err, audit.ErrInvalidOption) {
		t.Fatalf("New = %v, want ErrInvalidOption", err)
	}
	if calls.Load() != 1 {
		t.Fatal("the opener was called although the options were invalid")
	}
}
