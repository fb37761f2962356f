package audit_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// TestCloseHoldsLockUntilItsLastWrite: Close writes the final checkpoint
// (and the tree) after the records are closed. Until its last write to
// the log's directory, another process must not be able to take the
// directory lock and open the log: two writers would append to the same
// checkpoints file. Before, the WAL released the lock first.
func TestCloseHoldsLockUntilItsLastWrite(t *testing.T) {
	skey, _, err := integrity.GenerateKey("close-lock")
	if err != nil {
		t.Fatal(err)
	}
	fsys := vfs.NewCrashFS()
	s, err := audit.New(audit.WithWAL("/audit"), audit.WithFileSystem(fsys), audit.WithSigningKey(skey), audit.WithCheckpoints(1<<20, time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := s.Write(context.Background(), &audit.Event{Timestamp: time.Unix(1_800_000_000+int64(i), 0).UTC(), MessageTemplate: "event {N}", Properties: map[string]any{"N": i}}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var probes, stolen []string
	fsys.SetHook(func(op vfs.Op) {
		if op.Kind != vfs.OpWrite || !strings.HasPrefix(op.Name, "/audit/") || strings.HasSuffix(op.Name, ".wal") {
			return
		}
		l, err := fsys.Lock("/audit/"+wal.LockName, "another process")
		mu.Lock()
		defer mu.Unlock()
		probes = append(probes, op.Name)
		if err == nil {
			stolen = append(stolen, op.Name)
			l.Close()
		} else if !errors.Is(err, vfs.ErrLocked) {
			t.Errorf("lock probe: %v", err)
		}
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fsys.SetHook(nil)
	if len(probes) == 0 {
		t.Fatal("Close wrote no checkpoint or tree file: nothing was probed")
	}
	if len(stolen) > 0 {
		t.Fatalf("another owner took the directory lock while Close wrote %q", stolen)
	}
	l, err := fsys.Lock("/audit/"+wal.LockName, "another process")
	if err != nil {
		t.Fatalf("after Close the lock is still held: %v", err)
	}
	l.Close()
}
