package audit_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog/core"
)

// TestRemovedDirectoryAcknowledgesNothing: writers keep writing while the
// log directory is removed (os.RemoveAll), or renamed away and replaced by
// an empty directory. Every Write that starts after that returned fails
// with ErrFailed: an acknowledged event could no longer be found in the
// directory. The sink was acknowledging under the same load just before,
// every writer starts writes after the removal, and Close reports the
// failure.
func TestRemovedDirectoryAcknowledgesNothing(t *testing.T) {
	cases := map[string]func(dir string) error{
		"removed": os.RemoveAll,
		"renamed and replaced": func(dir string) error {
			if err := os.Rename(dir, dir+".moved"); err != nil {
				return err
			}
			return os.Mkdir(dir, 0o750)
		},
	}
	for name, gone := range cases {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "audit")
			s, err := audit.New(audit.WithWAL(dir), audit.WithFailureHandler(func(*core.LogEvent, error) {}))
			if err != nil {
				t.Fatal(err)
			}
			const (
				writers   = 8
				warmUp    = 200 // acknowledged writes before the directory goes
				afterEach = 25  // writes each writer starts after it went
			)
			var (
				removed      atomic.Bool
				ackedBefore  atomic.Int64
				startedAfter atomic.Int64
				ackedAfter   atomic.Int64
				wrongErr     atomic.Value
				ready        = make(chan struct{})
				readyOnce    sync.Once
				wg           sync.WaitGroup
			)
			for g := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i, after := 0, 0; after < afterEach; i++ {
						late := removed.Load()
						ev := &audit.Event{Timestamp: time.Now(), MessageTemplate: "w{G} {I}", Properties: map[string]any{"G": g, "I": i}}
						_, err := s.Write(context.Background(), ev)
						switch {
						case !late && err == nil:
							if ackedBefore.Add(1) >= warmUp {
								readyOnce.Do(func() { close(ready) })
							}
						case !late && ackedBefore.Load() < warmUp:
							// The log failed before the directory went:
							// stop, and let the test report it.
							wrongErr.CompareAndSwap(nil, fmt.Errorf("before the directory went: %w", err))
							readyOnce.Do(func() { close(ready) })
							return
						case late:
							after++
							startedAfter.Add(1)
							if err == nil {
								ackedAfter.Add(1)
							} else if !errors.Is(err, audit.ErrFailed) {
								wrongErr.CompareAndSwap(nil, err)
							}
						}
					}
				}()
			}
			<-ready
			if err, _ := wrongErr.Load().(error); err != nil {
				removed.Store(true)
				wg.Wait()
				s.Close()
				t.Fatalf("a write failed %v", err)
			}
			if err := gone(dir); err != nil {
				t.Fatal(err)
			}
			removed.Store(true)
			wg.Wait()
			closeErr := s.Close()

			if n := startedAfter.Load(); n != writers*afterEach {
				t.Fatalf("%d writes started after the directory went, want %d", n, writers*afterEach)
			}
			if n := ackedAfter.Load(); n != 0 {
				t.Fatalf("%d of %d writes that started after the directory was %s were acknowledged", n, writers*afterEach, name)
			}
			if err, _ := wrongErr.Load().(error); err != nil {
				t.Fatalf("a write after the directory went failed with %v, want ErrFailed", err)
			}
			if !errors.Is(closeErr, audit.ErrFailed) || !errors.Is(closeErr, vfs.ErrUnlinked) {
				t.Fatalf("Close = %v, want ErrFailed caused by vfs.ErrUnlinked", closeErr)
			}
		})
	}
}

// TestCloseReportsFailedLog: after an fdatasync EIO put the log into its
// failed state, Close returns an error matching ErrFailed that carries the
// cause, and a second Close returns the same.
func TestCloseReportsFailedLog(t *testing.T) {
	s, ffs := failingSink(t, audit.WithFailureHandler(func(*core.LogEvent, error) {}))
	ev := func() *audit.Event {
		return &audit.Event{Timestamp: time.Now(), MessageTemplate: "x", Properties: map[string]any{}}
	}
	if _, err := s.Write(context.Background(), ev()); err != nil {
		t.Fatal(err)
	}
	ffs.FailSyncs(syscall.EIO)
	if _, err := s.Write(context.Background(), ev()); !errors.Is(err, audit.ErrFailed) {
		t.Fatalf("Write with failing fdatasync: %v, want ErrFailed", err)
	}
	ffs.FailSyncs(nil)
	first := s.Close()
	if !errors.Is(first, audit.ErrFailed) || !errors.Is(first, syscall.EIO) {
		t.Fatalf("Close = %v, want ErrFailed carrying EIO", first)
	}
	if err := s.Close(); fmt.Sprint(err) != fmt.Sprint(first) || !errors.Is(err, audit.ErrFailed) {
		t.Fatalf("second Close = %v, want the first one's %v", err, first)
	}
}
