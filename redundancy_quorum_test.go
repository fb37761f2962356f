package audit

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// quorumTimeout is the per-copy timeout of the tests: short enough that
// the one timeout of a hung copy keeps them quick, long enough that a
// healthy copy on a busy machine (fdatasync on a real disk, the race
// detector) never misses it. No assertion depends on how long anything
// takes.
const quorumTimeout = 2 * time.Second

// staleOf returns the *MirrorStaleError values among errs.
func staleOf(errs []error) []*MirrorStaleError {
	var out []*MirrorStaleError
	for _, err := range errs {
		var se *MirrorStaleError
		if errors.As(err, &se) {
			out = append(out, se)
		}
	}
	return out
}

// ackWrites writes events from to to-1 through s and records each one in
// acked; every write must be acknowledged.
func ackWrites(t *testing.T, s *Sink, from, to int, acked map[uint64][]byte) {
	t.Helper()
	for i := from; i < to; i++ {
		r, err := s.Write(context.Background(), redEvent(i))
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		acked[r.Seq] = encoded(t, redEvent(i))
	}
}

// TestRedundancyQuorumHungMirror: with two mirrors and a quorum of two
// copies, a mirror whose disk stops answering is left behind after its
// timeout: Write goes on acknowledging, the failure handler is told once
// with a *MirrorStaleError naming the copy, Sink.Mirrors shows it stale,
// a power loss leaves every acknowledged event in the primary and the
// current mirror, Close does not wait for the hung copy, and the next New
// repairs it. On simulated and real disks.
func TestRedundancyQuorumHungMirror(t *testing.T) {
	t.Run("CrashFS", func(t *testing.T) {
		c := vfs.NewCrashFS()
		hungMirror(t, c, "/", c)
	})
	t.Run("OS", func(t *testing.T) { hungMirror(t, vfs.OS(), t.TempDir(), nil) })
}

func hungMirror(t *testing.T, base vfs.FS, root string, crash *vfs.CrashFS) {
	p, m1, m2 := filepath.Join(root, "p"), filepath.Join(root, "m1"), filepath.Join(root, "m2")
	fault := vfs.NewFaultFS(base)
	defer fault.Release()
	fsys := routeFS{base: base, alt: fault, prefix: m1}
	rec := &repairs{}
	opts := []Option{WithWAL(p, WithSegmentSize(4096)), WithRedundancy(m1, m2), WithFileSystem(fsys), WithFailureHandler(rec.handler)}
	s, err := New(append(opts, WithRedundancyQuorum(2, quorumTimeout))...)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	acked := map[uint64][]byte{}
	ackWrites(t, s, 0, 10, acked)
	if errs := rec.take(); len(errs) != 0 {
		t.Fatalf("healthy copies reported: %v", errs)
	}
	fault.Hang()
	ackWrites(t, s, 10, 60, acked) // several segments: creates and renames too
	stale := staleOf(rec.take())
	if len(stale) != 1 || stale[0].Dir != m1 || !errors.Is(stale[0], ErrMirrorStale) || !errors.Is(stale[0], vfs.ErrMirrorTimeout) || !strings.Contains(stale[0].Error(), m1) {
		t.Fatalf("failure handler got %v, want one *MirrorStaleError for %s matching ErrMirrorStale and vfs.ErrMirrorTimeout", stale, m1)
	}
	st := s.Mirrors()
	if len(st) != 2 || st[0].Dir != m1 || st[0].State != MirrorStale || !errors.Is(st[0].Err, vfs.ErrMirrorTimeout) || st[1].Dir != m2 || st[1].State != MirrorCurrent {
		t.Fatalf("Mirrors() = %+v, want %s stale and %s current", st, m1, m2)
	}
	if crash != nil {
		// A power loss now: what was acknowledged is durable in the
		// primary and in the mirror that is current, each on its own.
		lost := crash.CrashClone(vfs.CrashOptions{Seed: 1})
		for _, d := range []string{p, m2} {
			alone := lost.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
			a, err := New(WithWAL(d), WithFileSystem(alone))
			if err != nil {
				t.Fatalf("copy %s alone after a power loss: %v", d, err)
			}
			a.Close()
			wantAll(t, alone, d, acked)
		}
	}
	if err := s.Close(); err != nil { // the hung copy is not waited for
		t.Fatalf("close with a stale mirror: %v", err)
	}
	// The copy answers again; the next New repairs it.
	fault.Release()
	s, err = New(append(opts, WithRedundancyQuorum(2, quorumTimeout))...)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	errs := rec.take()
	if len(errs) != 1 || !errors.Is(errs[0], ErrRepaired) || !strings.Contains(errs[0].Error(), m1) {
		t.Fatalf("reopen reported %v, want one repair of %s", errs, m1)
	}
	if st := s.Mirrors(); st[0].State != MirrorCurrent || st[1].State != MirrorCurrent {
		t.Fatalf("after the repair Mirrors() = %+v, want both current", st)
	}
	ackWrites(t, s, 60, 70, acked)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if errs := rec.take(); len(errs) != 0 {
		t.Fatalf("after the repair the failure handler got %v", errs)
	}
	sameCopies(t, base, p, m1, m2)
	for _, d := range []string{p, m1, m2} {
		verifies(t, base, d)
		wantAll(t, base, d, acked)
	}
}

