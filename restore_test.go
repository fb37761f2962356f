package audit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/faultbackend"
	"github.com/willibrandon/mtlog-audit/internal/remotetest"
	"github.com/willibrandon/mtlog-audit/internal/testutil"
	"github.com/willibrandon/mtlog-audit/replica"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// segKeys returns the segment object keys of b, by segment number.
func segKeys(t *testing.T, b backends.Backend) map[uint64]string {
	t.Helper()
	infos, err := b.List(context.Background(), replica.SegmentsPrefix)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]string{}
	for _, in := range infos {
		o, err := replica.ParseSegmentKey(in.Key)
		if err != nil {
			t.Fatal(err)
		}
		out[o.Segment] = in.Key
	}
	return out
}

// forgeSegment puts into b a version of segment n of dir with one record's byte
// altered, under a valid name (its own hash): only verification tells it
// from the real one.
func forgeSegment(t *testing.T, dir string, n uint64, key string, b backends.Backend) string {
	t.Helper()
	data := testutil.ReadFile(t, vfs.OS(), filepath.Join(dir, wal.SegmentName(n)))
	data[len(data)/3] ^= 0x01
	o, err := replica.ParseSegmentKey(key)
	if err != nil {
		t.Fatal(err)
	}
	o.SHA256 = sha256.Sum256(data)
	remotetest.PutObject(t, b, o.Key(), data)
	return o.Key()
}

// copyExcept copies every object of src except skip into dst.
func copyExcept(t *testing.T, src, dst backends.Backend, skip string) {
	t.Helper()
	infos, err := src.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if in.Key == skip {
			continue
		}
		data, err := src.Get(context.Background(), in.Key)
		if err != nil {
			t.Fatal(err)
		}
		remotetest.PutObject(t, dst, in.Key, data)
	}
}

func hasBad(rep *audit.RestoreReport, backend, key string) bool {
	return slices.ContainsFunc(rep.Bad, func(b replica.BadObject) bool { return b.Backend == backend && b.Key == key })
}

// TestRestoreByzantine restores a signed log from four backends: an honest
// one, a Byzantine one that returns bit-flipped, truncated and stale objects
// and lists objects that do not exist, and two that hold, under valid names, a
// forged version of a segment (a majority against the honest one). The
// restored log is the original byte for byte and verifies; every bad
// object is named.
func TestRestoreByzantine(t *testing.T) {
	ctx := context.Background()
	dir, _, vk := signedLog(t, 60, 10)
	honest := remotetest.FSBackend(t)
	remotetest.Ship(t, dir, honest)
	keys := segKeys(t, honest)
	if len(keys) < 3 {
		t.Fatalf("want at least 3 segments, have %d", len(keys))
	}
	z := faultbackend.New(remotetest.FSBackend(t))
	remotetest.Ship(t, dir, z.Inner())
	z.LieAbout(keys[1], faultbackend.LieBitFlipRead)
	z.LieAbout(keys[2], faultbackend.LieTruncatedRead)
	z.LieStale(keys[3], keys[2]) // another object's bytes
	phantom := replica.SegmentObject{Segment: 9999, FirstSeq: 1, LastSeq: 2}.Key()
	z.SetPhantoms(phantom)
	f1, f2 := remotetest.FSBackend(t), remotetest.FSBackend(t)
	var forged string
	for _, b := range []backends.Backend{f1, f2} {
		copyExcept(t, honest, b, keys[2])
		forged = forgeSegment(t, dir, 2, keys[2], b)
	}

	out := filepath.Join(t.TempDir(), "restored")
	rep, err := audit.Restore(ctx, vfs.OS(), out, []backends.Backend{honest, z, f1, f2}, audit.WithTrustedKeys(vk))
	if err != nil {
		t.Fatalf("restore: %v (report %+v)", err, rep)
	}
	if !rep.Verified {
		t.Fatalf("not verified: %+v", rep.Problem)
	}
	for n := range keys {
		want := testutil.ReadFile(t, vfs.OS(), filepath.Join(dir, wal.SegmentName(n)))
		got := testutil.ReadFile(t, vfs.OS(), filepath.Join(out, wal.SegmentName(n)))
		if !bytes.Equal(got, want) {
			t.Errorf("segment %d differs from the original", n)
		}
	}
	vrep, err := audit.Verify(ctx, out, audit.WithTrustedKeys(vk))
	if err != nil || vrep.Records != 60+uint64(len(keys)) && vrep.Events != 60 {
		t.Fatalf("restored log: %v, %+v", err, vrep)
	}
	if vrep.Events != 60 || vrep.UncoveredTail() != 0 {
		t.Fatalf("restored log has %d events, %d uncovered", vrep.Events, vrep.UncoveredTail())
	}
	for _, want := range []struct{ backend, key string }{
		{z.Name(), keys[1]}, {z.Name(), keys[2]}, {z.Name(), keys[3]}, {z.Name(), phantom}, {f1.Name(), forged}, {f2.Name(), forged},
	} {
		if !hasBad(rep, want.backend, want.key) {
			t.Errorf("report does not name %s %s as bad: %v", want.backend, want.key, rep.Bad)
		}
	}
	if !slices.ContainsFunc(rep.Bad, func(b replica.BadObject) bool {
		return b.Key == forged && strings.Contains(b.Reason, "does not verify")
	}) {
		t.Errorf("the forged majority's version was not taken and rejected by verification: %v", rep.Bad)
	}
	for _, b := range rep.Bad {
		if b.Backend == honest.Name() {
			t.Errorf("the honest backend is named bad: %s", b)
		}
	}
}

