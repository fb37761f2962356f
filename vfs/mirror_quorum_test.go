package vfs

import (
	"errors"
	"maps"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// staleLog collects what a MirrorPolicy's OnStale is told.
type staleLog struct {
	mu  sync.Mutex
	got []MirrorStatus
}

func (l *staleLog) add(st MirrorStatus) {
	l.mu.Lock()
	l.got = append(l.got, st)
	l.mu.Unlock()
}

func (l *staleLog) take() []MirrorStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.got
	l.got = nil
	return g
}

// quorumMirror returns a primary p and mirrors m1 (behind a FaultFS) and m2
// on one CrashFS, mirrored with a quorum of k copies.
func quorumMirror(t *testing.T, k int) (*CrashFS, *FaultFS, *Mirror, *staleLog) {
	t.Helper()
	c := NewCrashFS()
	for _, d := range []string{"p", "m1", "m2"} {
		must(t, c.MkdirAll(d, 0o750))
	}
	must(t, c.SyncDir("."))
	fault := NewFaultFS(c)
	m, err := NewMirrorOf(Replica{c, "p"}, Replica{fault, "m1"}, Replica{c, "m2"})
	must(t, err)
	log := &staleLog{}
	// The timeout is short enough that the one timeout of a hung copy
	// keeps the test quick, long enough that a healthy copy on a busy
	// machine never misses it; nothing below depends on how long anything
	// takes.
	m, err = m.WithPolicy(MirrorPolicy{Quorum: k, Timeout: time.Second, OnStale: log.add})
	must(t, err)
	return c, fault, m, log
}

func TestMirrorQuorumSharedBehaviour(t *testing.T) {
	c, _, m, log := quorumMirror(t, 2)
	testFS(t, m, "p")
	p := copyOf(t, c, "p")
	for _, d := range []string{"m1", "m2"} {
		if got := copyOf(t, c, d); !maps.Equal(got, p) {
			t.Errorf("copy %s = %q, want the primary's %q", d, got, p)
		}
	}
	if got := log.take(); len(got) != 0 {
		t.Errorf("healthy copies reported stale: %v", got)
	}
}

// TestMirrorQuorumLeavesHungMirrorBehind: a mirror that stops answering is
// marked stale after the timeout, reported once, and no longer written;
// operations go on with the primary and the other mirror.
func TestMirrorQuorumLeavesHungMirrorBehind(t *testing.T) {
	c, fault, m, log := quorumMirror(t, 2)
	f := mustCreate(t, m, "p/seg")
	mustWrite(t, f, 0, "before")
	must(t, f.Datasync())
	blocked := fault.Hang()
	buf := []byte("during")
	if _, err := f.WriteAt(buf, 6); err != nil {
		t.Fatalf("write with a hung mirror and a quorum of 2: %v", err)
	}
	<-blocked
	copy(buf, "XXXXXX") // the caller may reuse its buffer at once
	must(t, f.Datasync())
	g := mustCreate(t, m, "p/other")
	mustWrite(t, g, 0, "after")
	must(t, g.Datasync())
	must(t, m.SyncDir("p"))
	must(t, g.Close())

	got := log.take()
	if len(got) != 1 || got[0].Dir != "m1" || got[0].State != MirrorStale || !errors.Is(got[0].Err, ErrMirrorTimeout) || !strings.Contains(got[0].Err.Error(), "mirror copy m1") {
		t.Fatalf("OnStale got %+v, want m1 stale once, with ErrMirrorTimeout naming it", got)
	}
	st := m.Status()
	if len(st) != 2 || st[0].State != MirrorStale || st[0].Dir != "m1" || st[0].Since != got[0].Since || st[1].State != MirrorCurrent || st[1].Err != nil {
		t.Fatalf("Status = %+v, want m1 stale and m2 current", st)
	}
	if st[0].Blocked != 1 || st[1].Blocked != 0 {
		t.Errorf("Status = %+v, want the one write blocked in m1", st)
	}
	if hung := fault.Stats().Hung; hung != 1 {
		t.Errorf("%d calls reached the hung mirror, want only the write it hung in", hung)
	}
	fault.Release()
	mustWrite(t, f, 12, "!")
	must(t, f.Datasync())
	if syncs := fault.Stats().Syncs; syncs != 1 {
		t.Errorf("%d syncs reached the mirror, want only the one before it hung", syncs)
	}
	must(t, f.Truncate(12))
	must(t, f.Close())
	if want := map[string]string{"": "", "seg": "beforeduring", "other": "after"}; !maps.Equal(copyOf(t, c, "p"), want) || !maps.Equal(copyOf(t, c, "m2"), want) {
		t.Fatalf("primary %q, m2 %q; want both %q", copyOf(t, c, "p"), copyOf(t, c, "m2"), want)
	}
	// The write the mirror hung in landed when released (Release waits
	// for it), with the bytes it was given; nothing later reached it.
	if got := copyOf(t, c, "m1"); len(got) != 2 || got["seg"] != "beforeduring" {
		t.Errorf("stale mirror holds %q, want only what it had when it hung and the write it was blocked in", got)
	}
}

