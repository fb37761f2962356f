package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/internal/remotetest"
)

// TestVerifyRemoteAfterClose: a log shipped by a sink and closed cleanly
// is whole in its backend, the segment Close sealed and the final
// checkpoint it signed included: verify --remote reports no difference and
// nothing pending (it used to report that checkpoint as missing-remote and
// the segment as pending until the next New).
func TestVerifyRemoteAfterClose(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	b := remotetest.FSBackend(t)
	key, err := os.ReadFile(filepath.Join(fixtureDir, "test.key"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := audit.New(
		audit.WithWAL(dir, audit.WithSegmentSize(8<<10)),
		audit.WithSigningKey(strings.TrimSpace(string(key))),
		audit.WithShipping(1, b),
		audit.WithShippingRetry(time.Millisecond, 20*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		if _, err := s.Write(context.Background(), fixtureEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := run(t, "", "verify", "--wal", dir, "--key", "test.pub", "--remote", b.Name())
	if r.code != 0 || strings.Contains(r.stdout, "missing-remote") || strings.Contains(r.stdout, "pending") {
		t.Fatalf("verify --remote after a clean Close: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
