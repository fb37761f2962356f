package audit_test

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// appendForged appends n forged events to the log in dir the way anyone
// without the key can: through the wal package itself (correct segment
// chain, checksums and whitening), in batches of one record. With crash set
// the WAL is released without a seal, as a crashed writer leaves it.
func appendForged(t *testing.T, dir string, n int, crash bool) {
	t.Helper()
	w, err := wal.Open(vfs.OS(), dir, wal.Options{SegmentSize: attackSeg})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		ev := &audit.Event{Timestamp: time.Unix(1_900_000_000+int64(i), 0).UTC(), MessageTemplate: "granted admin to {User}", Properties: map[string]any{"User": "mallory"}}
		b, err := event.AppendEncode(nil, ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Append(context.Background(), wal.RecordEvent, ev.Timestamp.UnixNano(), b); err != nil {
			t.Fatal(err)
		}
	}
	if crash {
		err = w.Release()
	} else {
		err = w.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// stripSeal makes a cleanly closed log look crashed: the last segment's
// last sector (its seal) is cut off.
func stripSeal(t *testing.T, dir string) {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	last := segs[len(segs)-1]
	fi, err := os.Stat(last)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(last, fi.Size()-wal.SectorSize); err != nil {
		t.Fatal(err)
	}
}

// Hole 1 of issue 13: forged records appended to a signed log after its
// last checkpoint must never be signed when the writer restarts. Today's
// writer refuses to open the log, naming the segment file of the first
// forged batch; the anchor taken before never covers a forged record.
func TestForgedTailIsNeverSigned(t *testing.T) {
	cases := []struct {
		name                              string
		stripSeal, crash, nocps, dropLast bool
		n                                 int // forged records (default 3)
	}{
		{name: "seal replaced by one forged record", stripSeal: true, crash: true, n: 1},
		{name: "seal and last checkpoint stripped: genuine tail, then forged", stripSeal: true, dropLast: true},
		{name: "seal and last checkpoint stripped, crashed forger", stripSeal: true, dropLast: true, crash: true},
		{name: "appended after the seal"},
		{name: "after the seal, crashed forger", crash: true},
		{name: "seal stripped, appended to the last segment", stripSeal: true},
		{name: "seal stripped, crashed forger", stripSeal: true, crash: true},
		{name: "after the seal, checkpoints deleted", nocps: true},
		{name: "seal stripped, checkpoints deleted", stripSeal: true, crash: true, nocps: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, sk, vk := signedLog(t, 20, 7)
			anchor := lastCheckpoint(t, dir)
			before := readRecords(t, dir)
			if c.stripSeal {
				stripSeal(t, dir)
			}
			if c.dropLast { // roll the checkpoints back to before the seal
				cps, err := integrity.ReadCheckpointLog(vfs.OS(), filepath.Join(dir, integrity.CheckpointsFile))
				if err != nil {
					t.Fatal(err)
				}
				rewriteCheckpoints(t, dir, cps[:len(cps)-1])
				anchor = cps[len(cps)-2]
			}
			n := c.n
			if n == 0 {
				n = 3
			}
			appendForged(t, dir, n, c.crash)
			if c.nocps {
				os.Remove(filepath.Join(dir, integrity.CheckpointsFile))
			}
			s, err := audit.New(audit.WithWAL(dir, audit.WithSegmentSize(attackSeg)), audit.WithSigningKey(sk))
			if err == nil {
				s.Write(context.Background(), &audit.Event{Timestamp: time.Now(), MessageTemplate: "after restart"})
				s.Close()
				rep, verr := audit.Verify(context.Background(), dir, audit.WithTrustedKeys(vk), audit.WithAnchor(anchor))
				t.Fatalf("the writer opened a log with forged records after its last checkpoint and signed them (verify with the earlier anchor: %v, uncovered %d)", verr, rep.UncoveredTail())
			}
			if !errors.Is(err, audit.ErrIntegrity) {
				t.Fatalf("want an integrity error, got %v", err)
			}
			if !strings.Contains(err.Error(), "offset") || !strings.Contains(err.Error(), ".wal") {
				t.Fatalf("the error must name the segment file and offset: %v", err)
			}
			// Nothing signed covers a forged record.
			rep, _ := audit.Verify(context.Background(), dir, audit.WithTrustedKeys(vk))
			if rep != nil && rep.Covered > uint64(len(before)) {
				t.Fatalf("a checkpoint covers %d records, the genuine log had %d", rep.Covered, len(before))
			}
		})
	}
}

// The refusal names the forged batch exactly, and matches
// ErrUnauthenticated; the genuine records before it are untouched.
func TestForgedTailErrorNamesBatch(t *testing.T) {
	dir, sk, _ := signedLog(t, 20, 7)
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	appendForged(t, dir, 2, false)
	after, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	forged := after[len(segs)] // the first segment the forger created
	_, err := audit.New(audit.WithWAL(dir, audit.WithSegmentSize(attackSeg)), audit.WithSigningKey(sk))
	if !errors.Is(err, audit.ErrUnauthenticated) || !errors.Is(err, audit.ErrIntegrity) {
		t.Fatalf("want ErrUnauthenticated, got %v", err)
	}
	if !strings.Contains(err.Error(), forged) || !strings.Contains(err.Error(), "at offset 512") {
		t.Fatalf("the error must name %s at offset 512: %v", forged, err)
	}
}

// A log written unsigned and later opened with a key is refused (its
// records carry no tags), with an error that says what to do.
func TestUnsignedTailRefusedWithKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	s, err := audit.New(audit.WithWAL(dir))
	if err != nil {
		t.Fatal(err)
	}
	s.Write(context.Background(), &audit.Event{Timestamp: time.Now(), MessageTemplate: "unsigned"})
	s.Close()
	sk, _, _ := integrity.GenerateKey("audit.example/late")
	_, err = audit.New(audit.WithWAL(dir), audit.WithSigningKey(sk))
	if !errors.Is(err, audit.ErrUnauthenticated) || !strings.Contains(err.Error(), "no authentication tag") || !strings.Contains(err.Error(), "recover") {
		t.Fatalf("want a clear ErrUnauthenticated, got %v", err)
	}
}

