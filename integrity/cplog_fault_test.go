package integrity

import (
	"errors"
	"syscall"
	"testing"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// TestCheckpointLogTornTailCutFails: when the torn tail of the checkpoint
// log cannot be cut durably on open (the fdatasync after the truncation
// fails), OpenCheckpointLog fails instead of appending after a cut that a
// crash could undo.
func TestCheckpointLogTornTailCutFails(t *testing.T) {
	inner := cpTestFS(t)
	entries := [][]byte{cpEntry(0, 300), cpEntry(1, 40)}
	full := appendFrame(nil, cpEntry(2, 600))
	writeLog(t, inner, "d/cp", entries, full[:len(full)-1])
	fsys := vfs.NewFaultFS(inner)
	fsys.FailSyncs(syscall.EIO)
	l, err := OpenCheckpointLog(fsys, "d/cp")
	if err == nil {
		l.Close()
		t.Fatal("OpenCheckpointLog succeeded although syncing the cut of the torn tail failed")
	}
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("err = %v, want one wrapping EIO", err)
	}
	// Without the fault it opens and cuts the tail.
	fsys.FailSyncs(nil)
	l, err = OpenCheckpointLog(fsys, "d/cp")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	wantEntries(t, l.Entries(), entries)
}
