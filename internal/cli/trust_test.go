package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
)

// forwardSecureDir writes a forward-secure log whose key rotates after
// every checkpoint, under a clock the test controls, and returns its
// directory and the genesis public key file.
func forwardSecureDir(t *testing.T) (dir, genesisPub string) {
	t.Helper()
	tmp := t.TempDir()
	sk, vk, err := integrity.GenerateKey("fs.mtlog-audit.test")
	if err != nil {
		t.Fatal(err)
	}
	genesisPub = filepath.Join(tmp, "genesis.pub")
	if err := os.WriteFile(genesisPub, []byte(vk+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(tmp, "wal")
	s, err := audit.New(audit.WithWAL(dir), audit.WithSigningKey(sk), audit.WithCheckpoints(4, time.Hour, time.Hour),
		audit.WithForwardSecurity(time.Nanosecond)) // every checkpoint ends an epoch
	if err != nil {
		t.Fatal(err)
	}
	// Write until the key has rotated at least twice (the checkpointer
	// signs and rotates on its own goroutine; the bound is generous).
	for i := 0; ; i++ {
		if _, err := s.Write(context.Background(), fixtureEvent(i%40)); err != nil {
			t.Fatal(err)
		}
		if i >= 40 {
			if key, err := os.ReadFile(filepath.Join(dir, integrity.EpochKeyFile)); err == nil && !strings.HasPrefix(string(key), "epoch 0\n") && !strings.HasPrefix(string(key), "epoch 1\n") {
				break
			}
		}
		if i > 100000 {
			t.Fatal("the key never rotated")
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, genesisPub
}

// Issue 13, hole 2: the documented anchor and proof workflow works on a
// forward-secure log with only the genesis public key.
func TestForwardSecureWorkflowWithGenesisKey(t *testing.T) {
	dir, gpub := forwardSecureDir(t)
	tmp := t.TempDir()
	r := run(t, "", "verify", "--wal", dir, "--key", gpub, "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"epoch"`) {
		t.Fatalf("verify: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", "checkpoint", "--wal", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "\nepoch ") {
		t.Fatalf("checkpoint: %d %q %s", r.code, r.stdout, r.stderr)
	}
	anchor := filepath.Join(tmp, "a.txt")
	os.WriteFile(anchor, []byte(r.stdout), 0o644)
	if r := run(t, "", "verify", "--wal", dir, "--key", gpub, "--anchor", anchor); r.code != 0 {
		t.Fatalf("verify --anchor: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, "", "checkpoint", "--wal", dir, "--key", gpub); r.code != 0 {
		t.Fatalf("checkpoint --key: %d %s %s", r.code, r.stdout, r.stderr)
	}
	_, otherVK, _ := integrity.GenerateKey("fs.mtlog-audit.test")
	if r := run(t, "", "checkpoint", "--wal", dir, "--key", otherVK); r.code != 2 || !strings.Contains(r.stderr, "tampering") {
		t.Fatalf("checkpoint --key with another key: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, "", "verify", "--wal", dir, "--key", otherVK); r.code != 2 || !strings.Contains(r.stdout, "untrusted-key") {
		t.Fatalf("verify with another key: %d %s %s", r.code, r.stdout, r.stderr)
	}
	incl := filepath.Join(tmp, "incl.json")
	if r := run(t, "", "prove", "inclusion", "--wal", dir, "--seq", "3", "--output", incl); r.code != 0 {
		t.Fatalf("prove: %d %s", r.code, r.stderr)
	}
	if r := run(t, "", "verify-proof", incl, "--key", gpub); r.code != 0 || !strings.Contains(r.stdout, "record seq 3 ") || !strings.Contains(r.stdout, "key epoch ") {
		t.Fatalf("verify-proof: %d %s %s", r.code, r.stdout, r.stderr)
	}
	cons := filepath.Join(tmp, "cons.json")
	all := strings.Split(strings.TrimSpace(run(t, "", "checkpoint", "--wal", dir, "--all").stdout), "\n")
	from, to := strings.Split(all[0], "\t")[1], strings.Split(all[len(all)-1], "\t")[1]
	if r := run(t, "", "prove", "consistency", "--wal", dir, "--from", from, "--to", to, "--output", cons); r.code != 0 {
		t.Fatalf("prove consistency: %d %s", r.code, r.stderr)
	}
	if r := run(t, "", "verify-proof", cons, "--key", gpub); r.code != 0 {
		t.Fatalf("verify-proof consistency: %d %s %s", r.code, r.stdout, r.stderr)
	}

	// Hole 3: a later epoch's key listed beside the genesis key is
	// refused (exit 2), never trusted for epoch 0.
	key, err := os.ReadFile(filepath.Join(dir, integrity.EpochKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(key)), "\n")
	epochVK, err := integrity.PublicKeyOf(lines[len(lines)-1])
	if err != nil {
		t.Fatal(err)
	}
	if r := run(t, "", "verify", "--wal", dir, "--key", gpub, "--key", epochVK); r.code != 2 || !strings.Contains(r.stderr, "genesis") {
		t.Fatalf("verify with an epoch key listed: %d %s %s", r.code, r.stdout, r.stderr)
	}
}
