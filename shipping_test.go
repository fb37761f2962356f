package audit_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/backends/fs"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/faultbackend"
	"github.com/willibrandon/mtlog-audit/internal/shipcheck"
	"github.com/willibrandon/mtlog-audit/internal/testutil"
	"github.com/willibrandon/mtlog-audit/replica"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog/core"
)

// shipBackends makes n filesystem backends under t's temporary directory,
// each behind a fault wrapper.
func shipBackends(t *testing.T, n int) []*faultbackend.Backend {
	t.Helper()
	var out []*faultbackend.Backend
	for i := range n {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("remote%d", i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		b, err := fs.New(dir)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, faultbackend.New(b))
	}
	return out
}

func asBackends(fbs []*faultbackend.Backend) []backends.Backend {
	var out []backends.Backend
	for _, b := range fbs {
		out = append(out, b)
	}
	return out
}

// handlerErrors collects the errors the failure handler gets for no event.
type handlerErrors struct {
	mu   sync.Mutex
	errs []error
	ch   chan error
}

func newHandlerErrors() *handlerErrors { return &handlerErrors{ch: make(chan error, 1024)} }

func (h *handlerErrors) handle(ev *core.LogEvent, err error) {
	if ev != nil {
		return
	}
	h.mu.Lock()
	h.errs = append(h.errs, err)
	h.mu.Unlock()
	select {
	case h.ch <- err:
	default:
	}
}

// waitErr waits for a handler error that matches target.
func (h *handlerErrors) waitErr(t *testing.T, target error) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		select {
		case err := <-h.ch:
			if errors.Is(err, target) {
				return err
			}
		case <-ctx.Done():
			t.Fatalf("the failure handler was not told of %v", target)
		}
	}
}

// shipKeys holds the signing key of each test log, by directory.
var shipKeys sync.Map