// TestRestoreOnlyForgedFails: when every source holds only a forged version
// of a segment, the restore is not verified, and says so.
func TestRestoreOnlyForgedFails(t *testing.T) {
	dir, _, vk := signedLog(t, 30, 10)
	src := remotetest.FSBackend(t)
	remotetest.Ship(t, dir, src)
	keys := segKeys(t, src)
	b := remotetest.FSBackend(t)
	copyExcept(t, src, b, keys[1])
	forgeSegment(t, dir, 1, keys[1], b)
	rep, err := audit.Restore(context.Background(), vfs.OS(), filepath.Join(t.TempDir(), "r"), []backends.Backend{b}, audit.WithTrustedKeys(vk))
	if !errors.Is(err, replica.ErrNotVerified) || rep == nil || rep.Verified || rep.Problem == nil {
		t.Fatalf("err %v, report %+v", err, rep)
	}
}

// TestRestoreBadInput: a non-empty directory and a backend with no log.
func TestRestoreBadInput(t *testing.T) {
	ctx := context.Background()
	dir, _, vk := signedLog(t, 10, 10)
	b := remotetest.FSBackend(t)
	_, err := audit.Restore(ctx, vfs.OS(), t.TempDir(), []backends.Backend{b}, audit.WithTrustedKeys(vk))
	if !errors.Is(err, replica.ErrEmptyBackend) || !strings.Contains(err.Error(), b.Name()) {
		t.Fatalf("empty backend: %v", err)
	}
	remotetest.Ship(t, dir, b)
	_, err = audit.Restore(ctx, vfs.OS(), dir, []backends.Backend{b}, audit.WithTrustedKeys(vk))
	if !errors.Is(err, replica.ErrNotEmpty) {
		t.Fatalf("non-empty directory: %v", err)
	}
}

