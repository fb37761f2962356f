package audit_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
)

// TestLeftoverTagKeyTempIsReplaced: a crash while the retiring batch-tag
// key was being stored leaves epoch.tagkey.prev.tmp behind. The next key
// rotation must replace it, not fail the log with "file exists" (it did:
// the temporary file was created exclusively, and nothing removed a
// leftover).
func TestLeftoverTagKeyTempIsReplaced(t *testing.T) {
	dir, sk, vk := signedLog(t, 10, 5, audit.WithForwardSecurity(time.Nanosecond))
	if err := os.WriteFile(filepath.Join(dir, "epoch.tagkey.prev.tmp"), []byte("torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := audit.New(audit.WithWAL(dir, audit.WithSegmentSize(attackSeg)), audit.WithSigningKey(sk), audit.WithForwardSecurity(time.Nanosecond), audit.WithCheckpoints(5, time.Hour, time.Hour))
	if err != nil {
		t.Fatalf("reopen with a leftover temporary tag key: %v", err)
	}
	cps := 0
	for i := range 20 {
		if _, err := s.Write(context.Background(), &audit.Event{Timestamp: time.Unix(1_800_000_100+int64(i), 0).UTC(), MessageTemplate: "event {N}", Properties: map[string]any{"N": i}}); err != nil {
			t.Fatalf("write %d after a leftover temporary tag key: %v", i, err)
		}
		if (i+1)%5 == 0 {
			cps = awaitCheckpoint(t, dir, cps)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "epoch.tagkey.prev.tmp")); !os.IsNotExist(err) {
		t.Fatalf("the leftover is still there (no rotation stored the tag key?): %v", err)
	}
	vr, err := audit.Verify(context.Background(), dir, audit.WithTrustedKeys(vk))
	if err != nil || !vr.OK {
		t.Fatalf("verify: %v %+v", err, vr)
	}
}