// TestMirrorQuorumLost: when too few copies remain current, operations
// fail with ErrMirrorQuorum and the cause, instead of blocking.
func TestMirrorQuorumLost(t *testing.T) {
	_, fault, m, log := quorumMirror(t, 3)
	f := mustCreate(t, m, "p/seg")
	fault.Hang()
	defer fault.Release()
	_, err := f.WriteAt([]byte("x"), 0)
	if !errors.Is(err, ErrMirrorQuorum) || !errors.Is(err, ErrMirrorTimeout) || !strings.Contains(err.Error(), "m1") {
		t.Fatalf("write with a hung mirror and a quorum of every copy: err = %v, want ErrMirrorQuorum and ErrMirrorTimeout naming m1", err)
	}
	if err := f.Datasync(); !errors.Is(err, ErrMirrorQuorum) {
		t.Fatalf("later sync: err = %v, want ErrMirrorQuorum", err)
	}
	if _, err := m.Create("p/new"); !errors.Is(err, ErrMirrorQuorum) {
		t.Fatalf("create: err = %v, want ErrMirrorQuorum", err)
	}
	if _, err := m.Stat("p/new"); err == nil {
		t.Error("a create that lost its quorum left the primary's file behind")
	}
	if got := log.take(); len(got) != 1 {
		t.Errorf("OnStale got %v, want m1 once", got)
	}
}

// TestMirrorQuorumFailingMirror: a mirror that fails (EIO) is left behind
// like one that hangs, with its error.
func TestMirrorQuorumFailingMirror(t *testing.T) {
	c, fault, m, log := quorumMirror(t, 2)
	f := mustCreate(t, m, "p/seg")
	fault.FailSyncs(syscall.EIO)
	mustWrite(t, f, 0, "data")
	must(t, f.Datasync())
	fault.FailSyncs(nil)
	mustWrite(t, f, 4, "more")
	must(t, f.Datasync())
	if got := log.take(); len(got) != 1 || got[0].Dir != "m1" || !errors.Is(got[0].Err, syscall.EIO) {
		t.Fatalf("OnStale got %+v, want m1 with EIO", got)
	}
	if got := copyOf(t, c, "m1")["seg"]; got != "data" {
		t.Errorf("stale mirror holds %q, want %q (nothing after it went stale)", got, "data")
	}
	if got := copyOf(t, c, "m2")["seg"]; got != "datamore" {
		t.Errorf("current mirror holds %q", got)
	}
}

// TestMirrorDefaultPolicyWaitsForHungMirror: without a policy a hung mirror
// holds the operation until it answers, as it always did.
func TestMirrorDefaultPolicyWaitsForHungMirror(t *testing.T) {
	c := NewCrashFS()
	for _, d := range []string{"p", "m"} {
		must(t, c.MkdirAll(d, 0o750))
	}
	fault := NewFaultFS(c)
	m, err := NewMirrorOf(Replica{c, "p"}, Replica{fault, "m"})
	must(t, err)
	f := mustCreate(t, m, "p/seg")
	blocked := fault.Hang()
	done := make(chan error, 1)
	go func() {
		_, err := f.WriteAt([]byte("data"), 0)
		done <- err
	}()
	<-blocked
	select {
	case err := <-done:
		t.Fatalf("write returned (%v) while the mirror hung", err)
	default:
	}
	fault.Release()
	must(t, <-done)
	if st := m.Status(); len(st) != 1 || st[0].State != MirrorCurrent {
		t.Errorf("Status = %+v, want the mirror current", st)
	}
}

func TestMirrorPolicyConfig(t *testing.T) {
	_, m := newMirror(t)
	for _, p := range []MirrorPolicy{{Quorum: -1}, {Quorum: 4, Timeout: time.Second}, {Quorum: 2}, {Quorum: 2, Timeout: -time.Second}} {
		if _, err := m.WithPolicy(p); err == nil {
			t.Errorf("WithPolicy(%+v) accepted", p)
		}
	}
	for _, p := range []MirrorPolicy{{}, {Quorum: 1, Timeout: time.Second}, {Quorum: 3, Timeout: time.Second}} {
		if _, err := m.WithPolicy(p); err != nil {
			t.Errorf("WithPolicy(%+v): %v", p, err)
		}
	}
}

// BenchmarkMirrorWriteQuorum is BenchmarkMirrorWrite with a quorum of both
// copies and a deadline per copy: the cost of the goroutine, timer and
// copy of the bytes per operation.
func BenchmarkMirrorWriteQuorum(b *testing.B) {
	mir, err := benchMirror(b).WithPolicy(MirrorPolicy{Quorum: 2, Timeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	benchWrite(b, mir)
}
