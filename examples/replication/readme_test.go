package main

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/willibrandon/mtlog-audit/backends/s3/s3test"
)

// quickStartMarker precedes the README block TestReadmeQuickStart runs.
const quickStartMarker = "TestReadmeQuickStart runs the next block"

// readmeQuickStart returns the shell block of README.md that follows the
// marker.
func readmeQuickStart(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), quickStartMarker)
	if !ok {
		t.Fatalf("README.md has no %q marker before the MinIO quick start", quickStartMarker)
	}
	_, block, ok := strings.Cut(after, "```sh\n")
	if !ok {
		t.Fatal("README.md: no ```sh block after the quick start marker")
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatal("README.md: the quick start block does not end")
	}
	return block
}

// TestReadmeQuickStart runs the README's MinIO quick start as written,
// against the test MinIO (its endpoint, credentials, a fresh bucket name and
// a temporary directory substituted), with the command built from this
// checkout first on PATH and `go run ./examples/replication`: the README
// cannot rot.
func TestReadmeQuickStart(t *testing.T) {
	srv := s3test.Server(t)
	if testing.Short() {
		t.Skip("builds the command and runs the example: not in -short")
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	srv.Bucket = "mtlog-quickstart-" + hex.EncodeToString(rnd[:])
	s3test.RemoveAtCleanup(t, srv)

	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bin")
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "mtlog-audit"), "../../cmd/mtlog-audit")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the command: %v\n%s", err, out)
	}

	script := readmeQuickStart(t)
	for _, sub := range []struct{ old, new string }{
		{"Q=/tmp/audit-quickstart", "Q=" + filepath.Join(tmp, "quickstart")},
		{"s3://audit-quickstart/", "s3://" + srv.Bucket + "/"},
		{"http://127.0.0.1:9000", srv.Endpoint},
		{"AWS_ACCESS_KEY_ID=quickstart ", "AWS_ACCESS_KEY_ID=" + srv.AccessKeyID + " "},
		{"AWS_SECRET_ACCESS_KEY=quickstart-secret", "AWS_SECRET_ACCESS_KEY=" + srv.SecretAccessKey},
	} {
		if !strings.Contains(script, sub.old) {
			t.Fatalf("the README's quick start no longer has %q: update this test with it\n%s", sub.old, script)
		}
		script = strings.ReplaceAll(script, sub.old, sub.new)
	}
	for _, want := range []string{"mtlog-audit backend init", "go run ./examples/replication", "--anchor-from", "mtlog-audit restore"} {
		if !strings.Contains(script, want) {
			t.Fatalf("the README's quick start lost %q\n%s", want, script)
		}
	}

	cmd := exec.Command("bash", "-euxo", "pipefail", "-c", script)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "AWS_REGION=us-east-1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's quick start failed: %v\n%s", err, out)
	}
	for _, want := range []string{"created; immutable objects (retention): yes", "holds them all", "restored"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the quick start's output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("%s", out)
}
