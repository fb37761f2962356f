package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/testutil"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// firstSeqOf returns the sequence number of the first record of segment n.
func firstSeqOf(t *testing.T, dir string, n uint64) uint64 {
	t.Helper()
	var first uint64
	if _, err := wal.Check(context.Background(), vfs.OS(), dir, func(r wal.Record) error {
		if r.Segment == n && first == 0 {
			first = r.Seq
		}
		return nil
	}); err != nil || first == 0 {
		t.Fatalf("segment %d: first seq %d, %v", n, first, err)
	}
	return first
}

// A deleted middle segment is reported at the first missing record, and
// every record before it counts as verified (issue 13, hole 5).
func TestDeletedMiddleSegmentIndex(t *testing.T) {
	dir, _, vk := signedLog(t, 60, 7)
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(segs) < 4 {
		t.Fatalf("want ≥ 4 segments, have %d", len(segs))
	}
	const gone = 3
	want := firstSeqOf(t, dir, gone) - 1 // index of the first missing record
	if err := os.Remove(segs[gone-1]); err != nil {
		t.Fatal(err)
	}
	for _, keys := range [][]audit.VerifyOption{nil, {audit.WithTrustedKeys(vk)}} {
		rep, err := audit.Verify(context.Background(), dir, keys...)
		if err == nil || rep == nil || rep.Problem == nil {
			t.Fatalf("a deleted segment verified: %v %+v", err, rep)
		}
		p := rep.Problem
		if p.Code != integrity.CodeRecordCorrupt || !p.Exact || p.Index != want || p.Segment != gone {
			t.Fatalf("problem %+v: want record-corrupt at index %d in segment %d", p, want, gone)
		}
		if rep.Records != want || rep.LastSeq != want {
			t.Fatalf("records before the gap: %d (last seq %d), want %d", rep.Records, rep.LastSeq, want)
		}
	}
}

// A stored checkpoint that cannot be parsed names the checkpoint and does
// not claim that record 0 is bad (issue 13, hole 5).
func TestUnparseableCheckpointIndex(t *testing.T) {
	dir, _, vk := signedLog(t, 30, 7)
	cps, err := integrity.ReadCheckpointLog(vfs.OS(), filepath.Join(dir, integrity.CheckpointsFile))
	if err != nil || len(cps) < 4 {
		t.Fatalf("%d checkpoints, %v", len(cps), err)
	}
	offset := func(i int) int64 {
		var off int64
		for _, c := range cps[:i] {
			off += 8 + int64(len(c))
		}
		return off
	}
	for _, bad := range [][]byte{[]byte("not a checkpoint"), []byte("garbage\n\n— sig\n")} {
		t.Run("middle", func(t *testing.T) {
			c := copyDir(t, dir)
			entries := append([][]byte{}, cps...)
			entries[2] = bad
			rewriteCheckpoints(t, c, entries)
			rep, _ := audit.Verify(context.Background(), c, audit.WithTrustedKeys(vk))
			p := rep.Problem
			if p == nil || p.Code != integrity.CodeCheckpointSignature {
				t.Fatalf("want checkpoint-signature, got %+v", p)
			}
			where := fmt.Sprintf("stored checkpoint 3 of %d (the entry at byte offset %d", len(cps), offset(2))
			if p.Exact || p.RangeEnd > p.Index || p.Index != rep.Records || rep.Covered != rep.Records || !strings.Contains(p.Detail, where) {
				t.Fatalf("problem %+v (records %d, covered %d): want no record implicated and %q", p, rep.Records, rep.Covered, where)
			}
			if !strings.Contains(p.Error(), "no record implicated") {
				t.Fatalf("error %q", p.Error())
			}
		})
	}
	t.Run("last", func(t *testing.T) {
		// The newest checkpoint is unreadable: the records it covered are
		// not proven, those before the previous checkpoint are.
		c := copyDir(t, dir)
		entries := append([][]byte{}, cps...)
		entries[len(entries)-1] = []byte("not a checkpoint")
		rewriteCheckpoints(t, c, entries)
		rep, _ := audit.Verify(context.Background(), c, audit.WithTrustedKeys(vk))
		p := rep.Problem
		prev, err := integrity.ParseCheckpointBody(string(cps[len(cps)-2][:strings.LastIndex(string(cps[len(cps)-2]), "\n\n")+1]))
		if err != nil {
			t.Fatal(err)
		}
		if p == nil || p.Code != integrity.CodeCheckpointSignature || p.Exact || p.Index != prev.Size || p.RangeEnd != rep.Records || p.Index == 0 {
			t.Fatalf("problem %+v: want the range [%d, %d)", p, prev.Size, rep.Records)
		}
	})
}

