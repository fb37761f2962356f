package audit_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/protect"
)

const shredChildEnv = "MTLOG_AUDIT_SHRED_CHILD"

const shredSubjects = 40

func shredOpts(root string) []audit.Option {
	return []audit.Option{audit.WithWAL(filepath.Join(root, "log")), audit.WithKeyring(filepath.Join(root, "keys", "audit.keyring"), nil), audit.WithEncryption()}
}

// shredChild writes one event of each subject, says "ready", then shreds
// the subjects one by one, saying "shredded i" after each. It runs until
// killed.
func shredChild(root string) {
	s, err := audit.New(shredOpts(root)...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	ctx := context.Background()
	for i := range shredSubjects {
		if _, err := s.Write(ctx, gdprEvent(fmt.Sprintf("s%02d", i), i)); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(4)
		}
	}
	fmt.Println("ready")
	for i := range shredSubjects {
		if _, err := s.Shred(ctx, fmt.Sprintf("s%02d", i)); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(5)
		}
		fmt.Printf("shredded %d\n", i)
	}
	select {} // wait for the kill
}

// A real child process killed with SIGKILL in the middle of shredding:
// the keyring opens, every subject reported shredded is gone, every
// subject's fields read either in clear or as Shredded, the log verifies,
// and the next New logs a tombstone for every shred a kill kept out.
func TestShredKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 18))
	ctx := context.Background()
	for round := range 4 {
		root := t.TempDir()
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), shredChildEnv+"="+root)
		out, _ := cmd.StdoutPipe()
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		kill := rng.IntN(shredSubjects / 2)
		reported := -1
		for sc.Scan() {
			var i int
			if _, err := fmt.Sscanf(sc.Text(), "shredded %d", &i); err == nil {
				reported = i
			}
			if reported >= kill {
				break
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if reported < 0 {
			t.Fatalf("round %d: the child shredded nothing: %s", round, stderr.String())
		}
		kr, err := protect.OpenKeyring(filepath.Join(root, "keys", "audit.keyring"), protect.KeyringOptions{})
		if err != nil {
			t.Fatalf("round %d: keyring after SIGKILL: %v", round, err)
		}
		shredded := map[string]bool{}
		for ev, err := range audit.RevealEvents(ctx, audit.Replay(ctx, filepath.Join(root, "log"), time.Time{}, time.Time{}), kr) {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if ev.Properties[audit.ShredKeysProperty] != nil {
				continue
			}
			i := int(ev.Timestamp.Unix() - 1_800_000_000)
			switch name := ev.Properties["Name"].(type) {
			case audit.Shredded:
				shredded[fmt.Sprint(i)] = true
			case string:
				if name != fmt.Sprintf("Name of s%02d", i) || i <= reported {
					t.Fatalf("round %d: subject %d (reported shredded up to %d) reads %q", round, i, reported, name)
				}
			default:
				t.Fatalf("round %d: Name reads %#v", round, name)
			}
		}
		kr.Close()
		// Shreds run one after the other: the shredded subjects are the
		// first ones, at least those reported (the child may have gone on
		// before the kill landed).
		for i := range len(shredded) {
			if !shredded[fmt.Sprint(i)] {
				t.Fatalf("round %d: subjects %v shredded: not the first %d", round, shredded, len(shredded))
			}
		}
		if len(shredded) < reported+1 {
			t.Fatalf("round %d: %d subjects shredded, %d reported", round, len(shredded), reported+1)
		}
		s, err := audit.New(shredOpts(root)...)
		if err != nil {
			t.Fatalf("round %d: New after SIGKILL: %v", round, err)
		}
		rep, err := s.VerifyIntegrity()
		if err != nil || !rep.OK {
			t.Fatalf("round %d: verify: %v %+v", round, err, rep)
		}
		// A kill between a tombstone and its mark in the keyring makes New
		// write it again: each shred has one tombstone or two, never none.
		tombs := map[string]int{}
		for ev, err := range s.Replay(ctx, time.Time{}, time.Time{}) {
			if err != nil {
				t.Fatal(err)
			}
			if k := ev.Properties[audit.ShredKeysProperty]; k != nil {
				tombs[fmt.Sprint(k)]++
			}
		}
		s.Close()
		if len(tombs) != len(shredded) {
			t.Fatalf("round %d: tombstones of %d shreds for %d shreds", round, len(tombs), len(shredded))
		}
		for k, n := range tombs {
			if n > 2 {
				t.Fatalf("round %d: %d tombstones of %s", round, n, k)
			}
		}
	}
}
