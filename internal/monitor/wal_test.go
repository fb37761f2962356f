package monitor_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/monitor"
	"github.com/willibrandon/mtlog-audit/internal/testutil"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// readOnlyFS is the OS filesystem that fails the test on every call that
// could change the log's directory.
type readOnlyFS struct {
	vfs.FS
	mu    sync.Mutex
	wrote []string
}

func (f *readOnlyFS) deny(op, name string) error {
	f.mu.Lock()
	f.wrote = append(f.wrote, op+" "+name)
	f.mu.Unlock()
	return fmt.Errorf("%s %s: %w", op, name, fs.ErrPermission)
}

func (f *readOnlyFS) Create(name string) (vfs.File, error) { return nil, f.deny("create", name) }
func (f *readOnlyFS) OpenReadWrite(name string) (vfs.File, error) {
	return nil, f.deny("open read-write", name)
}
func (f *readOnlyFS) Remove(name string) error                 { return f.deny("remove", name) }
func (f *readOnlyFS) Rename(oldname, _ string) error           { return f.deny("rename", oldname) }
func (f *readOnlyFS) MkdirAll(dir string, _ fs.FileMode) error { return f.deny("mkdir", dir) }
func (f *readOnlyFS) SyncDir(dir string) error                 { return f.deny("syncdir", dir) }
func (f *readOnlyFS) Lock(name, _ string) (io.Closer, error) {
	return nil, f.deny("lock", name)
}

func (f *readOnlyFS) check(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.wrote) > 0 {
		t.Errorf("the watcher tried to change the log directory: %v", f.wrote)
	}
}

// genKey returns a new private signing key.
func genKey(t *testing.T) string {
	t.Helper()
	skey, _, err := integrity.GenerateKey("monitor.wal")
	if err != nil {
		t.Fatal(err)
	}
	return skey
}

