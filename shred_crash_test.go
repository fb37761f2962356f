package audit_test

import (
	"context"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/protect"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// Power loss at every filesystem operation of a shred (and of the
// tombstone after it), under several crash shapes: the keyring opens, the
// subject's keys are all there or all gone, the log verifies, the next
// New writes the tombstone a crash kept out, and the subject's fields read
// either in clear or as Shredded, never as an error.
func TestShredPowerLoss(t *testing.T) {
	ctx := context.Background()
	fsys := vfs.NewCrashFS()
	const dir, kp = "/log", "/keys/audit.keyring"
	opts := func(f vfs.FS) []audit.Option {
		return []audit.Option{audit.WithWAL(dir), audit.WithFileSystem(f), audit.WithKeyring(kp, nil), audit.WithEncryption()}
	}
	s, err := audit.New(opts(fsys)...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		for _, subj := range []string{"alice", "bob"} {
			if _, err := s.Write(ctx, gdprEvent(subj, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var clones []*vfs.CrashFS
	shapes := []vfs.CrashOptions{{KeepSectorProb: 0, KeepDirOpProb: 0}, {KeepSectorProb: 0.5, KeepDirOpProb: 0.5}}
	fsys.SetHook(func(op vfs.Op) {
		for i, sh := range shapes {
			sh.Seed = int64(len(clones)*7 + i)
			clones = append(clones, fsys.CrashClone(sh))
		}
	})
	if _, err := s.Shred(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	fsys.SetHook(nil)
	s.Close()
	clones = append(clones, fsys.CrashClone(vfs.CrashOptions{}))
	if len(clones) < 10 {
		t.Fatalf("only %d crash points", len(clones))
	}
	gone := 0
	for n, c := range clones {
		kr, err := protect.OpenKeyring(kp, protect.KeyringOptions{FS: c})
		if err != nil {
			t.Fatalf("crash %d: the keyring does not open: %v", n, err)
		}
		// Read alice's and bob's first events with this keyring.
		var aliceState string
		for ev, err := range audit.RevealEvents(ctx, audit.ReplayFS(ctx, c, dir, time.Time{}, time.Time{}), kr) {
			if err != nil {
				t.Fatalf("crash %d: replay: %v", n, err)
			}
			if ev.Properties["Count"] == nil {
				continue // the tombstone
			}
			name := ev.Properties["Name"]
			st := "clear"
			if _, ok := name.(audit.Shredded); ok {
				st = "shredded"
			} else if name != "Name of alice" && name != "Name of bob" {
				t.Fatalf("crash %d: Name reads %#v", n, name)
			}
			if name == "Name of bob" {
				continue
			}
			if aliceState != "" && aliceState != st {
				t.Fatalf("crash %d: alice's events are partly shredded", n)
			}
			aliceState = st
		}
		kr.Close()
		if aliceState == "shredded" {
			gone++
		}
		rep, err := audit.VerifyFS(ctx, c, dir)
		if err != nil || !rep.OK {
			t.Fatalf("crash %d: Verify: %v %+v", n, err, rep)
		}
		// The next New logs a tombstone the crash kept out.
		s2, err := audit.New(opts(c)...)
		if err != nil {
			t.Fatalf("crash %d: New: %v", n, err)
		}
		tombs := 0
		for ev, err := range s2.Replay(ctx, time.Time{}, time.Time{}) {
			if err != nil {
				t.Fatal(err)
			}
			if ev.Properties[audit.ShredKeysProperty] != nil {
				tombs++
			}
		}
		if (aliceState == "shredded") != (tombs > 0) {
			t.Fatalf("crash %d: alice %s, %d tombstones after New", n, aliceState, tombs)
		}
		s2.Close()
	}
	if gone == 0 || gone == len(clones) {
		t.Fatalf("%d of %d crash points lost alice's keys: the crashes did not cover the shred", gone, len(clones))
	}
	t.Logf("%d crash points, alice's keys gone in %d", len(clones), gone)
}