func openShipping(t *testing.T, dir string, h *handlerErrors, opts ...audit.Option) *audit.Sink {
	t.Helper()
	skey, _, err := integrity.GenerateKey("ship.example/log")
	if err != nil {
		t.Fatal(err)
	}
	k, _ := shipKeys.LoadOrStore(dir, skey)
	skey = k.(string)
	base := []audit.Option{
		audit.WithWAL(dir, audit.WithSegmentSize(8<<10)),
		audit.WithSigningKey(skey),
		audit.WithCheckpoints(16, 10*time.Millisecond, time.Minute),
		audit.WithShippingRetry(time.Millisecond, 20*time.Millisecond),
		audit.WithFailureHandler(h.handle),
	}
	s, err := audit.New(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeEvents(t *testing.T, s *audit.Sink, n int) {
	t.Helper()
	for i := range n {
		if _, err := s.Write(context.Background(), &audit.Event{MessageTemplate: "event {N}", Properties: map[string]any{"N": i, "Pad": strings.Repeat("p", 200)}}); err != nil {
			t.Fatal(err)
		}
	}
}

func checkBackend(t *testing.T, dir string, b *faultbackend.Backend) shipcheck.Held {
	t.Helper()
	held, err := shipcheck.Check(context.Background(), vfs.OS(), dir, b.Inner())
	if err != nil {
		t.Fatal(err)
	}
	return held
}

// Sealed segments and signed checkpoints reach every backend as objects of
// the layout, and the cursor says so.
func TestShippingQuorumAndLayout(t *testing.T) {
	dir := t.TempDir()
	fbs := shipBackends(t, 3)
	h := newHandlerErrors()
	s := openShipping(t, dir, h, audit.WithShipping(2, asBackends(fbs)...))
	writeEvents(t, s, 200)
	if err := s.WaitShipped(context.Background()); err != nil {
		t.Fatal(err)
	}
	health, ok := s.ShippingHealth()
	if !ok || health.Quorum != 2 || len(health.Backends) != 3 {
		t.Fatalf("health = %+v, %v", health, ok)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Close shipped to every backend what it lacked; the next New ships
	// what it writes, and its Close the rest.
	s = openShipping(t, dir, h, audit.WithShipping(3, asBackends(fbs)...))
	if err := s.WaitShipped(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, b := range fbs {
		held := checkBackend(t, dir, b)
		if !held.Complete || held.Segments < 3 || held.Checkpoints == 0 {
			t.Errorf("%s holds %+v, want every segment and checkpoint", b.Name(), held)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, replica.CursorFile)); err != nil {
		t.Errorf("no cursor: %v", err)
	}
}

// A backend that acknowledges without storing, or gives back other bytes
// than it took, is never counted, and the cursor never claims it holds
// anything; the honest ones go on.
func TestShippingByzantineNotCounted(t *testing.T) {
	for _, lie := range []faultbackend.Lie{faultbackend.LieAckWithoutStoring, faultbackend.LieStaleRead, faultbackend.LieTruncatedRead, faultbackend.LieBitFlipRead} {
		t.Run(fmt.Sprint(lie), func(t *testing.T) {
			dir := t.TempDir()
			fbs := shipBackends(t, 3)
			fbs[2].SetLies(lie | faultbackend.LiePhantomList)
			h := newHandlerErrors()
			s := openShipping(t, dir, h, audit.WithShipping(2, asBackends(fbs)...))
			defer s.Close()
			writeEvents(t, s, 100)
			err := h.waitErr(t, replica.ErrReadBack)
			var se *replica.ShipError
			if !errors.As(err, &se) || se.Backend != fbs[2].Name() || !errors.Is(err, audit.ErrShipping) {
				t.Fatalf("handler got %v, want a *replica.ShipError naming %s", err, fbs[2].Name())
			}
			if err := s.WaitShipped(context.Background()); err != nil {
				t.Fatal(err)
			}
			health, _ := s.ShippingHealth()
			if got := health.Backends[2]; got.Held != (replica.BackendCursor{}) || got.Rejected == 0 {
				t.Errorf("the lying backend: %+v; want nothing held and rejections", got)
			}
			for _, b := range fbs {
				checkBackend(t, dir, b)
			}
		})
	}
}

// New refuses bad shipping options with ErrInvalidOption.
func TestShippingBadInput(t *testing.T) {
	fbs := shipBackends(t, 2)
	dup := faultbackend.New(fbs[0].Inner())
	for name, opts := range map[string][]audit.Option{
		"quorum 0":               {audit.WithShipping(0, fbs[0], fbs[1])},
		"quorum 3 of 2":          {audit.WithShipping(3, fbs[0], fbs[1])},
		"no backend":             {audit.WithShipping(1)},
		"nil backend":            {audit.WithShipping(1, fbs[0], nil)},
		"duplicate":              {audit.WithShipping(1, fbs[0], dup)},
		"duplicate across calls": {audit.WithShipping(1, fbs[0]), audit.WithShipping(1, dup)},
		"alarm":                  {audit.WithShipping(1, fbs[0]), audit.WithShippingAlarm(0)},
		"retry":                  {audit.WithShipping(1, fbs[0]), audit.WithShippingRetry(time.Second, time.Millisecond)},
		"max age":                {audit.WithSegmentMaxAge(0)},
	} {
		_, err := audit.New(append([]audit.Option{audit.WithWAL(t.TempDir())}, opts...)...)
		if !errors.Is(err, audit.ErrInvalidOption) {
			t.Errorf("%s: New = %v, want ErrInvalidOption", name, err)
		}
	}
}

// A backend that is down at New fails neither New nor writes: the failure
// handler names it, and once no quorum was reachable for the alarm time,
// the handler and the health say so. When it comes back, it catches up.
func TestShippingBackendDownAtNew(t *testing.T) {
	dir := t.TempDir()
	fbs := shipBackends(t, 1)
	fbs[0].SetNet(faultbackend.NetCut, 0)
	h := newHandlerErrors()
	s := openShipping(t, dir, h, audit.WithShipping(1, asBackends(fbs)...), audit.WithShippingAlarm(time.Millisecond))
	defer s.Close()
	writeEvents(t, s, 100)
	err := h.waitErr(t, faultbackend.ErrCut)
	var se *replica.ShipError
	if !errors.As(err, &se) || se.Backend != fbs[0].Name() {
		t.Fatalf("handler got %v, want a *replica.ShipError naming the backend", err)
	}
	h.waitErr(t, audit.ErrNoQuorum)
	if health, _ := s.ShippingHealth(); !health.Alarm || health.Reachable != 0 || health.Backends[0].Err == nil {
		t.Errorf("health = %+v, want the alarm and the backend's error", health)
	}
	fbs[0].SetNet(faultbackend.NetOK, 0)
	if err := s.WaitShipped(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkBackend(t, dir, fbs[0])
}

// An answer lost after the object landed makes the next attempt find the
// object (ErrExists), compare it and count it, never overwrite it.
func TestShippingLostAnswer(t *testing.T) {
	dir := t.TempDir()
	fbs := shipBackends(t, 1)
	fbs[0].SetNet(faultbackend.NetCutAfter, 0)
	h := newHandlerErrors()
	s := openShipping(t, dir, h, audit.WithShipping(1, asBackends(fbs)...))
	defer s.Close()
	writeEvents(t, s, 100)
	h.waitErr(t, faultbackend.ErrCut)
	fbs[0].SetNet(faultbackend.NetOK, 0)
	if err := s.WaitShipped(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkBackend(t, dir, fbs[0])
}

// An object the cursor claims but the backend lost is found by the check
// at start and shipped again.
func TestShippingCursorClaimRechecked(t *testing.T) {
	dir := t.TempDir()
	fbs := shipBackends(t, 1)
	h := newHandlerErrors()
	s := openShipping(t, dir, h, audit.WithShipping(1, asBackends(fbs)...))
	writeEvents(t, s, 200)
	if err := s.WaitShipped(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	infos, err := fbs[0].List(context.Background(), replica.SegmentsPrefix)
	if err != nil || len(infos) < 2 {
		t.Fatalf("list = %v, %v", infos, err)
	}
	root := strings.TrimPrefix(fbs[0].Name(), "file://")
	for _, info := range infos[:2] { // the first segment, and another
		if err := os.Remove(filepath.Join(root, filepath.FromSlash(info.Key))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := shipcheck.Check(context.Background(), vfs.OS(), dir, fbs[0].Inner()); err == nil {
		t.Fatal("the check missed the cursor's claim of a removed object")
	}
	s = openShipping(t, dir, h, audit.WithShipping(1, asBackends(fbs)...))
	defer s.Close()
	if err := s.WaitShipped(context.Background()); err != nil {
		t.Fatal(err)
	}
	if held := checkBackend(t, dir, fbs[0]); !held.Complete {
		t.Errorf("after the check: %+v, want every object again", held)
	}
}

// WithSegmentMaxAge seals a segment whose first record is old enough, so
// that it ships without more writes.
func TestShippingSegmentMaxAge(t *testing.T) {
	dir := t.TempDir()
	fbs := shipBackends(t, 1)
	h := newHandlerErrors()
	skey, _, _ := integrity.GenerateKey("ship.example/log")
	s, err := audit.New(audit.WithWAL(dir), audit.WithSegmentMaxAge(time.Millisecond), audit.WithSigningKey(skey),
		audit.WithShipping(1, asBackends(fbs)...), audit.WithFailureHandler(h.handle))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	writeEvents(t, s, 1)
	testutil.WaitFor(t, "the aged segment to ship", func() bool {
		infos, err := fbs[0].Inner().List(context.Background(), replica.SegmentsPrefix)
		return err == nil && len(infos) > 0
	})
	checkBackend(t, dir, fbs[0])
}

// shipChildEnv makes the test binary a child that writes and ships until
// killed (TestShippingSIGKILL): the log directory; the backends' and the
// signing key follow in shipChildEnv+"_REMOTES" (separated by ':') and
// shipChildEnv+"_KEY".
const shipChildEnv = "MTLOG_AUDIT_SHIP_CHILD"

func shipChild(dir string) {
	var bs []backends.Backend
	for _, r := range strings.Split(os.Getenv(shipChildEnv+"_REMOTES"), ":") {
		b, err := fs.New(r)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(3)
		}
		bs = append(bs, b)
	}
	sink, err := audit.New(audit.WithWAL(dir, audit.WithSegmentSize(8<<10)), audit.WithSigningKey(os.Getenv(shipChildEnv+"_KEY")),
		audit.WithCheckpoints(16, 5*time.Millisecond, time.Minute), audit.WithShipping(len(bs), bs...),
		audit.WithFailureHandler(func(*core.LogEvent, error) {}))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	for g := range 4 {
		go func() {
			for i := 0; ; i++ {
				r, err := sink.Write(context.Background(), killEvent(g, i))
				if err != nil {
					fmt.Fprintln(os.Stderr, "child write:", err)
					os.Exit(4)
				}
				mu.Lock()
				fmt.Printf("%d\n", r.Seq)
				mu.Unlock()
			}
		}()
	}
	select {}
}

// A real process shipping to two backends is killed with SIGKILL while it
// writes and ships; the next Sink on the directory resumes from the cursor:
// every acknowledged event is there, both backends end up holding every
// sealed segment and checkpoint, none holds two objects for one seal, and
// the cursor claims nothing a backend lacks.
func TestShippingSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		dir := filepath.Join(t.TempDir(), "wal")
		fbs := shipBackends(t, 2)
		var remotes []string
		for _, b := range fbs {
			remotes = append(remotes, strings.TrimPrefix(b.Name(), "file://"))
		}
		skey, _, err := integrity.GenerateKey("ship.example/log")
		if err != nil {
			t.Fatal(err)
		}
		shipKeys.Store(dir, skey)
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), shipChildEnv+"="+dir, shipChildEnv+"_REMOTES="+strings.Join(remotes, ":"), shipChildEnv+"_KEY="+skey)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill once the child acknowledged enough to have sealed and
		// shipped some segments (each holds a few dozen events), at a
		// different count each round.
		want := 300 + 200*round
		var acked uint64
		sc := bufio.NewScanner(out)
		for n := 0; n < want && sc.Scan(); n++ {
			seq, err := strconv.ParseUint(sc.Text(), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			acked = max(acked, seq)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for sc.Scan() { // what was acknowledged before the signal landed
			if seq, err := strconv.ParseUint(sc.Text(), 10, 64); err == nil {
				acked = max(acked, seq)
			}
		}
		cmd.Wait()
		if acked == 0 {
			t.Fatalf("round %d: the child acknowledged nothing", round)
		}
		h := newHandlerErrors()
		s := openShipping(t, dir, h, audit.WithShipping(2, asBackends(fbs)...))
		if s.LastSeq() < acked {
			t.Fatalf("round %d: the log ends at %d, but %d was acknowledged", round, s.LastSeq(), acked)
		}
		if err := s.WaitShipped(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, b := range fbs {
			if held := checkBackend(t, dir, b); !held.Complete || held.Segments == 0 {
				t.Errorf("round %d: %s holds %+v after the resumed shipper caught up", round, b.Name(), held)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// Status (and so the backend metrics and /readyz) reports a backend that
// cannot be reached as down and behind by every sealed segment, and one that
// holds everything as up with no lag.
func TestShippingStatusLag(t *testing.T) {
	dir := t.TempDir()
	fbs := shipBackends(t, 2)
	fbs[1].SetNet(faultbackend.NetCut, 0)
	s := openShipping(t, dir, newHandlerErrors(), audit.WithShipping(1, asBackends(fbs)...))
	defer s.Close()
	writeEvents(t, s, 200)
	if err := s.WaitShipped(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The cut backend has failed at least once by now: wait until its
	// health says so, which Status reads.
	testutil.WaitFor(t, "the cut backend reported failing", func() bool {
		h, _ := s.ShippingHealth()
		return h.Backends[1].Err != nil
	})
	st := s.Status()
	if !st.HasQuorum || !st.Quorum || len(st.Backends) != 2 {
		t.Fatalf("Status backends = %+v, quorum %v/%v; want 2 backends and a quorum", st.Backends, st.HasQuorum, st.Quorum)
	}
	up, down := st.Backends[0], st.Backends[1]
	if !up.Up || up.LagSegments != 0 || up.LagBytes != 0 {
		t.Errorf("healthy backend = %+v, want up with no lag", up)
	}
	sealed := int64(st.Segments - 1) // every segment but the active one
	if down.Up || down.LagSegments != sealed || sealed < 2 || down.LagBytes <= 0 {
		t.Errorf("cut backend = %+v, want down and behind by the %d sealed segments", down, sealed)
	}
}
