package audit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// TestRetentionPrunedThroughLastCheckpoint: the last signed checkpoint
// covers exactly the records retention deleted, and the records written
// after them were not signed yet when the power went. Open used to read
// "the last record the checkpoint covers" again, got the first retained
// one instead, and refused the healthy log as one whose end was replaced.
// The tree at the pruned point is vouched for by the signed retention
// checkpoint; every batch after it is still authenticated. (Torture
// RetentionCrash seed -3901056821111587982 reached this state through a
// power cut at a moment the checkpointer had fallen behind; this builds
// it directly.)
func TestRetentionPrunedThroughLastCheckpoint(t *testing.T) {
	fsys := vfs.NewCrashFS()
	l := newRetLog(t, fsys)
	l.dir = "/audit"
	// No checkpoint by count, interval or heartbeat: only seals and Close sign.
	quiet := audit.WithCheckpoints(1<<20, time.Hour, time.Hour)
	s := l.open(t, quiet)
	l.write(t, s, 40)
	if err := s.Close(); err != nil { // seals segment 6 and signs records 1 to 46
		t.Fatal(err)
	}
	s = l.open(t, quiet)
	l.write(t, s, 1) // segment 6's writing ended a day after its last event
	l.clk.add(3 * 365 * 24 * time.Hour)
	l.write(t, s, 3)
	rep, err := s.ApplyRetention(context.Background(), false)
	if err != nil {
		t.Fatalf("ApplyRetention: %v", err)
	}
	if rep.PrunedTo != 46 {
		t.Fatalf("retention pruned to %d, want 46 (every sealed record): %+v", rep.PrunedTo, rep)
	}
	// The power goes now, before Close signs records 47 on.
	l.fs = fsys.CrashClone(vfs.CrashOptions{Seed: 1, KeepSectorProb: 1, KeepDirOpProb: 1})
	s.Close()

	s = l.open(t, quiet)
	l.write(t, s, 2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	vr, err := l.verify(t)
	if err != nil || !vr.OK {
		t.Fatalf("verify: %v %+v", err, vr)
	}
	if vr.Retention == nil || vr.Retention.Size != 46 || vr.FirstSeq != 47 {
		t.Fatalf("verify: retention %+v, first record %d; want pruned to 46, first 47", vr.Retention, vr.FirstSeq)
	}
}

// TestRetentionOlderCheckpointSwappedIn: the attack on the path above.
// Someone without the key replaces the retention checkpoint by an older,
// genuinely signed one of a smaller prefix, hoping open then skips the
// check of the records the newest checkpoint covers. The log starts after
// what that checkpoint accounts for, so open refuses it as tampered.
func TestRetentionOlderCheckpointSwappedIn(t *testing.T) {
	fsys := vfs.NewCrashFS()
	l := newRetLog(t, fsys)
	l.dir = "/audit"
	s := l.open(t)
	l.write(t, s, 400)
	l.clk.add(200 * 24 * time.Hour)
	if rep, err := s.ApplyRetention(context.Background(), false); err != nil || rep.Deleted == 0 {
		t.Fatalf("first retention run: %v %+v", err, rep)
	}
	older := readFile(t, fsys, "/audit/retention.checkpoint")
	l.clk.add(300 * 24 * time.Hour)
	l.write(t, s, 10)
	rep, err := s.ApplyRetention(context.Background(), false)
	if err != nil || rep.Deleted == 0 {
		t.Fatalf("second retention run: %v %+v", err, rep)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, fsys, "/audit/retention.checkpoint", older)
	_, err = audit.New(audit.WithWAL(l.dir, audit.WithSegmentSize(4096)), audit.WithFileSystem(fsys), audit.WithSigningKey(l.skey),
		audit.WithClock(l.clk.now), audit.WithRetention(365*24*time.Hour))
	if !errors.Is(err, audit.ErrIntegrity) {
		t.Fatalf("New with an older retention checkpoint swapped in: %v, want ErrIntegrity", err)
	}
}

func readFile(t *testing.T, fsys vfs.FS, name string) []byte {
	t.Helper()
	f, err := fsys.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := fsys.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, fsys vfs.FS, name string, b []byte) {
	t.Helper()
	if err := fsys.Remove(name); err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
