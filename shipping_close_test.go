package audit_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/backends/fs"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/faultbackend"
	"github.com/willibrandon/mtlog-audit/internal/shipcheck"
	"github.com/willibrandon/mtlog-audit/replica"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// Close ships what is left: the segment its seal closes and the final
// checkpoint reach every backend, a plain filesystem backend and one behind
// the fault wrapper, before Close returns, and the cursor says so. (Before,
// both stayed local until the next New.)
func TestShippingCloseShipsWhatIsLeft(t *testing.T) {
	dir := t.TempDir()
	fbs := shipBackends(t, 1)
	plain, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := newHandlerErrors()
	s := openShipping(t, dir, h, audit.WithShipping(2, plain, fbs[0]))
	writeEvents(t, s, 100)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	notes, err := integrity.ReadCheckpointLog(vfs.OS(), filepath.Join(dir, integrity.CheckpointsFile))
	if err != nil || len(notes) == 0 {
		t.Fatalf("the closed log has no checkpoints: %v", err)
	}
	cur, err := replica.ReadCursor(vfs.OS(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []backends.Backend{plain, fbs[0].Inner()} {
		held, err := shipcheck.Check(context.Background(), vfs.OS(), dir, b)
		if err != nil {
			t.Fatal(err)
		}
		if !held.Complete {
			t.Errorf("after Close, %s lacks %v; want the final seal and checkpoint shipped", b.Name(), held.Missing)
		}
		if got := cur.Backends[b.Name()].Checkpoints; got != uint64(len(notes)) {
			t.Errorf("the cursor says %s holds %d checkpoints, want all %d", b.Name(), got, len(notes))
		}
	}
}

// With its backend cut or hanging, Close waits at most the close timeout,
// returns no error for it (the local log is whole), tells the failure
// handler and the health what was not shipped, and the next New ships it.
func TestShippingCloseBoundedOnDeadBackend(t *testing.T) {
	for _, c := range []struct {
		name string
		net  faultbackend.Net
	}{{"cut", faultbackend.NetCut}, {"blackhole", faultbackend.NetBlackhole}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			fbs := shipBackends(t, 1)
			h := newHandlerErrors()
			s := openShipping(t, dir, h, audit.WithShipping(1, asBackends(fbs)...), audit.WithShippingCloseTimeout(50*time.Millisecond))
			writeEvents(t, s, 100)
			if err := s.WaitShipped(context.Background()); err != nil {
				t.Fatal(err)
			}
			fbs[0].SetNet(c.net, 0)
			done := make(chan error, 1)
			go func() { done <- s.Close() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Close: %v; want nil: a shipping shortfall is not a local failure", err)
				}
			case <-time.After(2 * time.Minute): // a hang detector, not a timing assertion
				t.Fatal("Close did not return with its backend down")
			}
			err := h.waitErr(t, replica.ErrUnshipped)
			var se *replica.ShipError
			if !errors.As(err, &se) || se.Backend != fbs[0].Name() || !errors.Is(err, audit.ErrShipping) {
				t.Fatalf("handler got %v, want a *replica.ShipError naming %s, matching ErrShipping", err, fbs[0].Name())
			}
			if health, ok := s.ShippingHealth(); !ok || !errors.Is(health.Backends[0].Err, replica.ErrUnshipped) {
				t.Fatalf("health after Close = %+v, want the backend's shortfall", health)
			}
			if held := checkBackend(t, dir, fbs[0]); held.Complete {
				t.Fatalf("%s is complete with its network %s", fbs[0].Name(), c.name)
			}
			fbs[0].SetNet(faultbackend.NetOK, 0)
			s = openShipping(t, dir, h, audit.WithShipping(1, asBackends(fbs)...))
			if err := s.WaitShipped(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if held := checkBackend(t, dir, fbs[0]); !held.Complete {
				t.Fatalf("after the next New and Close, %s lacks %v", fbs[0].Name(), held.Missing)
			}
		})
	}
}
