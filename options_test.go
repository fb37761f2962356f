package audit_test

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// Every option's range is checked by New, with an error that matches
// ErrInvalidOption and names the option.
func TestOptionRanges(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  audit.Option
	}{
		{"WithWAL", audit.WithWAL("")},
		{"WithSegmentSize", audit.WithWAL(filepath.Join(t.TempDir(), "a"), audit.WithSegmentSize(-1))},
		{"WithSegmentSize", audit.WithWAL(filepath.Join(t.TempDir(), "a"), audit.WithSegmentSize(100))},
		{"WithSyncMode", audit.WithSyncMode(audit.SyncInterval, -time.Second)},
		{"WithSyncMode", audit.WithSyncMode(audit.SyncDurable, -time.Second)},
		{"WithSyncMode", audit.WithSyncMode(audit.SyncMode(7), 0)},
		{"WithGroupCommit", audit.WithGroupCommit(-1, 0)},
		{"WithGroupCommit", audit.WithGroupCommit(0, -time.Millisecond)},
		{"WithFailureHandler", audit.WithFailureHandler(nil)},
		{"WithMaxEventSize", audit.WithMaxEventSize(0)},
		{"WithMaxEventSize", audit.WithMaxEventSize(-5)},
		{"WithMaxEventSize", audit.WithMaxEventSize(1 << 30)},
		{"WithIdempotencyWindow", audit.WithIdempotencyWindow(-1)},
		{"WithFileSystem", audit.WithFileSystem(nil)},
		{"WithSigningKey", audit.WithSigningKey(" \n")},
		{"WithSigningKeyFile", audit.WithSigningKeyFile("")},
		{"WithCheckpoints", audit.WithCheckpoints(0, time.Second, time.Minute)},
		{"WithCheckpoints", audit.WithCheckpoints(1, -time.Second, time.Minute)},
		{"WithCheckpoints", audit.WithCheckpoints(1, time.Second, 0)},
		{"WithForwardSecurity", audit.WithForwardSecurity(0)},
		{"WithClock", audit.WithClock(nil)},
		{"WithRedundancy", audit.WithRedundancy()},
		{"WithRedundancy", audit.WithRedundancy("")},
	} {
		dir := filepath.Join(t.TempDir(), "audit")
		s, err := audit.New(audit.WithWAL(dir), tc.opt)
		if err == nil {
			s.Close()
			t.Errorf("%s: New accepted an out-of-range argument", tc.name)
			continue
		}
		if !errors.Is(err, audit.ErrInvalidOption) || !strings.Contains(err.Error(), tc.name+"(") {
			t.Errorf("%s: error %q does not match ErrInvalidOption or name the option", tc.name, err)
		}
	}
}

// Options that exclude each other are refused, and every problem is
// reported at once; nil options are ignored, not a panic.
func TestOptionProblemsTogether(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	_, err := audit.New(audit.WithWAL(dir, nil), audit.WithFailOpen(), audit.WithPanicOnFailure(),
		audit.WithSyncMode(audit.SyncInterval, -time.Second), audit.WithMaxEventSize(0), nil)
	t.Log(err)
	for _, want := range []string{"WithFailOpen and WithPanicOnFailure", "WithSyncMode(", "WithMaxEventSize("} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v does not name %q", err, want)
		}
	}
	s, err := audit.New(audit.WithWAL(dir, nil), nil, audit.WithSyncMode(audit.SyncInterval, 0), audit.WithIdempotencyWindow(0))
	if err != nil {
		t.Fatalf("zero values meaning the defaults, and nil options: %v", err)
	}
	s.Close()
}

// The entry points that read a log directory say that a missing directory
// does not exist (errors.Is fs.ErrNotExist), not that it has no checkpoint.
func TestMissingLogDirectory(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "nope")
	_, err := audit.ProveInclusion(ctx, vfs.OS(), dir, 1, nil)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("ProveInclusion: %v", err)
	}
	_, err = audit.ProveConsistency(ctx, vfs.OS(), dir, 1, 2)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("ProveConsistency: %v", err)
	}
	if _, err := audit.Verify(ctx, dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Verify: %v", err)
	}
	var rerr error
	for _, err := range audit.Replay(ctx, dir, time.Time{}, time.Time{}) {
		rerr = err
	}
	if !errors.Is(rerr, fs.ErrNotExist) {
		t.Fatalf("Replay: %v", rerr)
	}
}
