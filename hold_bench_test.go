package audit_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// BenchmarkHolds reads the legal holds of a log of 100,000 events with one
// hold among them: the cost ApplyRetention pays on every run before it
// plans a deletion.
func BenchmarkHolds(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "log")
	s, err := audit.New(audit.WithWAL(dir), audit.WithSyncMode(audit.SyncInterval, 10*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ev := &audit.Event{Timestamp: time.Unix(1_800_000_000, 0).UTC(), Level: audit.LevelInformation, MessageTemplate: "User {UserId} read {Resource}",
		Properties: map[string]any{"UserId": "u-1234", "Resource": "patient/5678", "Outcome": "ok"}}
	for i := range 100_000 {
		if i == 50_000 {
			if _, err := s.SetHold(ctx, "case-1", "litigation", time.Time{}, time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := s.Write(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		h, err := audit.Holds(ctx, vfs.OS(), dir)
		if err != nil || len(h) != 1 {
			b.Fatalf("holds %v, %v", h, err)
		}
	}
}
