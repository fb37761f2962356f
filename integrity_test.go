package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/testutil"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

const attackSeg = 4096

// signedLog writes n events, one at a time (one record per group commit, so
// that a forger writing the same records reproduces the same layout), with a
// checkpoint every `every` records, and closes the log.
func signedLog(t *testing.T, n, every int, extra ...audit.Option) (dir, sk, vk string) {
	t.Helper()
	sk, vk, err := integrity.GenerateKey("audit.example/attack")
	if err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(t.TempDir(), "log")
	opts := append([]audit.Option{audit.WithWAL(dir, audit.WithSegmentSize(attackSeg)), audit.WithSigningKey(sk), audit.WithCheckpoints(every, time.Hour, time.Hour)}, extra...)
	s, err := audit.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	cps := 0
	for i := 0; i < n; i++ {
		if _, err := s.Write(context.Background(), &audit.Event{Timestamp: time.Unix(1_800_000_000+int64(i), 0).UTC(), MessageTemplate: "event {N}", Properties: map[string]any{"N": i}}); err != nil {
			t.Fatal(err)
		}
		if (i+1)%every == 0 {
			cps = awaitCheckpoint(t, dir, cps)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, sk, vk
}

// awaitCheckpoint waits until the log in dir has more than have signed
// checkpoints and returns their number. The checkpointer coalesces requests
// that arrive while it is busy, so a test that counts on one checkpoint per
// `every` records waits for each before writing on (on a loaded machine the
// checkpointer may otherwise run once for several requests).
func awaitCheckpoint(t *testing.T, dir string, have int) int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		cps, err := integrity.ReadCheckpointLog(vfs.OS(), filepath.Join(dir, integrity.CheckpointsFile))
		if err == nil && len(cps) > have {
			return len(cps)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint after %d within a minute (%d stored, %v)", have, len(cps), err)
		}
		time.Sleep(time.Millisecond)
	}
}

type rec struct {
	typ     wal.RecordType
	time    int64
	payload []byte
}

