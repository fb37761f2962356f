package replica

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// cutShortLog writes three events, one batch each, into a log in a new
// directory and leaves it as a crash would (no seal, no zeros filled
// ahead). It returns the directory and each record's batch offset and end
// (index 1 to 3).
func cutShortLog(t *testing.T) (dir string, start, end [4]int64) {
	t.Helper()
	ctx := context.Background()
	dir = filepath.Join(t.TempDir(), "written")
	w, err := wal.Open(vfs.OS(), dir, wal.Options{SegmentSize: 1 << 20, Prealloc: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		// About 300 bytes in a batch of 512: the batch ends in padding,
		// as record 2 of the HungMirror seed did.
		if _, err := w.Append(ctx, wal.RecordEvent, int64(i+1), bytes.Repeat([]byte{byte('a' + i)}, 300)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := wal.Check(ctx, vfs.OS(), dir, func(r wal.Record) error {
		start[r.Seq] = r.Offset
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, wal.SegmentName(1)))
	if err != nil {
		t.Fatal(err)
	}
	end[1], end[2], end[3] = start[2], start[3], fi.Size()
	return dir, start, end
}

// copyAs copies the written log into dir, its segment cut to size bytes
// (-1: whole), and zeroes the zero bytes before zeroEnd (the end of a write
// cut short by a full disk: those bytes were never written).
func copyAs(t *testing.T, from, dir string, size int64, zero int, zeroEnd int64) string {
	t.Helper()
	if err := os.CopyFS(dir, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, wal.LockName))
	seg := filepath.Join(dir, wal.SegmentName(1))
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	if size >= 0 {
		b = b[:size]
	}
	clear(b[zeroEnd-int64(zero) : zeroEnd])
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func reconcileDirs(quorum int, dirs ...string) (*Report, error) {
	var copies []Copy
	for _, d := range dirs {
		copies = append(copies, Copy{Replica: vfs.Replica{FS: vfs.OS(), Dir: d}, Writable: true})
	}
	return Reconcile(context.Background(), Options{Verify: checkRecords, Quorum: quorum}, copies...)
}

// hungMirrorState builds, without the torture harness, the copies that
// HungMirror seed -8696822878235521766 left: a quorum of 3 of 4 copies;
// mirror3 failed at the first event and holds the segment header only;
// event 1 was acknowledged by the primary, mirror1 and mirror2; event 2's
// batch was written to the primary (then undone: the write failed),
// failed on mirror2 (EIO), and was cut short 6 bytes before its end on
// mirror1 (a full disk), which went stale and so kept it.
func hungMirrorState(t *testing.T) (primary, mirror1, mirror2, mirror3 string) {
	written, start, end := cutShortLog(t)
	root := t.TempDir()
	primary = copyAs(t, written, filepath.Join(root, "audit"), end[1], 0, 0)
	mirror1 = copyAs(t, written, filepath.Join(root, "mirror1"), end[2], 6, end[2])
	mirror2 = copyAs(t, written, filepath.Join(root, "mirror2"), end[1], 0, 0)
	mirror3 = copyAs(t, written, filepath.Join(root, "mirror3"), start[1], 0, 0)
	return primary, mirror1, mirror2, mirror3
}

// TestReconcileDropsRecordCutShortInAStaleMirror is the regression test of
// HungMirror seed -8696822878235521766: record 2 is held only by mirror1,
// in a batch whose last 6 bytes were never written (fewer than the 8 zero
// bytes the WAL needs to call a write cut short, so it is damage there).
// No copy holds it whole, so with a quorum of 2 or more it was never
// acknowledged: the repair leaves it out and says so. Before the fix the
// repair refused with ErrDiverged ("/mirror1 holds record 2 ..., which
// verifies, but the repaired log would end before it").
func TestReconcileDropsRecordCutShortInAStaleMirror(t *testing.T) {
	primary, mirror1, mirror2, mirror3 := hungMirrorState(t)
	if _, err := checkRecords(context.Background(), vfs.OS(), mirror1, nil, nil); !errors.Is(err, wal.ErrCorrupt) {
		t.Fatalf("mirror1 checks (want the cut-short batch to read as damage): %v", err)
	}
	rep, err := reconcileDirs(4, primary, mirror1, mirror2, mirror3)
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if rep.LastSeq != 1 || len(rep.Dropped) != 1 || rep.Dropped[0].Dir != mirror1 || rep.Dropped[0].Seq != 2 || rep.Dropped[0].Segment != 1 {
		t.Fatalf("report:\n%v\ndropped: %+v", rep, rep.Dropped)
	}
	for _, want := range []string{"dropped record 2", "never acknowledged", "no copy does"} {
		if !strings.Contains(rep.String(), want) || !strings.Contains(rep.Changes(8), "left out as never acknowledged") {
			t.Fatalf("report does not say %q:\n%v", want, rep)
		}
	}
	want, _ := os.ReadFile(filepath.Join(primary, wal.SegmentName(1)))
	for _, d := range []string{mirror1, mirror2, mirror3} {
		got, _ := os.ReadFile(filepath.Join(d, wal.SegmentName(1)))
		if !bytes.Equal(got, want) {
			t.Fatalf("%s differs from the primary after the repair", d)
		}
	}
}

// TestReconcileKeepsCutShortRecordWithoutQuorum: with no quorum known, or
// a quorum of 1 (the primary alone acknowledges), the same record may have
// been acknowledged and then lost from the primary: the repair refuses.
func TestReconcileKeepsCutShortRecordWithoutQuorum(t *testing.T) {
	for _, q := range []int{0, 1} {
		primary, mirror1, mirror2, mirror3 := hungMirrorState(t)
		_, err := reconcileDirs(q, primary, mirror1, mirror2, mirror3)
		if !errors.Is(err, ErrDiverged) || !strings.Contains(err.Error(), "holds record 2") {
			t.Fatalf("quorum %d: %v", q, err)
		}
	}
}

// TestReconcileNeverDropsAcknowledgedRecord attacks the rule: record 2 was
// acknowledged (every copy held its batch whole), then copies were
// damaged, each in a way that looks like the cut-short write the rule
// accepts where it can. A record some copy still holds whole, or that the
// primary's damage might have taken, or that a checkpoint covers, is
// never dropped: the repair keeps it or refuses.
func TestReconcileNeverDropsAcknowledgedRecord(t *testing.T) {
	written, _, end := cutShortLog(t)
	type cp struct {
		size    int64 // -1: whole
		zero    int
		zeroEnd int64
	}
	whole := cp{-1, 0, 0}
	truncated := cp{end[2], 0, 0} // lost record 3 cleanly
	cut := cp{end[3], 6, end[3]}  // record 3's batch end zeroed
	for _, tc := range []struct {
		name   string
		copies []cp
		cp     bool // mirror1 stores a signed checkpoint of all 3 records
		keep   bool // the repair succeeds and keeps record 3 (else it refuses)
	}{
		{"primary truncated, mirror1 cut, mirror2 whole", []cp{truncated, cut, whole}, false, true},
		{"primary whole, mirror1 cut, mirror2 truncated", []cp{whole, cut, truncated}, false, true},
		{"primary cut, mirrors whole", []cp{cut, whole, whole}, false, true},
		{"primary cut, mirror1 cut, mirror2 truncated", []cp{cut, cut, truncated}, false, false},
		{"primary truncated, mirror1 cut, a checkpoint in mirror1", []cp{truncated, cut, truncated}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			var dirs []string
			for i, c := range tc.copies {
				dirs = append(dirs, copyAs(t, written, filepath.Join(root, string(rune('a'+i))), c.size, c.zero, c.zeroEnd))
			}
			if tc.cp {
				storeCheckpoint(t, dirs[1], 3)
			}
			rep, err := reconcileDirs(3, dirs...)
			if rep != nil && len(rep.Dropped) > 0 {
				t.Fatalf("dropped an acknowledged record: %+v (err %v)", rep.Dropped, err)
			}
			switch {
			case tc.keep && (err != nil || rep.LastSeq != 3):
				t.Fatalf("want record 3 kept: %v\n%v", err, rep)
			case !tc.keep && !errors.Is(err, ErrDiverged):
				t.Fatalf("want ErrDiverged: %v\n%v", err, rep)
			}
		})
	}
}

// storeCheckpoint appends a signed checkpoint of size records to dir's
// checkpoints file (the Verifier of these tests does not check it, so its
// root is not the log's).
func storeCheckpoint(t *testing.T, dir string, size uint64) {
	t.Helper()
	skey, _, err := integrity.GenerateKey("test")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := integrity.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := integrity.SignCheckpoint(integrity.Checkpoint{Origin: "test", Size: size}, signer)
	if err != nil {
		t.Fatal(err)
	}
	l, err := integrity.OpenCheckpointLog(vfs.OS(), filepath.Join(dir, integrity.CheckpointsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Append(signed); err != nil {
		t.Fatal(err)
	}
}
