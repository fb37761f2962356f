package replica

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// checkRecords is a Verifier that checks what the WAL alone can: checksums,
// sequence and the segment chain. Reconcile takes any verifier; the root
// package gives it the full one (audit.VerifyFS).
func checkRecords(ctx context.Context, fsys vfs.FS, dir string, _ *Roots, _ [][]byte) (*Result, error) {
	wr, err := wal.Check(ctx, fsys, dir, nil)
	res := &Result{}
	if wr != nil {
		res.LastSeq, res.TornTail = wr.LastSeq, wr.TornTail
	}
	var ce *wal.CorruptError
	if errors.As(err, &ce) {
		res.Problem = &Problem{Code: integrity.CodeRecordCorrupt, Segment: ce.Segment, Offset: ce.Offset, Text: ce.Error()}
	}
	return res, err
}

// TestReconcileRepairsFromMirror damages a sealed segment of the primary,
// on the real filesystem, and reconciles it with an intact read-only
// mirror through the package API alone.
func TestReconcileRepairsFromMirror(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	dir, mirror := filepath.Join(root, "log"), filepath.Join(root, "mirror")
	w, err := wal.Open(vfs.OS(), dir, wal.Options{SegmentSize: 64 << 10, Prealloc: -1})
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("audit "), 100)
	for i := range 400 {
		if _, err := w.Append(ctx, wal.RecordEvent, int64(i), payload); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(mirror, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, wal.SegmentName(1))
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := checkRecords(ctx, vfs.OS(), dir, nil, nil); !errors.Is(err, wal.ErrCorrupt) {
		t.Fatalf("the damaged primary checks: %v", err)
	}

	rep, err := Reconcile(ctx, Options{Verify: checkRecords},
		Copy{Replica: vfs.Replica{FS: vfs.OS(), Dir: dir}, Writable: true},
		Copy{Replica: vfs.Replica{FS: vfs.OS(), Dir: mirror}})
	if err != nil {
		t.Fatalf("Reconcile: %v\n%v", err, rep)
	}
	if len(rep.Actions) != 1 || rep.Actions[0].Op != Replaced || rep.Actions[0].File != wal.SegmentName(1) || rep.Actions[0].From != mirror {
		t.Fatalf("actions: %v", rep)
	}
	if rep.Copies[0].Verified || !rep.Copies[1].Verified || rep.LastSeq < 400 || rep.LastSeq != rep.Copies[1].LastSeq { // 400 events and the seals
		t.Fatalf("report: %+v", rep)
	}
	if _, err := checkRecords(ctx, vfs.OS(), dir, nil, nil); err != nil {
		t.Fatalf("the repaired primary does not check: %v", err)
	}
	got, _ := os.ReadFile(seg)
	want, _ := os.ReadFile(filepath.Join(mirror, wal.SegmentName(1)))
	if !bytes.Equal(got, want) {
		t.Fatal("the repaired segment differs from the mirror's")
	}
}

func TestReconcileNeedsAVerifier(t *testing.T) {
	_, err := Reconcile(context.Background(), Options{}, Copy{Replica: vfs.Replica{FS: vfs.OS(), Dir: t.TempDir()}})
	if err == nil {
		t.Fatal("Reconcile without a Verifier succeeded")
	}
}
