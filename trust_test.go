package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// forwardSecureLog writes a forward-secure log that rotates its key after
// every checkpoint (an epoch of 1 ns always ends at the next checkpoint).
func forwardSecureLog(t *testing.T) (dir, sk, vk string) {
	t.Helper()
	dir, sk, vk = signedLog(t, 60, 5, audit.WithForwardSecurity(time.Nanosecond))
	rep, err := audit.Verify(context.Background(), dir, audit.WithTrustedKeys(vk))
	if err != nil || !rep.OK || rep.Epoch < 3 {
		t.Fatalf("a forward-secure log must verify with the genesis key and have rotated: %v %+v", err, rep)
	}
	return dir, sk, vk
}

func cpBody(raw []byte) integrity.Checkpoint {
	cp, _ := integrity.ParseCheckpointBody(string(raw[:bytes.LastIndex(raw, []byte("\n\n"))+1]))
	return cp
}

// Hole 2: anchors, checkpoints and proofs of a forward-secure log are
// checked with the genesis public key alone.
func TestForwardSecureAnchorsAndProofsWithGenesisKey(t *testing.T) {
	dir, _, vk := forwardSecureLog(t)
	cps, err := integrity.ReadCheckpointLog(vfs.OS(), filepath.Join(dir, integrity.CheckpointsFile))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, raw := range cps {
		cp := cpBody(raw)
		if _, err := audit.OpenCheckpoint(ctx, vfs.OS(), dir, raw, vk); err != nil {
			t.Fatalf("checkpoint %d (epoch %d) does not open with the genesis key: %v", i, cp.Epoch, err)
		}
		rep, err := audit.Verify(ctx, dir, audit.WithTrustedKeys(vk), audit.WithAnchor(raw))
		if err != nil || !rep.OK {
			t.Fatalf("anchor %d (size %d, epoch %d) does not verify with the genesis key: %v %+v", i, cp.Size, cp.Epoch, err, rep.Problem)
		}
	}
	last := cpBody(cps[len(cps)-1])
	if last.Epoch == 0 {
		t.Fatal("the last checkpoint should be of a later epoch")
	}
	for seq := uint64(1); seq <= last.Size; seq += 7 {
		b, err := audit.ProveInclusion(ctx, vfs.OS(), dir, seq, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b.Format != integrity.InclusionFormatV2 || uint64(len(b.Rotations)) != last.Epoch {
			t.Fatalf("bundle %s carries %d rotations, want %d", b.Format, len(b.Rotations), last.Epoch)
		}
		data, _ := b.Marshal()
		if err := audit.VerifyProof(data, vk); err != nil {
			t.Fatalf("inclusion of %d: %v", seq, err)
		}
	}
	first := cpBody(cps[0])
	for _, from := range []integrity.Checkpoint{first, cpBody(cps[len(cps)/2])} {
		b, err := audit.ProveConsistency(ctx, vfs.OS(), dir, from.Size, last.Size)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := b.Marshal()
		if err := audit.VerifyProof(data, vk); err != nil {
			t.Fatalf("consistency %d→%d: %v", from.Size, last.Size, err)
		}
	}

	// A bundle whose rotation chain was tampered with fails.
	b, err := audit.ProveInclusion(ctx, vfs.OS(), dir, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := integrity.GenerateKey("audit.example/attack")
	otherSigner, _ := integrity.NewSigner(other)
	r0, err := integrity.ParseRotation([]byte(b.Rotations[0].Statement))
	if err != nil {
		t.Fatal(err)
	}
	_, otherVK, _ := integrity.GenerateKey("audit.example/attack")
	r0.NextKey = otherVK
	forgedStmt, err := integrity.SignRotation(r0, otherSigner)
	if err != nil {
		t.Fatal(err)
	}
	tamper := map[string]func(*integrity.InclusionBundle){
		"rotation dropped":        func(b *integrity.InclusionBundle) { b.Rotations = b.Rotations[1:] },
		"rotations swapped":       func(b *integrity.InclusionBundle) { b.Rotations[0], b.Rotations[1] = b.Rotations[1], b.Rotations[0] },
		"rotation re-signed":      func(b *integrity.InclusionBundle) { b.Rotations[0].Statement = string(forgedStmt) },
		"consistency proof wrong": func(b *integrity.InclusionBundle) { b.Rotations[1].Consistency[0][0] ^= 1 },
		"v1 label":                func(b *integrity.InclusionBundle) { b.Format = integrity.InclusionFormat },
	}
	for name, f := range tamper {
		c := *b
		c.Rotations = nil
		for _, r := range b.Rotations {
			c.Rotations = append(c.Rotations, integrity.RotationProof{Statement: r.Statement, Consistency: append([]integrity.Hash(nil), r.Consistency...)})
		}
		f(&c)
		data, _ := json.Marshal(&c)
		if err := audit.VerifyProof(data, vk); err == nil {
			t.Errorf("%s: the bundle verified", name)
		}
	}
}

// An anchor of a later epoch is judged by that epoch's key as the log's
// rotation chain establishes it: an anchor signed by another key, or
// claiming another epoch, is a mismatch.
func TestForwardSecureAnchorForged(t *testing.T) {
	dir, sk, vk := forwardSecureLog(t)
	cps, _ := integrity.ReadCheckpointLog(vfs.OS(), filepath.Join(dir, integrity.CheckpointsFile))
	cp := cpBody(cps[len(cps)-1])
	// Even the genesis key cannot vouch for a size where a later epoch is
	// active: the anchor must claim the epoch the chain has there.
	g, _ := integrity.NewSigner(sk)
	e0 := cp
	e0.Epoch = 0
	wrongEpoch, err := integrity.SignCheckpoint(e0, g)
	if err != nil {
		t.Fatal(err)
	}
	mustFail(t, dir, integrity.CodeAnchorMismatch, audit.WithTrustedKeys(vk), audit.WithAnchor(wrongEpoch))
	otherSK, _, _ := integrity.GenerateKey("audit.example/attack")
	s, _ := integrity.NewSigner(otherSK)
	forged, err := integrity.SignCheckpoint(cp, s)
	if err != nil {
		t.Fatal(err)
	}
	mustFail(t, dir, integrity.CodeAnchorMismatch, audit.WithTrustedKeys(vk), audit.WithAnchor(forged))
	cp.Epoch++
	cp.Size += 1000
	beyond, _ := integrity.SignCheckpoint(cp, s)
	p := mustFail(t, dir, integrity.CodeAnchorMismatch, audit.WithTrustedKeys(vk), audit.WithAnchor(beyond))
	if !strings.Contains(p.Detail, "could not be checked") {
		t.Fatalf("detail should say the anchor's signature could not be checked: %s", p.Detail)
	}
}

// Hole 3: a later epoch's key listed as trusted does not count for epoch
// 0. A thief of epoch.key rewrites epoch 0, drops the rotation records and
// signs one checkpoint with the stolen key.
func TestListedEpochKeyDoesNotCountForEpochZero(t *testing.T) {
	dir, _, vk := forwardSecureLog(t)
	keyFile, err := os.ReadFile(filepath.Join(dir, integrity.EpochKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(keyFile)), "\n")
	stolen, err := integrity.NewSigner(lines[len(lines)-1])
	if err != nil {
		t.Fatal(err)
	}
	stolenVK, err := integrity.PublicKeyOf(lines[len(lines)-1])
	if err != nil {
		t.Fatal(err)
	}
	k := eventIndex(t, dir, 2)
	forged := forge(t, dir, func(rs []rec) []rec {
		var out []rec
		for i, r := range rs {
			if r.typ == wal.RecordMeta {
				continue // drop the rotation statements
			}
			if uint64(i) == k {
				r.payload = bytes.Replace(r.payload, []byte("event"), []byte("EVENT"), 1)
			}
			out = append(out, r)
		}
		return out
	}, false)
	recs := readRecords(t, forged)
	b := integrity.NewBuilder()
	for _, r := range recs {
		b.Append(r.time, uint8(r.typ), integrity.PayloadHash(r.payload))
	}
	one, err := integrity.SignCheckpoint(integrity.Checkpoint{Origin: stolen.Name(), Size: b.Size(), Root: b.Root(), Time: time.Unix(1_900_000_000, 0).UTC()}, stolen)
	if err != nil {
		t.Fatal(err)
	}
	rewriteCheckpoints(t, forged, [][]byte{one})
	rep, err := audit.Verify(context.Background(), forged, audit.WithTrustedKeys(vk, stolenVK))
	if err == nil || (rep != nil && rep.OK) {
		t.Fatalf("the rewritten log verified with the genesis key and the stolen epoch key listed: %+v", rep)
	}
	if !errors.Is(err, integrity.ErrSameNameKeys) {
		t.Fatalf("listing a later epoch's key should be refused: %v", err)
	}
	p := mustFail(t, forged, integrity.CodeUntrustedKey, audit.WithTrustedKeys(vk))
	if !strings.Contains(p.Detail, "tampering") {
		t.Fatalf("the untrusted-key detail must say it is tampering if the key is right: %s", p.Detail)
	}
	// The genuine log still verifies with the genesis key only, and the
	// stolen key alone does not verify epoch 0 of the genuine log.
	mustFail(t, dir, integrity.CodeUntrustedKey, audit.WithTrustedKeys(stolenVK))
}

// Related: a signed log verified with another key is "untrusted-key" (no
// checkpoint signed by a key you trust), not tampering; a stripped or
// forged first checkpoint with the right key stays tampering.
func TestUntrustedKeyIsItsOwnOutcome(t *testing.T) {
	dir, _, vk := signedLog(t, 30, 7)
	_, otherVK, _ := integrity.GenerateKey("audit.example/other")
	p := mustFail(t, dir, integrity.CodeUntrustedKey, audit.WithTrustedKeys(otherVK))
	for _, want := range []string{"audit.example/attack+", "audit.example/other+", "tampering"} {
		if !strings.Contains(p.Detail, want) {
			t.Errorf("detail %q does not mention %q", p.Detail, want)
		}
	}
	cps, _ := integrity.ReadCheckpointLog(vfs.OS(), filepath.Join(dir, integrity.CheckpointsFile))
	raw := cps[0]
	body := raw[:bytes.LastIndex(raw, []byte("\n\n"))+1]
	sameNameSK, _, _ := integrity.GenerateKey("audit.example/attack")
	s, _ := integrity.NewSigner(sameNameSK)
	resignedFirst, _ := integrity.SignCheckpoint(cpBody(raw), s)
	for name, first := range map[string][]byte{
		"stripped":          append(append([]byte{}, body...), '\n'),
		"bad signature":     append(append([]byte{}, raw[:len(raw)-6]...), []byte("AAAA=\n")...),
		"resigned, rest ok": resignedFirst,
	} {
		c := copyDir(t, dir)
		entries := append([][]byte{first}, cps[1:]...)
		rewriteCheckpoints(t, c, entries)
		if p := mustFail(t, c, integrity.CodeCheckpointSignature, audit.WithTrustedKeys(vk)); p.Code == integrity.CodeUntrustedKey {
			t.Errorf("%s: reported as untrusted key", name)
		}
	}
	// Every checkpoint re-signed by another key: still a failure, never
	// success, and the message says it is tampering if the key is right.
	var all [][]byte
	for _, raw := range cps {
		r, _ := integrity.SignCheckpoint(cpBody(raw), s)
		all = append(all, r)
	}
	c := copyDir(t, dir)
	rewriteCheckpoints(t, c, all)
	p = mustFail(t, c, integrity.CodeUntrustedKey, audit.WithTrustedKeys(vk))
	if !strings.Contains(p.Detail, "tampering") {
		t.Fatal(p.Detail)
	}
	_ = fmt.Sprint
}

// Hole 4: a damaged epoch.key (another epoch number, another key) is
// refused on open instead of signing checkpoints the log then rejects.
func TestEpochKeyFileCheckedOnOpen(t *testing.T) {
	dir, sk, vk := forwardSecureLog(t)
	path := filepath.Join(dir, integrity.EpochKeyFile)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var epoch uint64
	fmt.Sscanf(string(orig), "epoch %d", &epoch)
	lines := strings.Split(strings.TrimSpace(string(orig)), "\n")
	otherSK, _, _ := integrity.GenerateKey("audit.example/attack")
	open := func() error {
		s, err := audit.New(audit.WithWAL(dir, audit.WithSegmentSize(attackSeg)), audit.WithSigningKey(sk), audit.WithForwardSecurity(time.Hour))
		if err == nil {
			s.Close()
		}
		return err
	}
	for name, content := range map[string]string{
		"epoch bit flip": fmt.Sprintf("epoch %d\n%s\n", epoch^4, lines[1]),
		"previous epoch": fmt.Sprintf("epoch %d\n%s\n", epoch-1, lines[1]),
		"another key":    fmt.Sprintf("epoch %d\n%s\n", epoch, otherSK),
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		err := open()
		if !errors.Is(err, audit.ErrEpochKeyMismatch) {
			t.Errorf("%s: open with a damaged epoch.key: %v", name, err)
		}
	}
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := open(); err != nil {
		t.Fatalf("reopening with the intact key: %v", err)
	}
	if rep, err := audit.Verify(context.Background(), dir, audit.WithTrustedKeys(vk)); err != nil || !rep.OK {
		t.Fatalf("the log must still verify: %v %+v", err, rep)
	}
}

// Hole 5: epoch.key is written owner-only, and a key file that the group
// or others may read is refused with the chmod to run.
func TestEpochKeyFileMode(t *testing.T) {
	mirror := filepath.Join(t.TempDir(), "mirror")
	dir, sk, _ := signedLog(t, 20, 5, audit.WithForwardSecurity(time.Nanosecond), audit.WithRedundancy(mirror))
	for _, d := range []string{dir, mirror} {
		fi, err := os.Stat(filepath.Join(d, integrity.EpochKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: epoch.key has mode %04o, want 0600", d, fi.Mode().Perm())
		}
	}
	path := filepath.Join(dir, integrity.EpochKeyFile)
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err := audit.New(audit.WithWAL(dir, audit.WithSegmentSize(attackSeg)), audit.WithSigningKey(sk), audit.WithForwardSecurity(time.Hour))
	if !errors.Is(err, integrity.ErrKeyFileMode) || !strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Fatalf("a group-readable epoch.key must be refused with the chmod to run: %v", err)
	}
}
