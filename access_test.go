package audit_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// accessLog opens a log with access logging on (signed with a fresh key),
// writes n events and closes it. It returns the directory and the public
// and private keys.
func accessLog(t *testing.T, n int) (dir, vkey, skey string) {
	t.Helper()
	skey, vkey, err := integrity.GenerateKey("audit.example/access")
	if err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(t.TempDir(), "audit")
	s, err := audit.New(audit.WithWAL(dir), audit.WithAccessLog(), audit.WithSigningKey(skey))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := s.Write(context.Background(), &audit.Event{MessageTemplate: "event {N}", Properties: map[string]any{"N": i}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, vkey, skey
}

// reads returns the LifecycleRead events of the log in dir.
func reads(t *testing.T, dir string) []*audit.Event {
	t.Helper()
	var out []*audit.Event
	for ev, err := range audit.Replay(context.Background(), dir, time.Time{}, time.Time{}) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Properties[audit.LifecycleProperty] == audit.LifecycleRead {
			out = append(out, ev)
		}
	}
	return out
}

// checkRead checks the properties of a read record.
func checkRead(t *testing.T, ev *audit.Event, actor, command string) {
	t.Helper()
	p := ev.Properties
	if p[audit.ReadActorProperty] != actor || p[audit.ReadCommandProperty] != command || p[audit.ReadUserProperty] == "" || p[audit.ReadRangeProperty] == "" {
		t.Fatalf("read record %v: want actor %q, command %q, a user and a range", p, actor, command)
	}
	if pid, ok := p[audit.ReadPIDProperty].(int64); !ok || pid != int64(os.Getpid()) {
		t.Fatalf("read record PID %#v, want %d", p[audit.ReadPIDProperty], os.Getpid())
	}
}

// TestSinkReplayRecordsRead: a read through the running Sink is recorded
// in its own log, before the data is returned (the replay that made it
// already holds it).
func TestSinkReplayRecordsRead(t *testing.T) {
	s, _ := newSink(t, audit.WithAccessLog())
	if _, err := s.Write(context.Background(), &audit.Event{MessageTemplate: "x"}); err != nil {
		t.Fatal(err)
	}
	var got []*audit.Event
	for ev, err := range s.Replay(audit.WithActor(context.Background(), "alice"), time.Time{}, time.Time{}) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Properties[audit.LifecycleProperty] == audit.LifecycleRead {
			got = append(got, ev)
		}
	}
	if len(got) != 1 {
		t.Fatalf("the replay holds %d read records, want its own", len(got))
	}
	checkRead(t, got[0], "alice", "Replay")
	if _, err := s.VerifyIntegrity(); err != nil {
		t.Fatal(err)
	}
	if n := len(all(t, s)); n < 3 {
		t.Fatalf("%d events after write, replay, verify: the reads are missing", n)
	}
}

// TestSinkWithoutAccessLogRecordsNothing: access logging is off by default.
func TestSinkWithoutAccessLogRecordsNothing(t *testing.T) {
	s, dir := newSink(t)
	all(t, s)
	for _, ev := range all(t, s) {
		if ev.Properties[audit.LifecycleProperty] == audit.LifecycleRead {
			t.Fatalf("read recorded without WithAccessLog: %v", ev.Properties)
		}
	}
	if on, err := audit.AccessLogOn(vfs.OS(), dir); err == nil && on {
		t.Fatal("access log created without WithAccessLog")
	}
}

// TestLibraryReadsRecordedInAccessLog: Replay, Verify and the proofs of a
// log that no reader holds open record each read in <dir>/access, before
// returning data, with the actor of the context.
func TestLibraryReadsRecordedInAccessLog(t *testing.T) {
	dir, vkey, _ := accessLog(t, 3)
	adir := filepath.Join(dir, audit.AccessDirName)
	ctx := audit.WithActor(context.Background(), "bob")
	for _, err := range audit.Replay(ctx, dir, time.Time{}, time.Time{}) {
		if err != nil {
			t.Fatal(err)
		}
		break // the read is recorded even when the caller stops at once
	}
	if _, err := audit.Verify(ctx, dir, audit.WithTrustedKeys(vkey)); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.ProveInclusion(ctx, vfs.OS(), dir, 1, nil); err != nil {
		t.Fatal(err)
	}
	got := reads(t, adir)
	if len(got) != 3 {
		t.Fatalf("%d read records in the access log, want 3 (Replay, Verify, ProveInclusion)", len(got))
	}
	checkRead(t, got[0], "bob", "Replay")
	checkRead(t, got[1], "bob", "Verify")
	checkRead(t, got[2], "bob", "ProveInclusion")
}

// TestVerifyDetectsDeletedAccessRecords: deleting the record of reads —
// the whole access log, its last segment, or a truncated tail — is
// reported by Verify with ErrAccessLog.
func TestVerifyDetectsDeletedAccessRecords(t *testing.T) {
	for _, tc := range []struct {
		name   string
		attack func(t *testing.T, adir string)
	}{
		{"whole access log", func(t *testing.T, adir string) { os.RemoveAll(adir) }},
		{"last segment", func(t *testing.T, adir string) {
			segs := segments(t, adir)
			os.Remove(segs[len(segs)-1])
		}},
		{"truncated tail", func(t *testing.T, adir string) {
			segs := segments(t, adir)
			last := segs[len(segs)-1]
			fi, err := os.Stat(last)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(last, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, vkey, skey := accessLog(t, 2)
			ctx := audit.WithReadContext(context.Background(), audit.ReadContext{Actor: "mallory", SigningKey: skey})
			if _, err := audit.Verify(ctx, dir, audit.WithTrustedKeys(vkey)); err != nil {
				t.Fatal(err)
			}
			tc.attack(t, filepath.Join(dir, audit.AccessDirName))
			_, err := audit.Verify(context.Background(), dir, audit.WithTrustedKeys(vkey))
			if !errors.Is(err, audit.ErrAccessLog) || !errors.Is(err, audit.ErrIntegrity) {
				t.Fatalf("Verify after deleting reads: %v, want ErrAccessLog", err)
			}
			t.Log(err)
		})
	}
}

// segments lists the segment files of the log in dir.
func segments(t *testing.T, dir string) []string {
	t.Helper()
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if _, ok := wal.ParseSegmentName(n.Name()); ok {
			out = append(out, filepath.Join(dir, n.Name()))
		}
	}
	if len(out) == 0 {
		t.Fatalf("no segments in %s", dir)
	}
	return out
}