func readRecords(t *testing.T, dir string) []rec {
	t.Helper()
	var out []rec
	if _, err := wal.Check(context.Background(), vfs.OS(), dir, func(r wal.Record) error {
		out = append(out, rec{r.Type, r.Time, bytes.Clone(r.Payload)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "copy")
	os.MkdirAll(to, 0o750)
	ents, _ := os.ReadDir(from)
	for _, e := range ents {
		if e.Name() != wal.LockName {
			copyFile(t, filepath.Join(from, e.Name()), filepath.Join(to, e.Name()))
		}
	}
	return to
}

// forge writes a new, internally consistent log (fresh checksums, sequence
// numbers, segment chain and seals) holding transform(records of src) minus
// seals (the forger's log writes its own), and copies src's signed checkpoints, which the forger cannot
// re-sign. keepTree copies src's stored tree; otherwise the forger rebuilds
// the tree from the forged records.
func forge(t *testing.T, src string, transform func([]rec) []rec, keepTree bool) string {
	t.Helper()
	var recs []rec
	for _, r := range transform(readRecords(t, src)) { // indexes are leaf indexes
		if r.typ != wal.RecordSeal {
			recs = append(recs, r)
		}
	}
	dst := filepath.Join(t.TempDir(), "forged")
	w, err := wal.Open(vfs.OS(), dst, wal.Options{SegmentSize: attackSeg})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if _, err := w.Append(context.Background(), r.typ, r.time, r.payload); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	if keepTree {
		copyFile(t, filepath.Join(src, integrity.NodesFile), filepath.Join(dst, integrity.NodesFile))
	} else {
		s, err := audit.New(audit.WithWAL(dst)) // rebuilds tree.nodes from the records
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	copyFile(t, filepath.Join(src, integrity.CheckpointsFile), filepath.Join(dst, integrity.CheckpointsFile))
	return dst
}

// eventIndex returns the leaf index of the n-th event record of dir.
func eventIndex(t *testing.T, dir string, n int) uint64 {
	for i, r := range readRecords(t, dir) {
		if r.typ == wal.RecordEvent {
			if n == 0 {
				return uint64(i)
			}
			n--
		}
	}
	t.Fatal("not enough events")
	return 0
}

func mustFail(t *testing.T, dir string, code audit.Code, opts ...audit.VerifyOption) *audit.Problem {
	t.Helper()
	rep, err := audit.Verify(context.Background(), dir, opts...)
	if err == nil || !errors.Is(err, audit.ErrIntegrity) || rep == nil || rep.Problem == nil || rep.OK {
		t.Fatalf("verification passed or failed wrongly: %v %+v", err, rep)
	}
	if rep.Problem.Code != code {
		t.Fatalf("problem %v, want code %s", rep.Problem, code)
	}
	return rep.Problem
}

func TestSignedLogVerifies(t *testing.T) {
	dir, _, vk := signedLog(t, 60, 7)
	rep, err := audit.Verify(context.Background(), dir, audit.WithTrustedKeys(vk))
	if err != nil || !rep.OK || rep.UncoveredTail() != 0 || rep.NodesChecked == 0 {
		t.Fatalf("%v %+v", err, rep)
	}
	// How many checkpoints the writer signed depends on when its
	// checkpointer ran (kicks every 7 records coalesce while it is busy);
	// the one on Close always exists. Every stored one must verify.
	stored, err := integrity.ReadCheckpointLog(vfs.OS(), filepath.Join(dir, integrity.CheckpointsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) == 0 || rep.Checkpoints != len(stored) {
		t.Fatalf("verified %d checkpoints of the %d stored", rep.Checkpoints, len(stored))
	}
}

// Attack 1: delete record k and rewrite everything after it consistently.
func TestAttackDeleteAndRechain(t *testing.T) {
	dir, _, vk := signedLog(t, 60, 7)
	k := eventIndex(t, dir, 20)
	del := func(rs []rec) []rec { return append(rs[:k:k], rs[k+1:]...) }

	p := mustFail(t, forge(t, dir, del, true), integrity.CodeRecordsAltered, audit.WithTrustedKeys(vk))
	if !p.Exact || p.Index != k {
		t.Fatalf("with the stored tree intact the first bad index must be exactly %d: %+v", k, p)
	}
	p = mustFail(t, forge(t, dir, del, false), integrity.CodeRecordsAltered, audit.WithTrustedKeys(vk))
	if p.Index > k || (!p.Exact && p.RangeEnd <= k) || (p.Exact && p.Index != k) {
		t.Fatalf("with the tree rewritten too, %d must lie in the reported range: %+v", k, p)
	}
}

// Attack 2: swap two records; insert one.
func TestAttackSwapAndInsert(t *testing.T) {
	dir, _, vk := signedLog(t, 60, 7)
	k := eventIndex(t, dir, 30)
	swap := func(rs []rec) []rec { rs[k], rs[k+1] = rs[k+1], rs[k]; return rs }
	if p := mustFail(t, forge(t, dir, swap, true), integrity.CodeRecordsAltered, audit.WithTrustedKeys(vk)); !p.Exact || p.Index != k {
		t.Fatalf("swap: %+v, want index %d", p, k)
	}
	ins := func(rs []rec) []rec {
		// A record the log never held (an exact copy of record k would be
		// indistinguishable from one inserted after it).
		extra := rec{wal.RecordEvent, rs[k].time + 1, append([]byte(nil), rs[k+3].payload...)}
		return append(rs[:k:k], append([]rec{extra}, rs[k:]...)...)
	}
	if p := mustFail(t, forge(t, dir, ins, true), integrity.CodeRecordsAltered, audit.WithTrustedKeys(vk)); !p.Exact || p.Index != k {
		t.Fatalf("insert: %+v, want index %d", p, k)
	}
}

// Attack 3: truncate records a checkpoint covered (fails: size went
// backwards); truncate records no checkpoint covers (an uncovered tail,
// reported distinctly, not as tampering).
func TestAttackTruncate(t *testing.T) {
	dir, sk, vk := signedLog(t, 60, 7)
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	os.Remove(segs[len(segs)-1])
	mustFail(t, dir, integrity.CodeTruncated, audit.WithTrustedKeys(vk))

	_ = sk
	dir2, sk2, vk2 := signedLog(t, 20, 1000)
	if _, err := audit.New(audit.WithWAL(dir2), audit.WithSigningKey(sk)); !errors.Is(err, audit.ErrIntegrity) {
		t.Fatalf("reopening a log with another key of the same name: %v", err)
	}
	s, err := audit.New(audit.WithWAL(dir2, audit.WithSegmentSize(attackSeg)), audit.WithSigningKey(sk2), audit.WithCheckpoints(1000, time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		s.Write(context.Background(), &audit.Event{Timestamp: time.Now(), MessageTemplate: "late"})
	}
	crashed := copyDir(t, dir2) // a crash: no final checkpoint
	s.Close()
	rep, err := audit.Verify(context.Background(), crashed, audit.WithTrustedKeys(vk2))
	if err != nil || !rep.OK || rep.UncoveredTail() != 5 {
		t.Fatalf("uncovered tail of 5 expected: %v %+v (tail %d)", err, rep, rep.UncoveredTail())
	}
	segs, _ = filepath.Glob(filepath.Join(crashed, "*.wal"))
	last := segs[len(segs)-1]
	// The records end at the last sector holding a non-zero byte (zeros
	// after them were filled ahead of the writes).
	raw, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	end := int64(len(bytes.TrimRight(raw, "\x00"))+511) / 512 * 512
	os.Truncate(last, end-2*512) // drop the last two uncovered records
	rep, err = audit.Verify(context.Background(), crashed, audit.WithTrustedKeys(vk2))
	if err != nil || !rep.OK || rep.UncoveredTail() != 3 {
		t.Fatalf("truncating uncovered records must show as a shorter uncovered tail: %v %+v", err, rep)
	}
}

func lastCheckpoint(t *testing.T, dir string) []byte {
	cps, err := integrity.ReadCheckpointLog(vfs.OS(), filepath.Join(dir, integrity.CheckpointsFile))
	if err != nil || len(cps) == 0 {
		t.Fatalf("%v %d", err, len(cps))
	}
	return cps[len(cps)-1]
}

// Attack 4: truncate, hide the old checkpoints, keep appending and present
// new checkpoints signed by the real key: an earlier trusted anchor catches
// it.
func TestAttackTruncateAndAppend(t *testing.T) {
	dir, sk, vk := signedLog(t, 60, 7)
	anchor := lastCheckpoint(t, dir)
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	os.Remove(segs[len(segs)-1])
	os.Remove(segs[len(segs)-2])
	os.Remove(filepath.Join(dir, integrity.CheckpointsFile))
	os.Remove(filepath.Join(dir, integrity.NodesFile))
	s, err := audit.New(audit.WithWAL(dir), audit.WithSigningKey(sk))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		s.Write(context.Background(), &audit.Event{Timestamp: time.Now(), MessageTemplate: "replacement"})
	}
	s.Close()
	if rep, err := audit.Verify(context.Background(), dir, audit.WithTrustedKeys(vk)); err != nil || !rep.OK {
		t.Fatalf("without an anchor the rewritten log is self-consistent: %v", err)
	}
	mustFail(t, dir, integrity.CodeAnchorMismatch, audit.WithTrustedKeys(vk), audit.WithAnchor(anchor))
}

// Attack 5: restore an older copy of the log.
func TestAttackRestoreOlderCopy(t *testing.T) {
	dir, sk, vk := signedLog(t, 30, 7)
	old := copyDir(t, dir)
	s, err := audit.New(audit.WithWAL(dir, audit.WithSegmentSize(attackSeg)), audit.WithSigningKey(sk))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		s.Write(context.Background(), &audit.Event{Timestamp: time.Now(), MessageTemplate: "newer"})
	}
	s.Close()
	anchor := lastCheckpoint(t, dir)
	mustFail(t, old, integrity.CodeAnchorMismatch, audit.WithTrustedKeys(vk), audit.WithAnchor(anchor))
}

// Attack 6: one flipped bit in a record, in a stored tree node, in a
// checkpoint: each detected and named for what it is.
func TestAttackBitFlips(t *testing.T) {
	dir, _, vk := signedLog(t, 60, 7)
	rng := rand.New(rand.NewPCG(6, 6))

	c := copyDir(t, dir)
	segs, _ := filepath.Glob(filepath.Join(c, "*.wal"))
	testutil.XorByte(t, vfs.OS(), segs[2], 512+int64(rng.IntN(1000)), 0x10)
	rep, err := audit.Verify(context.Background(), c, audit.WithTrustedKeys(vk))
	if !errors.Is(err, audit.ErrCorrupt) || rep.Problem.Code != integrity.CodeRecordCorrupt || rep.Problem.Segment != 3 {
		t.Fatalf("record bit flip: %v %+v", err, rep.Problem)
	}

	c = copyDir(t, dir)
	fi, _ := os.Stat(filepath.Join(c, integrity.NodesFile))
	testutil.XorByte(t, vfs.OS(), filepath.Join(c, integrity.NodesFile), rng.Int64N(fi.Size()), 0x10)
	p := mustFail(t, c, integrity.CodeTreeNodeDamaged, audit.WithTrustedKeys(vk))
	if !strings.Contains(p.Detail, "records are intact") {
		t.Fatalf("tree damage must not be reported as tampering with records: %+v", p)
	}

	c = copyDir(t, dir)
	testutil.XorByte(t, vfs.OS(), filepath.Join(c, integrity.CheckpointsFile), 40, 0x10)
	if _, err := audit.Verify(context.Background(), c, audit.WithTrustedKeys(vk)); !errors.Is(err, integrity.ErrCheckpointLogCorrupt) {
		t.Fatalf("checkpoint bit flip: %v", err)
	}
}

// rewriteCheckpoints replaces the stored checkpoint log with entries.
func rewriteCheckpoints(t *testing.T, dir string, entries [][]byte) {
	path := filepath.Join(dir, integrity.CheckpointsFile)
	os.Remove(path)
	l, err := integrity.OpenCheckpointLog(vfs.OS(), path)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := l.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
}

// Attack 7: stripped signature, a forged one (same key name, other key),
// and a checkpoint with the wrong origin signed by the trusted key.
func TestAttackCheckpointSignatures(t *testing.T) {
	dir, sk, vk := signedLog(t, 30, 7)
	cps, _ := integrity.ReadCheckpointLog(vfs.OS(), filepath.Join(dir, integrity.CheckpointsFile))
	body := func(raw []byte) string { return string(raw[:bytes.LastIndex(raw, []byte("\n\n"))+1]) }
	cp, err := integrity.ParseCheckpointBody(body(cps[1]))
	if err != nil {
		t.Fatal(err)
	}
	otherSK, _, _ := integrity.GenerateKey("audit.example/attack")
	otherSigner, _ := integrity.NewSigner(otherSK)
	forged, _ := integrity.SignCheckpoint(cp, otherSigner)
	wrongSK, _, _ := integrity.GenerateKey("evil.example/log")
	wrongSigner, _ := integrity.NewSigner(wrongSK)
	cp2 := cp
	cp2.Origin = "evil.example/log"
	wrongOrigin, _ := integrity.SignCheckpoint(cp2, wrongSigner)
	realSigner, _ := integrity.NewSigner(sk)
	cp3 := cp
	cp3.Origin = "audit.example/other"
	if _, err := integrity.SignCheckpoint(cp3, realSigner); err == nil {
		t.Fatal("the signer signed a checkpoint for another origin")
	}
	for name, bad := range map[string][]byte{
		"stripped":     []byte(body(cps[1]) + "\n"),
		"forged":       forged,
		"wrong origin": wrongOrigin,
	} {
		c := copyDir(t, dir)
		entries := append([][]byte{}, cps...)
		entries[1] = bad
		rewriteCheckpoints(t, c, entries)
		t.Run(name, func(t *testing.T) {
			p := mustFail(t, c, integrity.CodeCheckpointSignature, audit.WithTrustedKeys(vk))
			if p.Index != cp.Size {
				t.Fatalf("problem %+v should name the checkpoint of size %d", p, cp.Size)
			}
		})
	}
}

// Attack 8: with forward security, an attacker holding the current epoch's
// key rewrites an earlier epoch and re-signs every checkpoint.
func TestAttackForwardSecurity(t *testing.T) {
	dir, _, vk := signedLog(t, 60, 5, audit.WithForwardSecurity(time.Nanosecond))
	rep, err := audit.Verify(context.Background(), dir, audit.WithTrustedKeys(vk))
	if err != nil || !rep.OK || rep.Epoch < 3 {
		t.Fatalf("a forward-secure log must verify with the genesis key alone and have rotated: %v %+v", err, rep)
	}
	keyFile, err := os.ReadFile(filepath.Join(dir, integrity.EpochKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(keyFile)), "\n")
	stolen, err := integrity.NewSigner(lines[len(lines)-1])
	if err != nil {
		t.Fatal(err)
	}
	var epoch uint64
	fmt.Sscanf(lines[0], "epoch %d", &epoch)
	k := eventIndex(t, dir, 2) // in epoch 0
	forged := forge(t, dir, func(rs []rec) []rec {
		rs[k].payload = bytes.Replace(rs[k].payload, []byte("event"), []byte("EVENT"), 1)
		return rs
	}, false)
	// Re-sign every checkpoint of the forged tree with the stolen key.
	b := integrity.NewBuilder()
	var resigned [][]byte
	cps, _ := integrity.ReadCheckpointLog(vfs.OS(), filepath.Join(dir, integrity.CheckpointsFile))
	recs := readRecords(t, forged)
	for _, raw := range cps {
		cp, _ := integrity.ParseCheckpointBody(string(raw[:bytes.LastIndex(raw, []byte("\n\n"))+1]))
		for b.Size() < cp.Size && b.Size() < uint64(len(recs)) {
			r := recs[b.Size()]
			b.Append(r.time, uint8(r.typ), integrity.PayloadHash(r.payload))
		}
		cp.Root, cp.Epoch = b.Root(), epoch
		s, err := integrity.SignCheckpoint(cp, stolen)
		if err != nil {
			t.Fatal(err)
		}
		resigned = append(resigned, s)
	}
	rewriteCheckpoints(t, forged, resigned)
	rep, err = audit.Verify(context.Background(), forged, audit.WithTrustedKeys(vk))
	if err == nil || rep.Problem == nil {
		t.Fatalf("a rewrite re-signed with the current epoch key verified: %+v", rep)
	}
	if c := rep.Problem.Code; c != integrity.CodeCheckpointSignature && c != integrity.CodeKeyRotation {
		t.Fatalf("unexpected problem %+v", rep.Problem)
	}
}

// Attack 9: a torn tail after a crash verifies as crash recovery, never as
// tampering, and no acknowledged record is lost.
func TestCrashTailIsNotTampering(t *testing.T) {
	sk, vk, _ := integrity.GenerateKey("audit.example/crash")
	for seed := uint64(1); seed <= 60; seed++ {
		rng := rand.New(rand.NewPCG(seed, 9))
		fsys := vfs.NewCrashFS()
		s, err := audit.New(audit.WithWAL("/log", audit.WithSegmentSize(attackSeg)), audit.WithFileSystem(fsys), audit.WithSigningKey(sk), audit.WithCheckpoints(5, time.Millisecond, time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		var crashed *vfs.CrashFS
		acked := map[uint64]bool{}
		crashAt := 1 + rng.IntN(200)
		for i := 0; i < 60; i++ {
			if i == crashAt%60 {
				crashed = fsys.CrashClone(vfs.CrashOptions{Seed: int64(seed), KeepSectorProb: rng.Float64(), KeepDirOpProb: rng.Float64()})
				break
			}
			r, err := s.Write(context.Background(), &audit.Event{Timestamp: time.Now(), MessageTemplate: "e"})
			if err != nil {
				t.Fatal(err)
			}
			acked[r.Seq] = true
			if rng.IntN(4) == 0 {
				time.Sleep(2 * time.Millisecond) // let checkpoints happen
			}
		}
		s.Close()
		if crashed == nil {
			continue
		}
		rep, err := audit.VerifyFS(context.Background(), crashed, "/log", audit.WithTrustedKeys(vk))
		if err != nil || !rep.OK {
			t.Fatalf("seed %d: a crash must verify as crash recovery: %v %+v", seed, err, rep.Problem)
		}
		s2, err := audit.New(audit.WithWAL("/log"), audit.WithFileSystem(crashed), audit.WithSigningKey(sk))
		if err != nil {
			t.Fatalf("seed %d: reopen after crash: %v", seed, err)
		}
		s2.Close()
		got := map[uint64]bool{}
		wal.Check(context.Background(), crashed, "/log", func(r wal.Record) error { got[r.Seq] = true; return nil })
		for q := range acked {
			if !got[q] {
				t.Fatalf("seed %d: acknowledged %d lost", seed, q)
			}
		}
		if rep, err := audit.VerifyFS(context.Background(), crashed, "/log", audit.WithTrustedKeys(vk)); err != nil || rep.UncoveredTail() != 0 {
			t.Fatalf("seed %d: after reopen and close: %v %+v", seed, err, rep)
		}
	}
}

// Proofs: an inclusion proof of every record and a consistency proof
// between checkpoints verify offline with the public key alone; a tampered
// proof file does not.
func TestProofsOffline(t *testing.T) {
	dir, _, vk := signedLog(t, 40, 7)
	for seq := uint64(1); seq <= 41; seq += 3 {
		b, err := audit.ProveInclusion(context.Background(), vfs.OS(), dir, seq, nil)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := b.Marshal()
		if err := audit.VerifyProof(data, vk); err != nil {
			t.Fatalf("inclusion of %d: %v", seq, err)
		}
		bad := bytes.Replace(data, []byte(`"index": `), []byte(`"index": 1`), 1)
		if audit.VerifyProof(bad, vk) == nil {
			t.Fatalf("a tampered proof for %d verified", seq)
		}
	}
	cps, _ := integrity.ReadCheckpointLog(vfs.OS(), filepath.Join(dir, integrity.CheckpointsFile))
	first, _ := integrity.ParseCheckpointBody(string(cps[0][:bytes.LastIndex(cps[0], []byte("\n\n"))+1]))
	last, _ := integrity.ParseCheckpointBody(string(cps[len(cps)-1][:bytes.LastIndex(cps[len(cps)-1], []byte("\n\n"))+1]))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := audit.ProveConsistency(cancelled, vfs.OS(), dir, first.Size, last.Size); !errors.Is(err, context.Canceled) {
		t.Fatalf("ProveConsistency with a cancelled context: %v", err)
	}
	b, err := audit.ProveConsistency(context.Background(), vfs.OS(), dir, first.Size, last.Size)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := b.Marshal()
	if err := audit.VerifyProof(data, vk); err != nil {
		t.Fatal(err)
	}
	_, otherVK, _ := integrity.GenerateKey("audit.example/attack")
	if err := audit.VerifyProof(data, otherVK); !errors.Is(err, integrity.ErrCheckpoint) {
		t.Fatalf("a proof verified with the wrong key: %v", err)
	}
}

func storedCheckpoints(t *testing.T, dir string) []integrity.Checkpoint {
	raws, err := integrity.ReadCheckpointLog(vfs.OS(), filepath.Join(dir, integrity.CheckpointsFile))
	if err != nil {
		t.Fatal(err)
	}
	var out []integrity.Checkpoint
	for _, raw := range raws {
		cp, err := integrity.ParseCheckpointBody(string(raw[:bytes.LastIndex(raw, []byte("\n\n"))+1]))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cp)
	}
	return out
}

// TestCheckpointTriggers: an idle log signs heartbeats (same size, later
// time) so that silence is visible, and sealing a segment signs a
// checkpoint even when the record count and interval are far off.
func TestCheckpointTriggers(t *testing.T) {
	sk, _, _ := integrity.GenerateKey("audit.example/triggers")
	dir := filepath.Join(t.TempDir(), "log")
	s, err := audit.New(audit.WithWAL(dir, audit.WithSegmentSize(attackSeg)), audit.WithSigningKey(sk), audit.WithCheckpoints(1_000_000, time.Hour, 30*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Write(context.Background(), &audit.Event{Timestamp: time.Now(), MessageTemplate: "one"})
	// Wait for three checkpoints (the first and two heartbeats), with a
	// deadline far beyond 3×30ms so that a loaded machine cannot fail it.
	var cps []integrity.Checkpoint
	for deadline := time.Now().Add(20 * time.Second); len(cps) < 3 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		cps = storedCheckpoints(t, dir)
	}
	if len(cps) < 3 {
		t.Fatalf("an idle log signed %d checkpoints in 20s with a 30ms heartbeat", len(cps))
	}
	last := cps[len(cps)-1]
	if last.Size != cps[len(cps)-2].Size || !last.Time.After(cps[len(cps)-2].Time) {
		t.Fatalf("heartbeats must repeat the size with a later time: %+v %+v", cps[len(cps)-2], last)
	}

	s2dir := filepath.Join(t.TempDir(), "log2")
	s2, err := audit.New(audit.WithWAL(s2dir, audit.WithSegmentSize(attackSeg)), audit.WithSigningKey(sk), audit.WithCheckpoints(1_000_000, time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for i := 0; i < 20; i++ { // 7 single-record batches of 512 bytes fill a 4 KiB segment: 20 make two seals
		s2.Write(context.Background(), &audit.Event{Timestamp: time.Now(), MessageTemplate: "fill"})
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(storedCheckpoints(t, s2dir)) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cps = storedCheckpoints(t, s2dir)
	if len(cps) < 2 {
		t.Fatalf("sealing two segments signed %d checkpoints", len(cps))
	}
	if cps[0].Size < 8 { // the first seal is record 8
		t.Fatalf("the first checkpoint (size %d) does not cover the first seal", cps[0].Size)
	}
}
