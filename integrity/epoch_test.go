package integrity

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/willibrandon/mtlog-audit/internal/testutil"
	"github.com/willibrandon/mtlog-audit/vfs"
)

func genKey(t testing.TB, name string) (note.Signer, string) {
	t.Helper()
	skey, vkey, err := GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	return cpSigner(t, skey), vkey
}

func TestRotationBody(t *testing.T) {
	r := Rotation{Origin: cpOrigin, Epoch: 3, Size: 42, Root: cpRoot(5), NextKey: cpVKeyB}
	want := "mtlog-audit key rotation\nexample.com/audit\nepoch 3\nsize 42\nroot " + cpRoot(5).String() + "\nkey " + cpVKeyB + "\n"
	if got := r.Body(); got != want {
		t.Fatalf("Body() = %q, want %q", got, want)
	}
	got, err := parseRotationBody(want)
	if err != nil || got != r {
		t.Fatalf("parseRotationBody = %+v, %v", got, err)
	}
	// verify.go's reader of the next key agrees.
	msg, err := SignRotation(r, cpSigner(t, cpSKeyA))
	if err != nil {
		t.Fatal(err)
	}
	if k, err := ParseRotationKey(msg); err != nil || k != cpVKeyB {
		t.Fatalf("ParseRotationKey = %q, %v", k, err)
	}
}

