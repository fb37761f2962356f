package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
)

// TestVerifyReplayLiveLog (issue 14): verify (with --key and without) and
// replay, run by the binary (another process) while this process writes
// the log from several goroutines, rotating segments and appending signed
// checkpoints, exit 0 or 3, never 1: a live log is read up to the end of
// what was written, and a batch being written is never reported as damage.
func TestVerifyReplayLiveLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	skey, vkey, err := integrity.GenerateKey(keyName)
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(t.TempDir(), "live.pub")
	if err := os.WriteFile(pub, []byte(vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := audit.New(audit.WithWAL(dir, audit.WithSegmentSize(24<<10)), audit.WithSigningKey(skey),
		audit.WithCheckpoints(50, 20*time.Millisecond, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				if _, err := s.Write(ctx, &audit.Event{Timestamp: time.Now(), Level: audit.LevelInformation,
					MessageTemplate: "writer {W} event {I}", Properties: map[string]any{"W": w, "I": i, "Pad": strings.Repeat("x", 20)}}); err != nil && ctx.Err() == nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	for i := range 8 {
		for _, args := range [][]string{
			{"verify", "--wal", dir, "--key", pub},
			{"verify", "--wal", dir},
			{"replay", "--wal", dir, "--json", "--last", "1"},
		} {
			r := run(t, t.TempDir(), args...)
			if r.code != 0 && r.code != 3 {
				t.Fatalf("run %d: %s on a live log: exit %d, want 0 or 3\nstdout (end): %s\nstderr: %s", i, strings.Join(args[:1], " "), r.code, tail(r.stdout), r.stderr)
			}
		}
	}
}

// tail returns the last lines of s.
func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-8):], "\n")
}
