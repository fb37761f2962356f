package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/internal/cli"
)

// accessFixture makes a signed log with access logging on (its Sink opened
// and closed) and returns its directory and the fixture's key files.
func accessFixture(t *testing.T) (dir, keyFile, pubFile string) {
	t.Helper()
	key, err := os.ReadFile(filepath.Join(fixtureDir, "test.key"))
	if err != nil {
		t.Fatal(err)
	}
	keyFile = filepath.Join(t.TempDir(), "test.key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	pubFile, _ = filepath.Abs(filepath.Join(fixtureDir, "test.pub"))
	dir = filepath.Join(t.TempDir(), "wal")
	s, err := audit.New(audit.WithWAL(dir), audit.WithAccessLog(), audit.WithSigningKeyFile(keyFile))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := s.Write(context.Background(), fixtureEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, keyFile, pubFile
}

// accessReads returns the read records of dir's access log as
// "command|actor|range|filter".
func accessReads(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for ev, err := range audit.Replay(context.Background(), filepath.Join(dir, audit.AccessDirName), time.Time{}, time.Time{}) {
		if err != nil {
			t.Fatal(err)
		}
		p := ev.Properties
		if p[audit.LifecycleProperty] != audit.LifecycleRead {
			continue
		}
		if p[audit.ReadUserProperty] == "" {
			t.Fatalf("read record without a user: %v", p)
		}
		out = append(out, strings.Join([]string{p[audit.ReadCommandProperty].(string), p[audit.ReadActorProperty].(string), p[audit.ReadRangeProperty].(string), p[audit.ReadFilterProperty].(string)}, "|"))
	}
	return out
}

// TestCLIReadsRecorded: replay, export, verify, prove and monitor each
// leave one record in the access log, with --actor and their selection.
func TestCLIReadsRecorded(t *testing.T) {
	dir, keyFile, pubFile := accessFixture(t)
	out := filepath.Join(t.TempDir(), "out.jsonl")
	for _, args := range [][]string{
		{"replay", "--wal", dir, "--actor", "alice", "--seq", "1..3", "--filter", "level >= Error", "--access-key", keyFile},
		{"export", "--wal", dir, "--actor", "alice", "--format", "jsonl", "--output", out},
		{"verify", "--wal", dir, "--actor", "alice", "--key", pubFile},
		{"prove", "inclusion", "--wal", dir, "--actor", "alice", "--seq", "2"},
		{"monitor", "--wal", dir, "--actor", "alice", "--once", "--interval", "1ms"},
	} {
		if r := run(t, "", args...); r.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
		}
	}
	want := []string{
		"replay|alice|--seq 1..3|level >= Error",
		"export|alice|--format jsonl|",
		"verify|alice|all|",
		"prove|alice|seq 2|",
		"monitor|alice|--interval 1ms --once|",
	}
	got := accessReads(t, dir)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("access log reads:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCLIVerifyDetectsDeletedAccessLog: deleting the access log (the
// marker that makes the CLI record reads) makes verify fail with exit 1
// and say so; a read that cannot be recorded fails unless
// --allow-unrecorded.
func TestCLIVerifyDetectsDeletedAccessLog(t *testing.T) {
	dir, _, pubFile := accessFixture(t)
	if r := run(t, "", "verify", "--wal", dir, "--key", pubFile); r.code != 0 {
		t.Fatalf("verify before: exit %d: %s", r.code, r.stderr)
	}
	if err := os.RemoveAll(filepath.Join(dir, audit.AccessDirName)); err != nil {
		t.Fatal(err)
	}
	r := run(t, "", "verify", "--wal", dir, "--key", pubFile)
	if r.code != cli.ExitFailed || !strings.Contains(r.stderr, "access logging was on") {
		t.Fatalf("verify after deleting the access log: exit %d, stderr %q; want 1 and 'access logging was on'", r.code, r.stderr)
	}
}

// TestCLIUnrecordableReadFails: when the access log cannot be written (a
// file in its place), replay shows nothing and exits 1, unless
// --allow-unrecorded, which warns.
func TestCLIUnrecordableReadFails(t *testing.T) {
	dir, _, _ := accessFixture(t)
	adir := filepath.Join(dir, audit.AccessDirName)
	if err := os.Chmod(adir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(adir, 0o700) })
	if os.Getuid() == 0 {
		t.Skip("root writes into a read-only directory")
	}
	r := run(t, "", "replay", "--wal", dir)
	if r.code != cli.ExitFailed || r.stdout != "" || !strings.Contains(r.stderr, "could not be recorded") {
		t.Fatalf("replay with an unwritable access log: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", "replay", "--wal", dir, "--allow-unrecorded")
	if r.code != 0 || r.stdout == "" || !strings.Contains(r.stderr, "warning") {
		t.Fatalf("replay --allow-unrecorded: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}
