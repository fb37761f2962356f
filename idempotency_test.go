package audit_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog/core"
)

// gateFS holds the next fdatasync of a segment, once armed, until released:
// it lets a test cancel a Write while its group commit is in flight.
type gateFS struct {
	vfs.FS
	mu      sync.Mutex
	armed   bool
	entered chan struct{} // closed when a held fdatasync began
	release chan struct{} // closed to let it finish
}

func newGateFS(inner vfs.FS) *gateFS { return &gateFS{FS: inner} }

// arm makes the next segment fdatasync wait for open.
func (g *gateFS) arm() (entered <-chan struct{}, open func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed = true
	g.entered, g.release = make(chan struct{}), make(chan struct{})
	rel := g.release
	return g.entered, func() { close(rel) }
}

func (g *gateFS) hold() {
	g.mu.Lock()
	if !g.armed {
		g.mu.Unlock()
		return
	}
	g.armed = false
	entered, release := g.entered, g.release
	g.mu.Unlock()
	close(entered)
	<-release
}

func (g *gateFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.Contains(filepath.Base(f.Name()), ".wal") {
		return f, err
	}
	return gateFile{f, g}, nil
}

func (g *gateFS) Create(name string) (vfs.File, error) { return g.wrap(g.FS.Create(name)) }
func (g *gateFS) OpenReadWrite(name string) (vfs.File, error) {
	return g.wrap(g.FS.OpenReadWrite(name))
}

type gateFile struct {
	vfs.File
	g *gateFS
}

func (f gateFile) Datasync() error {
	f.g.hold()
	return f.File.Datasync()
}

// cancelDuringCommit writes ev with a context that is cancelled while the
// group commit holding ev is between its write and its fdatasync, and
// returns Write's error once the commit finished.
func cancelDuringCommit(t *testing.T, s *audit.Sink, g *gateFS, ev *audit.Event) error {
	t.Helper()
	entered, open := g.arm()
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		_, err := s.Write(ctx, ev)
		res <- err
	}()
	<-entered
	cancel()
	err := <-res
	open()
	return err
}

func gatedSink(t *testing.T, opts ...audit.Option) (*audit.Sink, *gateFS) {
	t.Helper()
	g := newGateFS(vfs.OS())
	dir := filepath.Join(t.TempDir(), "audit")
	s, err := audit.New(append([]audit.Option{audit.WithWAL(dir, audit.WithPrealloc(0)), audit.WithFileSystem(g)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, g
}

func keyed(key, msg string) *audit.Event {
	return &audit.Event{Timestamp: time.Now(), MessageTemplate: msg, Properties: map[string]any{audit.IdempotencyKeyProperty: key}}
}

// A Write cancelled during its group commit is maybe written; retrying it
// with the same idempotency key returns the first Receipt and leaves
// exactly one record.
func TestRetryAfterCancelWithKeyWritesOnce(t *testing.T) {
	s, g := gatedSink(t)
	ev := keyed("order-42", "exported")
	if err := cancelDuringCommit(t, s, g, ev); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Write: %v", err)
	}
	r, err := s.Write(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Write(context.Background(), ev)
	if err != nil || again != r {
		t.Fatalf("third Write: %+v, %v; want the first Receipt %+v", again, err, r)
	}
	evs := all(t, s)
	if len(evs) != 1 || r.Seq != 1 || evs[0].Properties[audit.IdempotencyKeyProperty] != "order-42" {
		t.Fatalf("the log holds %d records (receipt %+v), want exactly one carrying its key", len(evs), r)
	}
}

// Without a key, Write's doc holds: a context error during the commit
// means maybe written (here: written), so a blind retry duplicates.
func TestCancelWithoutKeyIsMaybeWritten(t *testing.T) {
	s, g := gatedSink(t)
	ev := &audit.Event{Timestamp: time.Now(), MessageTemplate: "no key"}
	if err := cancelDuringCommit(t, s, g, ev); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Write: %v", err)
	}
	if _, err := s.Write(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if evs := all(t, s); len(evs) != 2 {
		t.Fatalf("the log holds %d records, want the cancelled one and the retry", len(evs))
	}
}

// Concurrent Writes of one key write it once and all get its Receipt.
func TestConcurrentWritesOfOneKey(t *testing.T) {
	s, _ := newSink(t)
	const n = 16
	var wg sync.WaitGroup
	rs := make([]audit.Receipt, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs[i], errs[i] = s.Write(context.Background(), keyed("k", "once"))
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || rs[i] != rs[0] {
			t.Fatalf("Write %d: %+v, %v; want %+v", i, rs[i], errs[i], rs[0])
		}
	}
	if evs := all(t, s); len(evs) != 1 {
		t.Fatalf("the log holds %d records, want 1", len(evs))
	}
}

// A keyed Write that failed (disk full) is not remembered: the retry writes.
// EmitEvent's retries of a keyed event are safe the same way.
func TestFailedKeyedWriteIsRetried(t *testing.T) {
	s, ffs := failingSink(t, audit.WithFailureHandler(func(*core.LogEvent, error) {}))
	defer s.Close()
	ffs.SetWriteBudget(0)
	if _, err := s.Write(context.Background(), keyed("k", "full")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Write on a full disk: %v", err)
	}
	ffs.SetWriteBudget(-1)
	r, err := s.Write(context.Background(), keyed("k", "full"))
	if err != nil || r.Seq != 1 {
		t.Fatalf("retry after space was freed: %+v, %v", r, err)
	}
	if err := s.EmitEvent(context.Background(), keyed("k", "full")); err != nil {
		t.Fatal(err)
	}
	if evs := all(t, s); len(evs) != 1 {
		t.Fatalf("the log holds %d records, want 1", len(evs))
	}
}

// The window remembers the last N keys; 0 turns deduplication off; a key
// that is not a short non-empty string is refused, never ignored.
func TestIdempotencyWindow(t *testing.T) {
	s, _ := newSink(t, audit.WithIdempotencyWindow(2))
	for _, k := range []string{"a", "b", "a", "c", "a"} {
		if _, err := s.Write(context.Background(), keyed(k, k)); err != nil {
			t.Fatal(err)
		}
	}
	// a (written), b (written), a (remembered), c (written, evicts a), a (written again)
	if n := s.LastSeq(); n != 4 {
		t.Fatalf("the log holds %d records, want 4", n)
	}

	off, _ := newSink(t, audit.WithIdempotencyWindow(0))
	for range 2 {
		if _, err := off.Write(context.Background(), keyed("a", "a")); err != nil {
			t.Fatal(err)
		}
	}
	if n := off.LastSeq(); n != 2 {
		t.Fatalf("window off: the log holds %d records, want 2", n)
	}

	for _, bad := range []any{42, "", strings.Repeat("k", audit.MaxIdempotencyKey+1)} {
		ev := &audit.Event{MessageTemplate: "bad key", Properties: map[string]any{audit.IdempotencyKeyProperty: bad}}
		if _, err := s.Write(context.Background(), ev); !errors.Is(err, audit.ErrUnwritable) || !strings.Contains(err.Error(), audit.IdempotencyKeyProperty) {
			t.Fatalf("key %v: %v", bad, err)
		}
	}
}