// TestRestoreContinuedSegment: a segment continued after a clean Close is
// shipped twice; restore takes the longer version.
func TestRestoreContinuedSegment(t *testing.T) {
	ctx := context.Background()
	dir, sk, vk := signedLog(t, 5, 5)
	b := remotetest.FSBackend(t)
	remotetest.Ship(t, dir, b)
	writeMore(t, dir, sk, 5, 5)
	remotetest.Ship(t, dir, b)
	out := filepath.Join(t.TempDir(), "r")
	rep, err := audit.Restore(ctx, vfs.OS(), out, []backends.Backend{b}, audit.WithTrustedKeys(vk))
	if err != nil {
		t.Fatal(err)
	}
	vrep, err := audit.Verify(ctx, out, audit.WithTrustedKeys(vk))
	if err != nil || vrep.Events != 10 {
		t.Fatalf("restored: %v, %d events, report %+v", err, vrep.Events, rep)
	}
}

// writeMore reopens the log in dir, writes n more events with a checkpoint
// every `every`, and closes it.
func writeMore(t *testing.T, dir, sk string, n, every int) {
	t.Helper()
	s, err := audit.New(audit.WithWAL(dir, audit.WithSegmentSize(attackSeg)), audit.WithSigningKey(sk), audit.WithCheckpoints(every, time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cps := awaitCheckpoint(t, dir, 0)
	for i := 0; i < n; i++ {
		if _, err := s.Write(context.Background(), &audit.Event{Timestamp: time.Unix(1_900_000_000+int64(i), 0).UTC(), MessageTemplate: "more {N}", Properties: map[string]any{"N": i}}); err != nil {
			t.Fatal(err)
		}
		if (i+1)%every == 0 {
			cps = awaitCheckpoint(t, dir, cps)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAnchorFromBackendCatchesRollback: an attacker with root rolls the log
// back to an earlier state (records and checkpoints consistent, signed with
// the real key, so local verification passes), or deletes the newest
// records and checkpoints. The newest checkpoint in the backend, taken as
// the anchor, catches both.
func TestAnchorFromBackendCatchesRollback(t *testing.T) {
	ctx := context.Background()
	dir, sk, vk := signedLog(t, 20, 10)
	old := filepath.Join(t.TempDir(), "old")
	if err := os.CopyFS(old, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	writeMore(t, dir, sk, 40, 10)
	b := remotetest.FSBackend(t)
	remotetest.Ship(t, dir, b)

	note, cp, _, err := replica.NewestCheckpoint(ctx, b, []string{vk})
	if err != nil || cp.Size < 60 {
		t.Fatalf("newest checkpoint: size %d, %v", cp.Size, err)
	}
	if rep, err := audit.Verify(ctx, dir, audit.WithTrustedKeys(vk), audit.WithAnchor(note)); err != nil || rep.Problem != nil {
		t.Fatalf("the intact log fails the anchor: %v", err)
	}
	// The rollback: the old state replaces the log.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(dir, os.DirFS(old)); err != nil {
		t.Fatal(err)
	}
	if rep, err := audit.Verify(ctx, dir, audit.WithTrustedKeys(vk)); err != nil || rep.Problem != nil {
		t.Fatalf("local verification should pass on the rolled-back log: %v", err)
	}
	rep, err := audit.Verify(ctx, dir, audit.WithTrustedKeys(vk), audit.WithAnchor(note))
	if err == nil || rep == nil || rep.Problem == nil || rep.Problem.Code != integrity.CodeAnchorMismatch {
		t.Fatalf("anchored verification of the rolled-back log: %v, %+v", err, rep)
	}
}

// TestNewestCheckpointSkipsBadObjects: a tampered and a phantom checkpoint newer than the real ones are skipped and named.
func TestNewestCheckpointSkipsBadObjects(t *testing.T) {
	ctx := context.Background()
	dir, _, vk := signedLog(t, 20, 10)
	z := faultbackend.New(remotetest.FSBackend(t))
	remotetest.Ship(t, dir, z.Inner())
	infos, _ := z.List(ctx, replica.CheckpointsPrefix)
	newest := infos[len(infos)-1].Key
	z.LieAbout(newest, faultbackend.LieBitFlipRead)
	phantom := replica.CheckpointObject{Size: 1 << 40}.Key()
	z.SetPhantoms(phantom)
	next, _ := replica.ParseCheckpointKey(infos[len(infos)-2].Key)
	_, cp, bad, err := replica.NewestCheckpoint(ctx, z, []string{vk})
	if err != nil || cp.Size != next.Size {
		t.Fatalf("newest good checkpoint: size %d, %v", cp.Size, err)
	}
	for _, k := range []string{newest, phantom} {
		if !slices.ContainsFunc(bad, func(b replica.BadObject) bool { return b.Key == k }) {
			t.Errorf("%s not named bad: %v", k, bad)
		}
	}
}

// TestCompareNamesDifferences: a local byte altered, a local segment
// deleted, and a Byzantine backend's phantom and truncated objects.
func TestCompareNamesDifferences(t *testing.T) {
	ctx := context.Background()
	dir, _, _ := signedLog(t, 40, 10)
	z := faultbackend.New(remotetest.FSBackend(t))
	remotetest.Ship(t, dir, z.Inner())
	c, err := replica.Compare(ctx, vfs.OS(), dir, z)
	if err != nil || len(c.Diffs) != 0 {
		t.Fatalf("identical: %v %+v", err, c)
	}
	keys := segKeys(t, z)
	testutil.XorByte(t, vfs.OS(), filepath.Join(dir, wal.SegmentName(1)), 700, 0x04)
	last := uint64(len(keys))
	if err := os.Remove(filepath.Join(dir, wal.SegmentName(last))); err != nil {
		t.Fatal(err)
	}
	phantom := replica.SegmentObject{Segment: 1, FirstSeq: 1, LastSeq: 1}.Key()
	z.SetPhantoms(phantom)
	z.LieAbout(keys[2], faultbackend.LieTruncatedRead)
	c, err = replica.Compare(ctx, vfs.OS(), dir, z)
	if err != nil {
		t.Fatal(err)
	}
	want := map[replica.DiffKind]string{replica.DiffBytes: keys[1], replica.DiffMissingLocal: keys[last], replica.DiffBadObject: phantom}
	for kind, key := range want {
		if !slices.ContainsFunc(c.Diffs, func(d replica.Diff) bool { return d.Kind == kind && d.Key == key }) {
			t.Errorf("no %s difference for %s: %+v", kind, key, c.Diffs)
		}
	}
	if !slices.ContainsFunc(c.Diffs, func(d replica.Diff) bool { return d.Kind == replica.DiffBadObject && d.Key == keys[2] }) {
		t.Errorf("the truncated object %s is not named: %+v", keys[2], c.Diffs)
	}
}

// TestRestoreGapBlamesNoVersion: with a segment missing from every source,
// the log cannot verify; the versions of the next segment tried in vain
// are not named bad for it (the fault is the gap, not them).
func TestRestoreGapBlamesNoVersion(t *testing.T) {
	dir, _, vk := signedLog(t, 40, 10)
	honest := remotetest.FSBackend(t)
	remotetest.Ship(t, dir, honest)
	keys := segKeys(t, honest)
	a, b := remotetest.FSBackend(t), remotetest.FSBackend(t)
	copyExcept(t, honest, a, keys[2])
	copyExcept(t, honest, b, keys[2])
	forgeSegment(t, dir, 3, keys[3], b)
	rep, err := audit.Restore(context.Background(), vfs.OS(), filepath.Join(t.TempDir(), "r"), []backends.Backend{a, b}, audit.WithTrustedKeys(vk))
	if !errors.Is(err, replica.ErrNotVerified) || rep == nil || rep.Verified {
		t.Fatalf("err %v, report %+v", err, rep)
	}
	for _, bo := range rep.Bad {
		if bo.Key == keys[3] {
			t.Errorf("the real segment 3 is named bad: %s", bo)
		}
	}
}
