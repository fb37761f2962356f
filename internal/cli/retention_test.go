package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
)

// TestCLIRetentionAndHold: status exits 1 while data is overdue, apply
// refuses while another process holds the log and under a minimum, a hold
// keeps the segments, and after clearing it apply deletes them; verify
// then reports the pruned prefix and exits 0.
func TestCLIRetentionAndHold(t *testing.T) {
	dir := t.TempDir()
	logDir := filepath.Join(dir, "wal")
	skey, vkey, err := integrity.GenerateKey("cli-retention")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "audit.key"), []byte(skey), 0o600); err != nil {
		t.Fatal(err)
	}
	// Two years of events, one a day, ending now.
	now := time.Now().UTC()
	at := now.Add(-730 * 24 * time.Hour)
	var clock atomic.Int64 // the sink's clock, read by its goroutines
	clock.Store(at.UnixNano())
	s, err := audit.New(audit.WithWAL(logDir, audit.WithSegmentSize(4096)), audit.WithSigningKey(skey), audit.WithClock(func() time.Time { return time.Unix(0, clock.Load()).UTC() }))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 730 {
		at = at.Add(24 * time.Hour)
		clock.Store(at.UnixNano())
		if _, err := s.Write(context.Background(), &audit.Event{Timestamp: at, MessageTemplate: "Event {N} {Pad}", Properties: map[string]any{"N": i, "Pad": strings.Repeat("y", 300)}}); err != nil {
			t.Fatal(err)
		}
	}
	// While the log is open, apply says what to do.
	r := run(t, dir, "retention", "apply", "--wal", "wal", "--retention", "1y", "--signing-key", "audit.key")
	if r.code != 2 || !strings.Contains(r.stderr, "ApplyRetention") {
		t.Fatalf("apply on an open log: exit %d: %s", r.code, r.stderr)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	r = run(t, dir, "retention", "status", "--wal", "wal", "--retention", "1y", "--max", "1y", "--policy", "GDPR")
	if r.code != 1 || !strings.Contains(r.stdout, "OVERDUE") {
		t.Fatalf("status of an overdue log: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, dir, "retention", "apply", "--wal", "wal", "--retention", "1y", "--min", "6y", "--signing-key", "audit.key")
	if r.code != 2 || !strings.Contains(r.stderr, "minimum") {
		t.Fatalf("apply under a 6-year minimum: exit %d: %s", r.code, r.stderr)
	}
	if r = run(t, dir, "hold", "set", "--wal", "wal", "--signing-key", "audit.key", "--reason", "litigation", "CASE-1"); r.code != 0 {
		t.Fatalf("hold set: exit %d: %s", r.code, r.stderr)
	}
	if r = run(t, dir, "hold", "list", "--wal", "wal"); r.code != 0 || !strings.Contains(r.stdout, "CASE-1") {
		t.Fatalf("hold list: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, dir, "retention", "apply", "--wal", "wal", "--retention", "1y", "--signing-key", "audit.key")
	if r.code != 0 || !strings.Contains(r.stdout, "deleted 0 segments") {
		t.Fatalf("apply under a hold: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r = run(t, dir, "hold", "clear", "--wal", "wal", "--signing-key", "audit.key", "--reason", "closed", "CASE-1"); r.code != 0 {
		t.Fatalf("hold clear: exit %d: %s", r.code, r.stderr)
	}
	if r = run(t, dir, "retention", "apply", "--wal", "wal", "--retention", "1y", "--signing-key", "audit.key"); r.code != 0 || strings.Contains(r.stdout, "deleted 0 segments") {
		t.Fatalf("apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r = run(t, dir, "retention", "status", "--wal", "wal", "--retention", "1y", "--max", "1y"); r.code != 0 {
		t.Fatalf("status after apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if err := os.WriteFile(filepath.Join(dir, "audit.pub"), []byte(vkey), 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, dir, "verify", "--wal", "wal", "--key", "audit.pub")
	if r.code != 0 || !strings.Contains(r.stdout, "pruned under retention") {
		t.Fatalf("verify after retention: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Usage errors.
	for _, args := range [][]string{
		{"retention", "status", "--wal", "wal"},
		{"retention", "status", "--wal", "wal", "--retention", "soon"},
		{"hold", "set", "--wal", "wal", "--signing-key", "audit.key", "CASE-2"},
		{"hold", "set", "--wal", "wal", "--signing-key", "audit.key", "--reason", "x", "--from", "yesterday", "CASE-2"},
	} {
		if r := run(t, dir, args...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", args, r.code, r.stderr)
		}
	}
}