func TestRotationChain(t *testing.T) {
	s0, v0 := cpSigner(t, cpSKeyA), cpVKeyA
	s1, v1 := genKey(t, cpOrigin)
	s2, v2 := genKey(t, cpOrigin)
	r1 := Rotation{Origin: cpOrigin, Epoch: 1, Size: 10, Root: cpRoot(1), NextKey: v1}
	r2 := Rotation{Origin: cpOrigin, Epoch: 2, Size: 25, Root: cpRoot(2), NextKey: v2}
	m1, err := SignRotation(r1, s0)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := SignRotation(r2, s1)
	if err != nil {
		t.Fatal(err)
	}

	// Follow the chain from the genesis key alone.
	cur := mustNoteVerifier(t, v0)
	for i, m := range [][]byte{m1, m2} {
		r, err := OpenRotation(m, cur)
		if err != nil {
			t.Fatalf("rotation %d: %v", i+1, err)
		}
		if r.Epoch != uint64(i+1) {
			t.Fatalf("rotation %d names epoch %d", i+1, r.Epoch)
		}
		cur = mustNoteVerifier(t, r.NextKey)
	}
	// The end of the chain verifies epoch 2's checkpoints, not epoch 0's.
	cp := Checkpoint{Origin: cpOrigin, Size: 30, Root: cpRoot(3), Epoch: 2}
	msg, err := SignCheckpoint(cp, s2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCheckpoint(msg, note.VerifierList(cur)); err != nil {
		t.Fatal(err)
	}
	old, err := SignCheckpoint(cp, s0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenCheckpoint(old, note.VerifierList(cur))
	wantReason(t, err, ReasonUnknownKey)

	// A rotation signed by the wrong epoch's key is rejected.
	_, err = OpenRotation(m2, mustNoteVerifier(t, v0)) // signed by epoch 1, checked as epoch 0's
	wantReason(t, err, ReasonUnknownKey)
	_, err = OpenRotation(m1, mustNoteVerifier(t, v1)) // signed by epoch 0, checked as epoch 1's
	wantReason(t, err, ReasonUnknownKey)
	forged, err := SignRotation(r2, s0) // the stolen genesis key re-signs the second rotation
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenRotation(forged, mustNoteVerifier(t, v1))
	wantReason(t, err, ReasonUnknownKey)
	// Tampering and stripping.
	_, err = OpenRotation(flipSignature(t, m1), mustNoteVerifier(t, v0))
	wantReason(t, err, ReasonBadSignature)
	_, err = OpenRotation(bytes.Replace(m1, []byte("size 10\n"), []byte("size 11\n"), 1), mustNoteVerifier(t, v0))
	wantReason(t, err, ReasonBadSignature)
	_, err = OpenRotation([]byte(r1.Body()), mustNoteVerifier(t, v0))
	wantReason(t, err, ReasonUnsigned)
	_, err = OpenRotation(m1, nil)
	wantReason(t, err, ReasonUnknownKey)
	// A checkpoint is not a rotation statement.
	_, err = OpenRotation(msg, mustNoteVerifier(t, v2))
	wantReason(t, err, ReasonMalformed)
}

func TestRotationRejects(t *testing.T) {
	s0 := cpSigner(t, cpSKeyA)
	v0 := mustNoteVerifier(t, cpVKeyA)
	good := Rotation{Origin: cpOrigin, Epoch: 1, Size: 10, Root: cpRoot(1), NextKey: cpVKeyB}

	refuse := map[string]Rotation{
		"epoch 0":           {Origin: cpOrigin, Epoch: 0, Size: 10, Root: cpRoot(1), NextKey: cpVKeyB},
		"next key is self":  {Origin: cpOrigin, Epoch: 1, Size: 10, Root: cpRoot(1), NextKey: cpVKeyA},
		"next key of other": {Origin: cpOrigin, Epoch: 1, Size: 10, Root: cpRoot(1), NextKey: cpVKeyO},
		"bad next key":      {Origin: cpOrigin, Epoch: 1, Size: 10, Root: cpRoot(1), NextKey: "nonsense"},
		"private next key":  {Origin: cpOrigin, Epoch: 1, Size: 10, Root: cpRoot(1), NextKey: cpSKeyB},
		"other origin":      {Origin: "other.example/log", Epoch: 1, Size: 10, Root: cpRoot(1), NextKey: cpVKeyO},
		"size too large":    {Origin: cpOrigin, Epoch: 1, Size: 1 << 63, Root: cpRoot(1), NextKey: cpVKeyB},
	}
	for name, r := range refuse {
		if _, err := SignRotation(r, s0); err == nil {
			t.Errorf("%s: SignRotation succeeded", name)
		}
	}
	if _, err := SignRotation(good, nil); err == nil {
		t.Error("SignRotation without a key succeeded")
	}

	body := good.Body()
	lines := strings.SplitAfter(body, "\n")
	malformed := map[string]string{
		"wrong title":       strings.Replace(body, "mtlog-audit key rotation", "mtlog-audit key rotated", 1),
		"missing key line":  strings.Join(lines[:5], ""),
		"extra line":        body + "time 2025-01-01T00:00:00Z\n",
		"epoch 0":           strings.Replace(body, "epoch 1\n", "epoch 0\n", 1),
		"epoch leading 0":   strings.Replace(body, "epoch 1\n", "epoch 01\n", 1),
		"size leading 0":    strings.Replace(body, "size 10\n", "size 010\n", 1),
		"size missing":      strings.Replace(body, "size 10\n", "size\n", 1),
		"root short":        strings.Replace(body, cpRoot(1).String(), cpRoot(1).String()[:40], 1),
		"lines swapped":     lines[0] + lines[1] + lines[3] + lines[2] + lines[4] + lines[5],
		"next key of other": strings.Replace(body, cpVKeyB, cpVKeyO, 1),
		"next key damaged":  strings.Replace(body, cpVKeyB, cpVKeyB[:len(cpVKeyB)-3]+"AA=", 1),
		"next key is self":  strings.Replace(body, cpVKeyB, cpVKeyA, 1),
		"origin with space": strings.ReplaceAll(body, cpOrigin, "example.com audit"),
	}
	for name, text := range malformed {
		msg, err := note.Sign(&note.Note{Text: text}, s0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = OpenRotation(msg, v0)
		t.Run(name, func(t *testing.T) { wantReason(t, err, ReasonMalformed) })
	}

	// A statement for another origin, signed by this log's key.
	other := Rotation{Origin: "example.com/other", Epoch: 1, Size: 10, Root: cpRoot(1)}
	_, ovk := genKey(t, "example.com/other")
	other.NextKey = ovk
	msg, err := note.Sign(&note.Note{Text: other.Body()}, s0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenRotation(msg, v0)
	wantReason(t, err, ReasonWrongOrigin)
}

// ekLogCheck returns an isRotationInLog for tests: the log holds exactly
// the rotations whose keys are in inLog.
func ekLogCheck(inLog ...string) func(string) bool {
	return func(vk string) bool {
		for _, k := range inLog {
			if k == vk {
				return true
			}
		}
		return false
	}
}

func ekSignsFor(t *testing.T, s note.Signer, vkey string) {
	t.Helper()
	msg, err := SignCheckpoint(Checkpoint{Origin: cpOrigin, Size: 1, Root: cpRoot(1)}, s)
	if err != nil {
		t.Fatalf("current signer cannot sign: %v", err)
	}
	if _, err := OpenCheckpoint(msg, cpVerifiers(t, vkey)); err != nil {
		t.Fatalf("current signer does not match its public key: %v", err)
	}
}

func TestEpochKeys(t *testing.T) {
	fsys := cpTestFS(t)
	genesis := cpSigner(t, cpSKeyA)
	if _, err := OpenEpochKeys(fsys, "d", nil, nil); err == nil {
		t.Fatal("opened an empty key directory without a genesis key")
	}
	xmod, err := note.NewSigner(cpSKeyA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenEpochKeys(fsys, "d", xmod, nil); err == nil {
		t.Fatal("accepted a genesis signer whose key cannot be copied")
	}

	k, err := OpenEpochKeys(fsys, "d", genesis, nil)
	if err != nil {
		t.Fatal(err)
	}
	e, s0, vk := k.Current()
	if e != 0 || vk != cpVKeyA || s0.KeyHash() != genesis.KeyHash() {
		t.Fatalf("Current() = %d, %s", e, vk)
	}
	ekSignsFor(t, s0, vk)
	data := testutil.ReadFile(t, fsys, "d/epoch.key")
	if string(data) != "epoch 0\n"+cpSKeyA+"\n" {
		t.Fatalf("epoch.key = %q", data)
	}
	// The genesis signer is the caller's: it is copied, not taken.
	if _, err := genesis.Sign([]byte("x\n")); err != nil {
		t.Fatal(err)
	}

	if err := k.Commit(); err == nil {
		t.Fatal("Commit without Prepare succeeded")
	}
	next, nvk, err := k.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := k.Prepare(); err == nil {
		t.Fatal("second Prepare succeeded")
	}
	if e, _, vk := k.Current(); e != 0 || vk != cpVKeyA {
		t.Fatal("Prepare changed the current epoch")
	}
	if name, _, _, _ := vkeyParts(nvk); name != cpOrigin || next.Name() != cpOrigin || next.KeyHash() == s0.KeyHash() {
		t.Fatalf("next key %s is not a new key named %s", nvk, cpOrigin)
	}
	if !strings.HasPrefix(string(testutil.ReadFile(t, fsys, "d/epoch.key.next")), "epoch 1\nPRIVATE+KEY+"+cpOrigin+"+") {
		t.Fatal("epoch.key.next does not hold epoch 1's key")
	}
	stmt, err := SignRotation(Rotation{Origin: cpOrigin, Epoch: 1, Size: 0, Root: EmptyRoot(), NextKey: nvk}, s0)
	if err != nil {
		t.Fatal(err)
	}

	keyBytes := s0.(*keySigner).raw
	if err := k.Commit(); err != nil {
		t.Fatal(err)
	}
	if !allZero(keyBytes) {
		t.Fatalf("after Commit the old key bytes are %x, want all zero", keyBytes)
	}
	if _, err := s0.Sign([]byte("x\n")); err == nil {
		t.Fatal("the old epoch's signer still signs after Commit")
	}
	e, s1, vk1 := k.Current()
	if e != 1 || vk1 != nvk || s1 != next {
		t.Fatalf("after Commit Current() = %d, %s; want 1, %s", e, vk1, nvk)
	}
	ekSignsFor(t, s1, vk1)
	if _, err := OpenRotation(stmt, mustNoteVerifier(t, cpVKeyA)); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Stat("d/epoch.key.next"); err == nil {
		t.Fatal("epoch.key.next survives Commit")
	}
	if bytes.Contains(testutil.ReadFile(t, fsys, "d/epoch.key"), []byte(cpSKeyA)) {
		t.Fatal("epoch.key still holds the genesis key")
	}

	// Abort discards a prepared rotation.
	_, avk, err := k.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Stat("d/epoch.key.next"); err == nil {
		t.Fatal("epoch.key.next survives Abort")
	}
	if e, _, vk := k.Current(); e != 1 || vk != vk1 || vk == avk {
		t.Fatal("Abort changed the current epoch")
	}
	k.Close()
	if _, err := s1.Sign([]byte("x\n")); err == nil {
		t.Fatal("Close did not wipe the current key")
	}

	// Resume without the genesis key, and with it (same name).
	for _, g := range []note.Signer{nil, cpSigner(t, cpSKeyA)} {
		k, err := OpenEpochKeys(fsys, "d", g, nil)
		if err != nil {
			t.Fatal(err)
		}
		e, s, vk := k.Current()
		if e != 1 || vk != vk1 {
			t.Fatalf("resumed at %d, %s; want 1, %s", e, vk, vk1)
		}
		ekSignsFor(t, s, vk)
		k.Close()
	}
	// A key of another log is refused.
	if _, err := OpenEpochKeys(fsys, "d", cpSigner(t, cpSKeyO), nil); err == nil {
		t.Fatal("resumed with another log's key")
	}
	// At epoch 0, a different key of the same name is refused.
	fs2 := cpTestFS(t)
	k2, err := OpenEpochKeys(fs2, "d", cpSigner(t, cpSKeyA), nil)
	if err != nil {
		t.Fatal(err)
	}
	k2.Close()
	if _, err := OpenEpochKeys(fs2, "d", cpSigner(t, cpSKeyB), nil); err == nil {
		t.Fatal("epoch 0 resumed with a different genesis key")
	}
	// A pending rotation needs a way to ask the log.
	k2, err = OpenEpochKeys(fs2, "d", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := k2.Prepare(); err != nil {
		t.Fatal(err)
	}
	k2.Close()
	if _, err := OpenEpochKeys(fs2, "d", nil, nil); err == nil {
		t.Fatal("opened with a pending rotation and no isRotationInLog")
	}
}

func TestEpochKeysDamagedFiles(t *testing.T) {
	for name, content := range map[string]string{
		"empty":            "",
		"no epoch line":    cpSKeyA + "\n",
		"public key":       "epoch 0\n" + cpVKeyA + "\n",
		"bad epoch":        "epoch x\n" + cpSKeyA + "\n",
		"leading zero":     "epoch 00\n" + cpSKeyA + "\n",
		"no final newline": "epoch 0\n" + cpSKeyA,
		"trailing data":    "epoch 0\n" + cpSKeyA + "\nmore\n",
	} {
		fsys := cpTestFS(t)
		writeTestFile(t, fsys, "d/epoch.key", content)
		if _, err := OpenEpochKeys(fsys, "d", nil, nil); err == nil {
			t.Errorf("%s: damaged epoch.key accepted", name)
		}
	}
	// epoch.key.next without epoch.key.
	fsys := cpTestFS(t)
	writeTestFile(t, fsys, "d/epoch.key.next", "epoch 1\n"+cpSKeyB+"\n")
	if _, err := OpenEpochKeys(fsys, "d", cpSigner(t, cpSKeyA), ekLogCheck()); err == nil {
		t.Error("epoch.key.next without epoch.key accepted")
	}
	// epoch.key.next for the wrong epoch.
	fsys = cpTestFS(t)
	writeTestFile(t, fsys, "d/epoch.key", "epoch 0\n"+cpSKeyA+"\n")
	writeTestFile(t, fsys, "d/epoch.key.next", "epoch 2\n"+cpSKeyB+"\n")
	if _, err := OpenEpochKeys(fsys, "d", nil, ekLogCheck(cpVKeyB)); err == nil {
		t.Error("epoch.key.next for epoch 2 after epoch 0 accepted")
	}
	// ... and of another log.
	fsys = cpTestFS(t)
	writeTestFile(t, fsys, "d/epoch.key", "epoch 0\n"+cpSKeyA+"\n")
	writeTestFile(t, fsys, "d/epoch.key.next", "epoch 1\n"+cpSKeyO+"\n")
	if _, err := OpenEpochKeys(fsys, "d", nil, ekLogCheck(cpVKeyO)); err == nil {
		t.Error("epoch.key.next of another log accepted")
	}
	// Stale temporary files are removed.
	fsys = cpTestFS(t)
	writeTestFile(t, fsys, "d/epoch.key.tmp", "junk")
	writeTestFile(t, fsys, "d/epoch.key.next.tmp", "junk")
	k, err := OpenEpochKeys(fsys, "d", cpSigner(t, cpSKeyA), nil)
	if err != nil {
		t.Fatal(err)
	}
	k.Close()
	names, err := fsys.List("d")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(names) != "[epoch.key]" {
		t.Fatalf("directory holds %v", names)
	}
}

// TestEpochKeysCrash simulates a power loss before every operation of the
// genesis setup, two rotations (Prepare, the log append, Commit), under
// several choices of what unsynced state survives. Reopening must give the
// old epoch if the rotation statement had not reached the log and the new
// one if it had, with a key that signs for the expected public key; the
// recovery must itself be durable.
func TestEpochKeysCrash(t *testing.T) {
	type crash struct {
		fs    *vfs.CrashFS
		phase string
		op    vfs.Op
		opts  vfs.CrashOptions
		// What the log held at the crash and what must come back.
		inLog     []string
		wantEpoch uint64
		wantVKey  string
		// During genesis setup nothing may be on disk yet.
		setup bool
	}
	rng := rand.New(rand.NewPCG(1, 2))
	optionSets := func() []vfs.CrashOptions {
		return []vfs.CrashOptions{
			{KeepSectorProb: 0, KeepDirOpProb: 0},
			{KeepSectorProb: 1, KeepDirOpProb: 1},
			{KeepSectorProb: 0, KeepDirOpProb: 1},
			{KeepSectorProb: 1, KeepDirOpProb: 0},
			{Seed: rng.Int64(), KeepSectorProb: rng.Float64(), KeepDirOpProb: rng.Float64()},
			{Seed: rng.Int64(), KeepSectorProb: rng.Float64(), KeepDirOpProb: rng.Float64()},
		}
	}

	fsys := cpTestFS(t)
	var crashes []crash
	var cur crash // the expectations if a crash happened now
	fsys.SetHook(func(op vfs.Op) {
		for _, o := range optionSets() {
			c := cur
			c.fs, c.op, c.opts = fsys.CrashClone(o), op, o
			c.inLog = append([]string(nil), cur.inLog...)
			crashes = append(crashes, c)
		}
	})

	cur = crash{phase: "genesis", wantEpoch: 0, wantVKey: cpVKeyA, setup: true}
	k, err := OpenEpochKeys(fsys, "d", cpSigner(t, cpSKeyA), nil)
	if err != nil {
		t.Fatal(err)
	}
	cur.setup = false
	for e := uint64(0); e < 2; e++ {
		cur.phase = fmt.Sprintf("prepare %d", e+1)
		_, nvk, err := k.Prepare()
		if err != nil {
			t.Fatal(err)
		}
		// The rotation statement reaches the log (durably, elsewhere).
		cur.inLog = append(cur.inLog, nvk)
		cur.phase = fmt.Sprintf("commit %d", e+1)
		cur.wantEpoch, cur.wantVKey = e+1, nvk
		if err := k.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	fsys.SetHook(nil)
	k.Close()
	if len(crashes) < 40 {
		t.Fatalf("only %d crash points", len(crashes))
	}

	for i, c := range crashes {
		where := fmt.Sprintf("crash %d in %s before %s %s (%+v)", i, c.phase, c.op.Kind, c.op.Name, c.opts)
		var asked []string
		check := func(vk string) bool {
			asked = append(asked, vk)
			return ekLogCheck(c.inLog...)(vk)
		}
		var genesis note.Signer
		if c.setup {
			genesis = cpSigner(t, cpSKeyA)
		}
		k, err := OpenEpochKeys(c.fs, "d", genesis, check)
		if err != nil {
			t.Fatalf("%s: reopen: %v", where, err)
		}
		e, s, vk := k.Current()
		if e != c.wantEpoch || vk != c.wantVKey {
			t.Fatalf("%s: reopened at epoch %d (%s), want %d (%s); log holds %v", where, e, vk, c.wantEpoch, c.wantVKey, c.inLog)
		}
		if len(asked) > 1 || len(asked) == 1 && !strings.HasPrefix(asked[0], cpOrigin+"+") {
			t.Fatalf("%s: asked the log about %q, want at most the one pending key", where, asked)
		}
		if len(asked) == 1 && ekLogCheck(c.inLog...)(asked[0]) != (asked[0] == vk) {
			t.Fatalf("%s: the log's answer for %s was not followed", where, asked[0])
		}
		ekSignsFor(t, s, vk)
		k.Close()
		if _, err := c.fs.Stat("d/epoch.key.next"); err == nil {
			t.Fatalf("%s: epoch.key.next survives recovery", where)
		} else if !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		// The recovery is durable: another power loss that keeps
		// nothing unsynced gives the same epoch, with no log check.
		again := c.fs.CrashClone(vfs.CrashOptions{})
		k, err = OpenEpochKeys(again, "d", nil, nil)
		if err != nil {
			t.Fatalf("%s: after a second crash: %v", where, err)
		}
		if e2, _, vk2 := k.Current(); e2 != e || vk2 != vk {
			t.Fatalf("%s: after a second crash epoch %d (%s), want %d (%s)", where, e2, vk2, e, vk)
		}
		k.Close()
	}
}

// TestEpochKeysOfAnotherGenesisKey: an epoch key file made for another
// genesis key (another log's file, or another key configured) is refused
// with an error that matches ErrEpochKeyMismatch, for a key of the same
// name and of another name.
func TestEpochKeysOfAnotherGenesisKey(t *testing.T) {
	fsys := cpTestFS(t)
	if _, err := OpenEpochKeys(fsys, "d", cpSigner(t, cpSKeyA), nil); err != nil {
		t.Fatal(err)
	}
	for _, other := range []string{cpSKeyB, cpSKeyO} {
		_, err := OpenEpochKeys(fsys, "d", cpSigner(t, other), nil)
		if !errors.Is(err, ErrEpochKeyMismatch) {
			t.Fatalf("OpenEpochKeys with another genesis key = %v, want ErrEpochKeyMismatch", err)
		}
	}
}