// TestUnrecordableReadFails: a read that cannot be recorded returns no
// data and ErrReadNotRecorded, unless the context allows it.
func TestUnrecordableReadFails(t *testing.T) {
	dir, _, _ := accessLog(t, 1)
	adir := filepath.Join(dir, audit.AccessDirName)
	// Hold the access log's lock the way a writer does: a second Sink.
	hold, err := audit.New(audit.WithWAL(adir))
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the bounded wait ends at once
	n := 0
	for ev, err := range audit.Replay(ctx, dir, time.Time{}, time.Time{}) {
		if ev != nil {
			t.Fatalf("data returned by an unrecorded read: %v", ev)
		}
		if !errors.Is(err, audit.ErrReadNotRecorded) {
			t.Fatalf("error %v, want ErrReadNotRecorded", err)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("%d results, want the error alone", n)
	}
	var told error
	ctx = audit.WithReadContext(ctx, audit.ReadContext{AllowUnrecorded: true, OnUnrecorded: func(err error) { told = err }})
	if _, err := audit.Verify(ctx, dir); err != nil && errors.Is(err, audit.ErrReadNotRecorded) {
		t.Fatalf("Verify with AllowUnrecorded: %v", err)
	}
	if !errors.Is(told, audit.ErrReadNotRecorded) {
		t.Fatalf("OnUnrecorded got %v, want ErrReadNotRecorded", told)
	}
}

// TestAccessLogKeyedAfterKeylessReader: a read recorded without the key
// (unsigned) does not stop the Sink from opening: its anchoring appends
// unsigned too, the anchors commit to the reads, and Verify passes.
func TestAccessLogKeyedAfterKeylessReader(t *testing.T) {
	dir, vkey, skey := accessLog(t, 1)
	for range audit.Replay(context.Background(), dir, time.Time{}, time.Time{}) {
	}
	s, err := audit.New(audit.WithWAL(dir), audit.WithAccessLog(), audit.WithSigningKey(skey))
	if err != nil {
		t.Fatalf("reopen after a keyless read: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(context.Background(), dir, audit.WithTrustedKeys(vkey)); err != nil {
		t.Fatal(err)
	}
}

// TestUnsignedAccessLogAnchors: without any signing key, reads made before
// the Sink's last anchor (its open or Close) cannot be hidden: cutting
// them off, or replacing the access log, fails Verify. Reads after the
// last anchor can be cut off like the uncovered tail of any log
// (docs/access-logging.md): this test pins that limit too.
func TestUnsignedAccessLogAnchors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	adir := filepath.Join(dir, audit.AccessDirName)
	reopen := func() {
		s, err := audit.New(audit.WithWAL(dir), audit.WithAccessLog())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	read := func() {
		for _, err := range audit.Replay(context.Background(), dir, time.Time{}, time.Time{}) {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	size := func() int64 {
		segs := segments(t, adir)
		fi, err := os.Stat(segs[len(segs)-1])
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	reopen()
	before := size()
	read()
	reopen() // anchors the read
	afterAnchor := size()
	read() // not anchored yet
	segs := segments(t, adir)
	last := segs[len(segs)-1]
	if err := os.Truncate(last, afterAnchor); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(context.Background(), dir); err != nil {
		t.Fatalf("cutting the unanchored read of an unsigned access log: %v; want it undetected (the documented limit)", err)
	}
	if err := os.Truncate(last, before); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(context.Background(), dir); !errors.Is(err, audit.ErrAccessLog) {
		t.Fatalf("cutting an anchored read: %v, want ErrAccessLog", err)
	}
	// Replacing the access log by a fresh one is caught too.
	if err := os.RemoveAll(adir); err != nil {
		t.Fatal(err)
	}
	read() // no access log: not recorded (and Verify below says why)
	fresh, err := audit.New(audit.WithWAL(adir))
	if err != nil {
		t.Fatal(err)
	}
	fresh.Close()
	if _, err := audit.Verify(context.Background(), dir); !errors.Is(err, audit.ErrAccessLog) {
		t.Fatalf("replacing the access log: %v, want ErrAccessLog", err)
	}
}

// TestReadWhileSinkOpen: a read by another reader while the Sink holds
// the log open goes to the access log (the Sink's lock is not needed).
func TestReadWhileSinkOpen(t *testing.T) {
	s, dir := newSink(t, audit.WithAccessLog())
	if _, err := s.Write(context.Background(), &audit.Event{MessageTemplate: "x"}); err != nil {
		t.Fatal(err)
	}
	ctx := audit.WithActor(context.Background(), "carol")
	if _, err := audit.Verify(ctx, dir); err != nil {
		t.Fatal(err)
	}
	got := reads(t, filepath.Join(dir, audit.AccessDirName))
	if len(got) != 1 {
		t.Fatalf("%d reads in the access log, want 1", len(got))
	}
	checkRead(t, got[0], "carol", "Verify")
}