// A forward-secure log reopens after every rotation, and after a crash at
// any point, rotations included: the batches tagged with a retired epoch's
// key are covered by a checkpoint or checked with the key kept for them.
func TestForwardSecureTailReopens(t *testing.T) {
	sk, vk, _ := integrity.GenerateKey("audit.example/fs")
	for seed := int64(1); seed <= 30; seed++ {
		fsys := vfs.NewCrashFS()
		s, err := audit.New(audit.WithWAL("/log", audit.WithSegmentSize(attackSeg)), audit.WithFileSystem(fsys), audit.WithSigningKey(sk),
			audit.WithCheckpoints(2, time.Millisecond, time.Hour), audit.WithForwardSecurity(time.Nanosecond))
		if err != nil {
			t.Fatal(err)
		}
		var crashed *vfs.CrashFS
		for i := 0; i < 40; i++ {
			if int64(i) == seed {
				crashed = fsys.CrashClone(vfs.CrashOptions{Seed: seed, KeepSectorProb: 0.5, KeepDirOpProb: 0.5})
			}
			if _, err := s.Write(context.Background(), &audit.Event{Timestamp: time.Now(), MessageTemplate: "e"}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		for _, f := range []*vfs.CrashFS{fsys, crashed} {
			s2, err := audit.New(audit.WithWAL("/log"), audit.WithFileSystem(f), audit.WithSigningKey(sk), audit.WithForwardSecurity(time.Hour))
			if err != nil {
				t.Fatalf("seed %d: reopen: %v", seed, err)
			}
			if _, err := s2.Write(context.Background(), &audit.Event{Timestamp: time.Now(), MessageTemplate: "after"}); err != nil {
				t.Fatal(err)
			}
			if err := s2.Close(); err != nil {
				t.Fatal(err)
			}
			if rep, err := audit.VerifyFS(context.Background(), f, "/log", audit.WithTrustedKeys(vk)); err != nil || rep.UncoveredTail() != 0 {
				t.Fatalf("seed %d: %v %+v", seed, err, rep)
			}
		}
	}
}

// A signed log written before batch tags existed (format version 1), whose
// writer crashed after its last checkpoint covered every record, reopens:
// the new writer seals the version 1 segment (untagged: version 1 has no
// tags) and continues in a tagged version 2 segment; a crash before the next
// checkpoint leaves that untagged seal in the uncovered tail, and it is
// accepted there, since its content is fixed by the covered records.
func TestVersion1LogUpgrades(t *testing.T) {
	sk, vk, _ := integrity.GenerateKey("audit.example/v1")
	signer, _ := integrity.NewSigner(sk)
	dir := filepath.Join(t.TempDir(), "log")
	w, err := wal.Open(vfs.OS(), dir, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := integrity.NewBuilder()
	for i := 0; i < 5; i++ {
		p, _ := event.AppendEncode(nil, &audit.Event{Timestamp: time.Unix(1_800_000_000+int64(i), 0).UTC(), MessageTemplate: "old {N}", Properties: map[string]any{"N": i}})
		ts := time.Unix(1_800_000_000+int64(i), 0).UnixNano()
		if _, err := w.Append(context.Background(), wal.RecordEvent, ts, p); err != nil {
			t.Fatal(err)
		}
		b.Append(ts, uint8(wal.RecordEvent), integrity.PayloadHash(p))
	}
	w.Release() // an older build crashed: no seal
	// As an older build wrote it: version 1 headers, and a checkpoint
	// covering every record.
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	setSegmentVersion1(t, segs[0])
	cp, err := integrity.SignCheckpoint(integrity.Checkpoint{Origin: signer.Name(), Size: b.Size(), Root: b.Root(), Time: time.Now().UTC()}, signer)
	if err != nil {
		t.Fatal(err)
	}
	rewriteCheckpoints(t, dir, [][]byte{cp})

	s, err := audit.New(audit.WithWAL(dir), audit.WithSigningKey(sk), audit.WithCheckpoints(1000, time.Hour, time.Hour))
	if err != nil {
		t.Fatalf("a covered version 1 log must reopen: %v", err)
	}
	if _, err := s.Write(context.Background(), &audit.Event{Timestamp: time.Now(), MessageTemplate: "new"}); err != nil {
		t.Fatal(err)
	}
	// The writer crashes before the checkpoint that the seal asked for
	// was stored.
	crashed := copyDir(t, dir)
	rewriteCheckpoints(t, crashed, [][]byte{cp})
	s.Close()
	for _, d := range []string{dir, crashed} {
		s, err := audit.New(audit.WithWAL(d), audit.WithSigningKey(sk))
		if err != nil {
			t.Fatalf("%s: reopen: %v", d, err)
		}
		s.Close()
		if rep, err := audit.Verify(context.Background(), d, audit.WithTrustedKeys(vk)); err != nil || rep.UncoveredTail() != 0 {
			t.Fatalf("%s: %v %+v", d, err, rep)
		}
	}
}

// setSegmentVersion1 rewrites a segment header's format version to 1 (and
// its checksum), as an older build wrote it; the segment must be untagged.
func setSegmentVersion1(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint16(b[8:], 1)
	binary.LittleEndian.PutUint32(b[80:], crc32.Checksum(b[:80], crc32.MakeTable(crc32.Castagnoli)))
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

// A forger without any key appends records to a forward-secure log that has
// rotated, then appends to `checkpoints` a checkpoint of the whole log
// (its root recomputed from public data) that claims an earlier epoch and
// carries a signature by a key of his own. The writer must not take that
// checkpoint's word for the records it covers: it refuses to open, and
// nothing signed covers a forged record (found by review of issue 13's
// change: the newest rotation statement, read anywhere in the log, made
// the unsigned checkpoint's epoch look like a crash between a rotation and
// the next checkpoint).
func TestForgedCheckpointOfEarlierEpochIsNotTrusted(t *testing.T) {
	for _, claim := range []string{"epoch 0", "the current epoch", "the previous epoch"} {
		t.Run(claim, func(t *testing.T) { testForgedCheckpointClaiming(t, claim) })
	}
}

func testForgedCheckpointClaiming(t *testing.T, claim string) {
	sk, vk, _ := integrity.GenerateKey("audit.example/fs")
	dir := filepath.Join(t.TempDir(), "log")
	opts := []audit.Option{audit.WithWAL(dir, audit.WithSegmentSize(attackSeg)), audit.WithSigningKey(sk),
		audit.WithCheckpoints(2, time.Millisecond, time.Hour), audit.WithForwardSecurity(time.Nanosecond)}
	s, err := audit.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		if _, err := s.Write(context.Background(), &audit.Event{Timestamp: time.Unix(1_800_000_000+int64(i), 0).UTC(), MessageTemplate: "e"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	genuine := readRecords(t, dir)
	var rotations int
	for _, r := range genuine {
		if r.typ == wal.RecordMeta {
			rotations++
		}
	}
	if rotations == 0 {
		t.Fatal("the log never rotated; the attack needs a rotation")
	}
	appendForged(t, dir, 3, false)
	// The forger's checkpoint: the root of every record, in the claimed
	// epoch, signed by a key of the same name that is not the log's.
	epoch := uint64(0)
	switch claim {
	case "the current epoch":
		epoch = uint64(rotations)
	case "the previous epoch":
		epoch = uint64(rotations - 1)
	}
	b := integrity.NewBuilder()
	for _, r := range readRecords(t, dir) {
		b.Append(r.time, uint8(r.typ), integrity.PayloadHash(r.payload))
	}
	forgerSK, _, _ := integrity.GenerateKey("audit.example/fs")
	forger, err := integrity.NewSigner(forgerSK)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := integrity.SignCheckpoint(integrity.Checkpoint{Origin: "audit.example/fs", Size: b.Size(), Root: b.Root(), Time: time.Now().UTC(), Epoch: epoch}, forger)
	if err != nil {
		t.Fatal(err)
	}
	cps, err := integrity.ReadCheckpointLog(vfs.OS(), filepath.Join(dir, integrity.CheckpointsFile))
	if err != nil {
		t.Fatal(err)
	}
	rewriteCheckpoints(t, dir, append(cps, forged))
	s, err = audit.New(audit.WithWAL(dir, audit.WithSegmentSize(attackSeg)), audit.WithSigningKey(sk), audit.WithForwardSecurity(time.Hour))
	if err == nil {
		s.Write(context.Background(), &audit.Event{Timestamp: time.Now(), MessageTemplate: "after restart"})
		s.Close()
		rep, _ := audit.Verify(context.Background(), dir, audit.WithTrustedKeys(vk))
		t.Fatalf("the writer opened a log whose last checkpoint is a forgery covering forged records (verified covered: %d of %d genuine records)", rep.Covered, len(genuine))
	}
	if !errors.Is(err, audit.ErrIntegrity) {
		t.Fatalf("want an integrity error, got %v", err)
	}
}
