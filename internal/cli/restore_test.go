package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/willibrandon/mtlog-audit/internal/cli"
	"github.com/willibrandon/mtlog-audit/internal/remotetest"
)

// shipFixture copies the fixture log into a new filesystem backend with the
// remote object layout and returns its file:// URL.
func shipFixture(t *testing.T, dir string) string {
	t.Helper()
	b := remotetest.FSBackend(t)
	remotetest.Ship(t, dir, b)
	return b.Name()
}

// TestRestoreCommand restores the fixture log from a file:// backend, with
// --json, and verifies the result; then a non-empty --to, a URL that does
// not parse, an unknown scheme and an empty backend are usage errors that
// say what to do.
func TestRestoreCommand(t *testing.T) {
	url := shipFixture(t, filepath.Join(fixtureDir, "wal"))
	to := filepath.Join(t.TempDir(), "restored")
	r := run(t, "", "restore", "--from", url, "--to", to, "--key", "test.pub", "--json")
	if r.code != 0 {
		t.Fatalf("restore: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var j struct {
		OK       bool   `json:"ok"`
		Status   string `json:"status"`
		Segments []any  `json:"segments"`
		Bad      []any  `json:"bad_objects"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil || !j.OK || j.Status != "verified" || len(j.Segments) == 0 || len(j.Bad) != 0 {
		t.Fatalf("restore --json: %v\n%s", err, r.stdout)
	}
	if r := run(t, "", "verify", "--wal", to, "--key", "test.pub"); r.code != 0 {
		t.Fatalf("verify the restored log: exit %d\n%s", r.code, r.stdout)
	}
	empty := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", url, "--to", to}, "not empty"},
		{[]string{"--from", "file://%zz", "--to", t.TempDir()}, "does not parse"},
		{[]string{"--from", "ftp://host/x", "--to", t.TempDir()}, "unknown scheme"},
		{[]string{"--from", "file://" + empty, "--to", t.TempDir()}, "no object under"},
	} {
		r := run(t, "", append([]string{"restore"}, c.args...)...)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("restore %v: exit %d, want %d and %q in\n%s", c.args, r.code, cli.ExitUsage, c.want, r.stderr)
		}
	}
}

// TestVerifyAnchorFromAndRemote: an intact log verifies against its
// backend; the same log rolled back (its newest segment and checkpoints
// removed, as an attacker with root would) still verifies locally, but
// --anchor-from fails with exit 1 and --remote names what is missing.
func TestVerifyAnchorFromAndRemote(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(fixtureDir, "wal"))); err != nil {
		t.Fatal(err)
	}
	url := shipFixture(t, dir)
	if r := run(t, "", "verify", "--wal", dir, "--key", "test.pub", "--anchor-from", url, "--remote", url); r.code != 0 {
		t.Fatalf("intact: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// The rollback: restore the log as it was after its first segment.
	to := filepath.Join(t.TempDir(), "old")
	if r := run(t, "", "restore", "--from", url, "--to", to, "--key", "test.pub"); r.code != 0 {
		t.Fatal(r.stdout, r.stderr)
	}
	names, _ := os.ReadDir(to)
	var segs []string
	for _, n := range names {
		if strings.HasSuffix(n.Name(), ".wal") {
			segs = append(segs, n.Name())
		}
	}
	if len(segs) < 2 {
		t.Fatalf("the fixture has %d segments, want at least 2", len(segs))
	}
	last := segs[len(segs)-1]
	if err := os.Remove(filepath.Join(to, last)); err != nil {
		t.Fatal(err)
	}
	// Local checkpoints beyond the remaining records go too (the attacker
	// keeps the local log consistent): the checkpoints file is dropped.
	os.Remove(filepath.Join(to, "checkpoints"))
	if r := run(t, "", "verify", "--wal", to, "--key", "test.pub"); r.code == cli.ExitFailed {
		t.Fatalf("local verification alone should not fail: %d\n%s", r.code, r.stdout)
	}
	r := run(t, "", "verify", "--wal", to, "--key", "test.pub", "--anchor-from", url, "--json")
	if r.code != cli.ExitFailed || !strings.Contains(r.stdout, "anchor-mismatch") {
		t.Fatalf("anchored: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", "verify", "--wal", to, "--key", "test.pub", "--remote", url)
	if r.code != cli.ExitFailed || !strings.Contains(r.stdout, "missing-local") || !strings.Contains(r.stdout, last[len(last)-14:]) && !strings.Contains(r.stdout, "REMOTE DIFFERS") {
		t.Fatalf("remote: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, "", "verify", "--wal", to, "--anchor-from", url); r.code != cli.ExitUsage || !strings.Contains(r.stderr, "--key") {
		t.Fatalf("--anchor-from without --key: exit %d\n%s", r.code, r.stderr)
	}
}