// newSink opens a signed sink on dir that checkpoints every 10 records.
func newSink(t *testing.T, dir, skey string) *audit.Sink {
	t.Helper()
	s, err := audit.New(audit.WithWAL(dir, audit.WithSegmentSize(16<<10)), audit.WithSigningKey(skey), audit.WithCheckpoints(10, time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func write(t *testing.T, s *audit.Sink, n int, tag string) uint64 {
	t.Helper()
	var last uint64
	for i := range n {
		r, err := s.Write(context.Background(), &audit.Event{Timestamp: time.Now(), Level: audit.Level(i % 5), MessageTemplate: tag + " {I}", Properties: map[string]any{"I": i, "Pad": strings.Repeat("z", 100)}})
		if err != nil {
			t.Fatal(err)
		}
		last = r.Seq
	}
	return last
}

// watch starts a watcher of dir through fsys and stops it at the end of
// the test.
func watch(t *testing.T, dir string, fsys vfs.FS) *monitor.WAL {
	t.Helper()
	w := monitor.NewWAL(monitor.WALOptions{Dir: dir, FS: fsys, Poll: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	go w.Run(ctx)
	t.Cleanup(func() { cancel(); <-w.Done() })
	return w
}

// TestWALLiveReadOnly (issue 20): a watcher that reads through a
// filesystem refusing every change follows a log that a sink writes from
// several goroutines, as it is written, to its last record, checks every
// stored checkpoint's root against the records, counts the level mix,
// and never tries to change the directory.
func TestWALLiveReadOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	skey := genKey(t)
	s := newSink(t, dir, skey)
	write(t, s, 5, "before")
	ro := &readOnlyFS{FS: vfs.OS()}
	w := watch(t, dir, ro)
	<-w.CaughtUp()
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			write(t, s, 100, fmt.Sprintf("writer %d", g))
		}()
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var snap monitor.Snapshot
	testutil.WaitFor(t, "every record read and the final checkpoint matched", func() bool {
		snap = w.Snapshot()
		v := snap.WAL.Verification
		return snap.WAL.Events == 305 && v.Covered == snap.WAL.Records
	})
	st := snap.WAL
	v := st.Verification
	switch {
	case snap.Status != monitor.StatusOK || len(snap.Problems) > 0:
		t.Errorf("status %q problems %q", snap.Status, snap.Problems)
	case v.State != "ok" || v.CheckpointsMatched < 10 || v.NewRecords < 300:
		t.Errorf("verification %+v", v)
	case st.Levels["verbose"] != 61 || st.Levels["error"] != 61 || st.LastEvent == nil || st.Segments < 2 || st.Checkpoint == nil:
		t.Errorf("levels %v last %+v segments %d checkpoint %+v", st.Levels, st.LastEvent, st.Segments, st.Checkpoint)
	}
	ro.check(t)
}

// TestWALAltered (issue 20): stored checkpoints that the records do not
// reproduce (those of another log, signed by the same key) show LOG
// ALTERED and the damaged state.
func TestWALAltered(t *testing.T) {
	skey := genKey(t)
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	for _, dir := range []string{a, b} {
		s := newSink(t, dir, skey)
		write(t, s, 30, dir)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(filepath.Join(b, integrity.CheckpointsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a, integrity.CheckpointsFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	w := watch(t, a, nil)
	<-w.CaughtUp()
	snap := w.Snapshot()
	if snap.Status != monitor.StatusDamaged || snap.WAL.Verification.State != "damaged" || len(snap.Problems) != 1 || !strings.Contains(snap.Problems[0], "LOG ALTERED: the records do not reproduce the root of the stored checkpoint") {
		t.Errorf("status %q verification %+v problems %q", snap.Status, snap.WAL.Verification, snap.Problems)
	}
}

// TestWALRemoved (issue 20): a log directory removed while it is watched
// gives an error status that says reading stopped, not a crash.
func TestWALRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	skey := genKey(t)
	s := newSink(t, dir, skey)
	write(t, s, 20, "gone")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	w := watch(t, dir, nil)
	<-w.CaughtUp()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	<-w.Done()
	snap := w.Snapshot()
	if snap.Status != monitor.StatusError || len(snap.Problems) == 0 || !strings.Contains(strings.Join(snap.Problems, "\n"), "reading the log stopped") {
		t.Errorf("status %q problems %q", snap.Status, snap.Problems)
	}
	if snap.WAL.Events != 20 {
		t.Errorf("events %d: what was read before is lost", snap.WAL.Events)
	}
	if text := monitor.Text(snap, 80); !strings.Contains(text, "status:      ERROR") {
		t.Errorf("text:\n%s", text)
	}
}

// TestWALRate (issue 20): events/s counts only the events written after
// the watcher reached the end of the log, over the last window, by the
// watcher's clock.
func TestWALRate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	skey := genKey(t)
	s := newSink(t, dir, skey)
	defer s.Close()
	write(t, s, 10, "old")
	var clock atomic.Int64
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	clock.Store(t0.UnixNano())
	w := monitor.NewWAL(monitor.WALOptions{Dir: dir, Poll: time.Millisecond, Window: 10 * time.Second, Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	ctx, cancel := context.WithCancel(context.Background())
	go w.Run(ctx)
	defer func() { cancel(); <-w.Done() }()
	<-w.CaughtUp()
	write(t, s, 50, "new")
	testutil.WaitFor(t, "the new events read", func() bool { return w.Snapshot().WAL.Events == 60 })
	clock.Store(t0.Add(5 * time.Second).UnixNano())
	if got := w.Snapshot().WAL.EventsPerSecond; got != 10 {
		t.Errorf("events/s %g after 50 new events in 5 s, want 10", got)
	}
	clock.Store(t0.Add(25 * time.Second).UnixNano())
	if got := w.Snapshot().WAL.EventsPerSecond; got != 0 {
		t.Errorf("events/s %g with no event in the last 10 s, want 0", got)
	}
}