// An event record whose checksums hold but whose encoding does not decode
// fails verification, named by index, segment and offset: "verified" means
// replay and export can read every event (issue 13, hole 5).
func TestVerifyDecodesEvents(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	w, err := wal.Open(vfs.OS(), dir, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	good, err := event.AppendEncode(nil, &audit.Event{Timestamp: time.Unix(1_800_000_000, 0).UTC(), MessageTemplate: "ok"})
	if err != nil {
		t.Fatal(err)
	}
	bad := append(append([]byte(nil), good...), 0x00) // a trailing byte: valid checksums, invalid encoding
	for i := range 9 {
		p := good
		if i == 5 {
			p = bad
		}
		if _, err := w.Append(context.Background(), wal.RecordEvent, 1_800_000_000_000_000_000+int64(i), p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var seg uint64
	var off int64
	wal.Check(context.Background(), vfs.OS(), dir, func(r wal.Record) error {
		if r.Seq == 6 {
			seg, off = r.Segment, r.Offset
		}
		return nil
	})
	// Replay cannot read it ...
	var replayErr error
	for _, err := range audit.Replay(context.Background(), dir, time.Time{}, time.Time{}) {
		if err != nil {
			replayErr = err
		}
	}
	if replayErr == nil {
		t.Fatal("replay read the malformed event")
	}
	// ... so verify must not pass it.
	rep, err := audit.Verify(context.Background(), dir)
	if err == nil || rep.OK || rep.Problem == nil {
		t.Fatalf("verify passed a log that replay cannot read: %v %+v", err, rep)
	}
	p := rep.Problem
	if p.Code != audit.Code("event-undecodable") || !p.Exact || p.Index != 5 || p.Segment != seg || p.Offset != off || seg == 0 {
		t.Fatalf("problem %+v: want event-undecodable at index 5, segment %d offset %d", p, seg, off)
	}
	if !errors.Is(err, audit.ErrIntegrity) || !errors.Is(err, event.ErrMalformed) {
		t.Fatalf("error %v should match ErrIntegrity and event.ErrMalformed", err)
	}
	if !strings.Contains(err.Error(), "sequence number 6") || !strings.Contains(err.Error(), fmt.Sprintf("segment %d offset %d", seg, off)) {
		t.Fatalf("error %q should name the sequence number, segment and offset", err)
	}
}

// RepairFromMirror without a key does not adopt a mirror's record that
// does not reproduce the stored checkpoints' roots, where the primary's own
// copy of it is damaged (issue 13, hole 5).
func TestRepairFromMirrorKeylessChecksStoredRoots(t *testing.T) {
	dir, _, vk := signedLog(t, 60, 7)
	k := eventIndex(t, dir, 30)
	mirror := forge(t, dir, func(rs []rec) []rec {
		p := bytes.Clone(rs[k].payload)
		p[bytes.Index(p, []byte("event"))] = 'E' // same length, valid encoding
		rs[k].payload = p
		return rs
	}, false)
	var seg uint64
	var off int64
	wal.Check(context.Background(), vfs.OS(), dir, func(r wal.Record) error {
		if r.Seq == k+1 {
			seg, off = r.Segment, r.Offset
		}
		return nil
	})
	primary := copyDir(t, dir)
	testutil.XorByte(t, vfs.OS(), filepath.Join(primary, wal.SegmentName(seg)), off+48+28+8, 0x10) // inside the record's payload
	rep, err := audit.RepairFromMirror(context.Background(), vfs.OS(), primary, mirror)
	if err == nil || !strings.Contains(err.Error(), "could not verify") {
		t.Fatalf("keyless repair from a forged mirror: %v\n%s", err, rep)
	}
	if _, err := audit.Verify(context.Background(), primary, audit.WithTrustedKeys(vk)); err == nil {
		t.Fatal("the primary now verifies: the forged record was adopted")
	}
	// The forger also rewrites the mirror's checkpoints file to match its
	// records (signed by another key of the same name: no key can tell
	// without the real one): the primary's stored roots still rule it out.
	// (The writer would refuse to sign the forged records, which carry no
	// batch tag, so the forger signs the checkpoint himself.)
	os.Remove(filepath.Join(mirror, integrity.CheckpointsFile))
	otherSK, _, _ := integrity.GenerateKey("audit.example/attack")
	forgeCheckpoint(t, mirror, otherSK)
	if rep, err := audit.Verify(context.Background(), mirror, audit.WithTrustedKeys(vk)); err == nil || rep.OK {
		t.Fatal("the forged mirror verifies with the real key")
	}
	rep, err = audit.RepairFromMirror(context.Background(), vfs.OS(), primary, mirror)
	if err == nil || !strings.Contains(err.Error(), "could not verify") {
		t.Fatalf("keyless repair from a forged mirror with its own checkpoints: %v\n%s", err, rep)
	}
	if _, err := audit.Verify(context.Background(), primary, audit.WithTrustedKeys(vk)); err == nil {
		t.Fatal("the primary now verifies: the forged record was adopted")
	}
	// A genuine mirror repairs the same damage, and the report says what
	// was checked without a key.
	rep, err = audit.RepairFromMirror(context.Background(), vfs.OS(), primary, copyDir(t, dir))
	if err != nil || !strings.Contains(rep.String(), "no key: signatures not checked, but the records reproduce the roots of") {
		t.Fatalf("keyless repair from a genuine mirror: %v\n%+v", err, rep)
	}
	if rep, err := audit.Verify(context.Background(), primary, audit.WithTrustedKeys(vk)); err != nil || !rep.OK {
		t.Fatalf("repaired primary: %v", err)
	}
}

// forgeCheckpoint signs, with skey, a checkpoint of every record in dir
// and stores it as dir's only checkpoint, as a forger holding a key of his
// own can.
func forgeCheckpoint(t *testing.T, dir, skey string) {
	t.Helper()
	b := integrity.NewBuilder()
	if _, err := wal.Check(context.Background(), vfs.OS(), dir, func(r wal.Record) error {
		b.Append(r.Time, uint8(r.Type), integrity.PayloadHash(r.Payload))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	signer, err := integrity.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := integrity.SignCheckpoint(integrity.Checkpoint{Origin: signer.Name(), Size: b.Size(), Root: b.Root(), Time: time.Now().UTC()}, signer)
	if err != nil {
		t.Fatal(err)
	}
	cps, err := integrity.OpenCheckpointLog(vfs.OS(), filepath.Join(dir, integrity.CheckpointsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := cps.Append(signed); err != nil {
		t.Fatal(err)
	}
	if err := cps.Close(); err != nil {
		t.Fatal(err)
	}
}