// TestRedundancyDefaultWaitsForHungMirror: without WithRedundancyQuorum a
// hung mirror holds Write until it answers, as it always did: nothing is
// acknowledged that is not durable in every copy.
func TestRedundancyDefaultWaitsForHungMirror(t *testing.T) {
	c := vfs.NewCrashFS()
	fault := vfs.NewFaultFS(c)
	defer fault.Release()
	rec := &repairs{}
	s := openRedundant(t, routeFS{base: c, alt: fault, prefix: "/m"}, rec)
	defer s.Close()
	if _, err := s.Write(context.Background(), redEvent(0)); err != nil {
		t.Fatal(err)
	}
	blocked := fault.Hang()
	done := make(chan error, 1)
	go func() {
		_, err := s.Write(context.Background(), redEvent(1))
		done <- err
	}()
	<-blocked
	select {
	case err := <-done:
		t.Fatalf("Write returned (%v) while the mirror hung", err)
	default:
	}
	if st := s.Mirrors(); len(st) != 1 || st[0].State != MirrorCurrent {
		t.Fatalf("Mirrors() = %+v, want the mirror current", st)
	}
	fault.Release()
	if err := <-done; err != nil {
		t.Fatalf("Write after the mirror answered: %v", err)
	}
	if errs := rec.take(); len(errs) != 0 {
		t.Fatalf("failure handler got %v", errs)
	}
}

// TestRedundancyQuorumLost: with a quorum of every copy a hung mirror
// fails writes after its timeout (instead of blocking them for as long as
// it hangs); nothing is acknowledged, and the next New repairs the copy.
func TestRedundancyQuorumLost(t *testing.T) {
	c := vfs.NewCrashFS()
	fault := vfs.NewFaultFS(c)
	defer fault.Release()
	rec := &repairs{}
	fsys := routeFS{base: c, alt: fault, prefix: "/m"}
	s := openRedundant(t, fsys, rec, WithRedundancyQuorum(2, quorumTimeout), WithFailOpen())
	acked := map[uint64][]byte{}
	ackWrites(t, s, 0, 5, acked)
	fault.Hang()
	_, err := s.Write(context.Background(), redEvent(5))
	if !errors.Is(err, vfs.ErrMirrorQuorum) || !errors.Is(err, vfs.ErrMirrorTimeout) || !strings.Contains(err.Error(), "/m") {
		t.Fatalf("write with the only mirror hung and a quorum of 2: err = %v, want vfs.ErrMirrorQuorum and vfs.ErrMirrorTimeout naming /m", err)
	}
	if _, err := s.Write(context.Background(), redEvent(6)); err == nil {
		t.Fatal("a write was acknowledged with too few current copies")
	}
	if stale := staleOf(rec.take()); len(stale) != 1 || stale[0].Dir != "/m" {
		t.Fatalf("failure handler got %v, want /m stale once", stale)
	}
	s.Close()
	fault.Release()
	s = openRedundant(t, fsys, rec)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	sameCopies(t, c, "/p", "/m")
	wantAll(t, c, "/m", acked)
}

// TestRedundancyQuorumFailingMirror: a mirror whose fsync fails (EIO) is
// left behind like a hung one, and writes go on; without the quorum the
// same failure fails the log (TestRedundancyMirrorFsyncEIOFailsClosed).
func TestRedundancyQuorumFailingMirror(t *testing.T) {
	c := vfs.NewCrashFS()
	fault := vfs.NewFaultFS(c)
	rec := &repairs{}
	s := openRedundant(t, routeFS{base: c, alt: fault, prefix: "/m"}, rec, WithRedundancyQuorum(1, quorumTimeout))
	defer s.Close()
	fault.FailSyncs(syscall.EIO)
	ackWrites(t, s, 0, 5, map[uint64][]byte{}) // with a failing mirror and a quorum of 1
	stale := staleOf(rec.take())
	if len(stale) != 1 || !errors.Is(stale[0], syscall.EIO) || !errors.Is(stale[0], ErrMirrorStale) {
		t.Fatalf("failure handler got %v, want one *MirrorStaleError with EIO", stale)
	}
	if st := s.Mirrors(); st[0].State != MirrorStale || st[0].Since != stale[0].Since {
		t.Fatalf("Mirrors() = %+v", st)
	}
}

// TestRedundancyQuorumOptions: WithRedundancyQuorum's arguments are
// checked by New, each problem named, with ErrInvalidOption.
func TestRedundancyQuorumOptions(t *testing.T) {
	dir := t.TempDir()
	p, m := filepath.Join(dir, "p"), filepath.Join(dir, "m")
	for _, tc := range []struct {
		opts []Option
		want string
	}{
		{[]Option{WithRedundancyQuorum(1, time.Second)}, "WithRedundancy too"},
		{[]Option{WithRedundancy(m), WithRedundancyQuorum(0, time.Second)}, "use 1 to 2"},
		{[]Option{WithRedundancy(m), WithRedundancyQuorum(3, time.Second)}, "use 1 to 2"},
		{[]Option{WithRedundancy(m), WithRedundancyQuorum(2, 0)}, "must be positive"},
	} {
		s, err := New(append([]Option{WithWAL(p)}, tc.opts...)...)
		if err == nil {
			s.Close()
			t.Errorf("New accepted %s", tc.want)
			continue
		}
		if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), "WithRedundancyQuorum(") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %q: want ErrInvalidOption naming WithRedundancyQuorum and saying %q", err, tc.want)
		}
	}
	// Two problems at once are reported together.
	_, err := New(WithWAL(p), WithRedundancy(m), WithRedundancyQuorum(5, -time.Second))
	if err == nil || !strings.Contains(err.Error(), "use 1 to 2") || !strings.Contains(err.Error(), "must be positive") {
		t.Errorf("error %q: want both problems", err)
	}
	if s, err := New(WithWAL(p)); err != nil || s.Mirrors() != nil {
		t.Errorf("without WithRedundancy: %v, Mirrors() = %v", err, s.Mirrors())
	} else {
		s.Close()
	}
}
