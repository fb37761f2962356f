package wal

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// activeSegment returns the path of the segment being appended to.
func activeSegment(t *testing.T, w *WAL) string {
	t.Helper()
	files := segmentFiles(t, w.fs)
	if len(files) == 0 {
		t.Fatal("the log has no segment")
	}
	return files[len(files)-1]
}

// wantLost checks that err is the failed state caused by a segment (or the
// next one) no longer being found at its path.
func wantLost(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrFailed) || !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, vfs.ErrUnlinked) {
		t.Fatalf("%s: err = %v, want ErrFailed caused by a missing or replaced file", what, err)
	}
	if !strings.Contains(err.Error(), "removed, renamed or replaced") || !strings.Contains(err.Error(), "reopen the log") {
		t.Fatalf("%s: err = %q does not say what happened and what to do", what, err)
	}
}

// TestUnlinkedSegmentIsNotAcknowledged: once the active segment is no
// longer at its path (removed; its directory removed, or renamed away and
// replaced by an empty one; another file renamed over it), no append is
// acknowledged: each fails with ErrFailed, whose cause says so, and Close
// returns that failure. A write to the open file would succeed, and its
// fdatasync too: only the check after it notices.
func TestUnlinkedSegmentIsNotAcknowledged(t *testing.T) {
	cases := map[string]func(t *testing.T, c *vfs.CrashFS, seg string){
		"segment removed": func(t *testing.T, c *vfs.CrashFS, seg string) {
			must(t, c.Remove(seg))
		},
		"directory removed": func(t *testing.T, c *vfs.CrashFS, seg string) {
			removeAll(t, c, testDir)
		},
		"directory renamed and replaced": func(t *testing.T, c *vfs.CrashFS, seg string) {
			must(t, c.Rename(testDir, testDir+".moved"))
			must(t, c.MkdirAll(testDir, 0o750))
		},
		"segment replaced": func(t *testing.T, c *vfs.CrashFS, seg string) {
			f, err := c.Create(seg + ".copy")
			must(t, err)
			must(t, f.Close())
			must(t, c.Rename(seg+".copy", seg))
		},
	}
	for name, mutate := range cases {
		for _, mode := range []SyncMode{SyncDurable, SyncInterval, SyncNone} {
			t.Run(name+"/"+mode.String(), func(t *testing.T) {
				c := vfs.NewCrashFS()
				w, err := Open(c, testDir, Options{Sync: mode})
				must(t, err)
				defer w.Close()
				for i := range 3 {
					if _, err := w.Append(context.Background(), RecordEvent, int64(i), []byte("before")); err != nil {
						t.Fatal(err)
					}
				}
				mutate(t, c, activeSegment(t, w))
				for i := range 3 {
					seq, err := w.Append(context.Background(), RecordEvent, 9, []byte("after"))
					if err == nil {
						t.Fatalf("append %d after the segment left its path was acknowledged as record %d", i, seq)
					}
					wantLost(t, "append after", err)
				}
				wantLost(t, "Close", w.Close())
			})
		}
	}
}

// TestUnlinkedOS: the same on the operating system's filesystem, with the
// directory removed as os.RemoveAll does it.
func TestUnlinkedOS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w, err := Open(vfs.OS(), dir, Options{})
	must(t, err)
	defer w.Close()
	if _, err := w.Append(context.Background(), RecordEvent, 1, []byte("before")); err != nil {
		t.Fatal(err)
	}
	must(t, os.RemoveAll(dir))
	_, err = w.Append(context.Background(), RecordEvent, 2, []byte("after"))
	wantLost(t, "append after RemoveAll", err)
	if !errors.Is(err, vfs.ErrUnlinked) || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("append after RemoveAll: err = %v, want vfs.ErrUnlinked and ENOENT", err)
	}
}

// TestNextSegmentInRemovedDirectory: when the directory disappears after
// a segment was sealed and before the next one is created, creating it
// fails the log rather than leaving it to retry on every batch.
func TestNextSegmentInRemovedDirectory(t *testing.T) {
	c := vfs.NewCrashFS()
	w, err := Open(c, testDir, Options{SegmentSize: 4096})
	must(t, err)
	defer w.Close()
	var removed atomic.Bool
	c.SetHook(func(op vfs.Op) {
		if op.Kind == vfs.OpCreate && strings.HasSuffix(op.Name, ".tmp") && !removed.Swap(true) {
			removeAll(t, c, testDir)
		}
	})
	payload := make([]byte, 1000)
	var appendErr error
	for i := 0; i < 20 && appendErr == nil; i++ {
		_, appendErr = w.Append(context.Background(), RecordEvent, 1, payload)
	}
	if !removed.Load() {
		t.Fatal("no next segment was created in 20 appends of 1000 bytes into 4096-byte segments")
	}
	wantLost(t, "append that needed the next segment", appendErr)
	if !strings.Contains(appendErr.Error(), "the next segment") {
		t.Fatalf("err = %q, want it to name the next segment", appendErr)
	}
	_, err = w.Append(context.Background(), RecordEvent, 1, payload)
	wantLost(t, "later append", err)
}

// TestCloseReturnsFailure: after a failed fdatasync put the log into its
// failed state, Close returns that failure with its cause, and so does
// every later Close; Release does the same.
func TestCloseReturnsFailure(t *testing.T) {
	for _, release := range []bool{false, true} {
		ffs := vfs.NewFaultFS(vfs.NewCrashFS())
		w, err := Open(ffs, testDir, Options{})
		must(t, err)
		if _, err := w.Append(context.Background(), RecordEvent, 1, []byte("ok")); err != nil {
			t.Fatal(err)
		}
		ffs.FailSyncs(syscall.EIO)
		if _, err := w.Append(context.Background(), RecordEvent, 1, []byte("x")); !errors.Is(err, ErrFailed) {
			t.Fatalf("append with failing fdatasync: %v, want ErrFailed", err)
		}
		ffs.FailSyncs(nil)
		close := w.Close
		if release {
			close = w.Release
		}
		first := close()
		if !errors.Is(first, ErrFailed) || !errors.Is(first, syscall.EIO) {
			t.Fatalf("release %v: first close = %v, want ErrFailed and EIO", release, first)
		}
		for _, again := range []func() error{w.Close, w.Release} {
			if err := again(); !errors.Is(err, ErrFailed) || err.Error() != first.Error() {
				t.Fatalf("release %v: later close = %v, want the first one's %v", release, err, first)
			}
		}
	}
}

// TestCloseAfterCleanRunIsNil: the other side of TestCloseReturnsFailure:
// a log that never failed closes with nil, every time.
func TestCloseAfterCleanRunIsNil(t *testing.T) {
	w, err := Open(vfs.NewCrashFS(), testDir, Options{})
	must(t, err)
	if _, err := w.Append(context.Background(), RecordEvent, 1, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := w.Close(); err != nil {
			t.Fatalf("Close = %v, want nil", err)
		}
	}
}

// removeAll removes dir and the files in it, as os.RemoveAll does. It may
// be called from any goroutine (a CrashFS hook runs on the committer's).
func removeAll(t *testing.T, c *vfs.CrashFS, dir string) {
	t.Helper()
	names, err := c.List(dir)
	for _, n := range names {
		err = errors.Join(err, c.Remove(filepath.Join(dir, n)))
	}
	if err = errors.Join(err, c.Remove(dir)); err != nil {
		t.Errorf("remove %s: %v", dir, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRelativeDirAfterChdir: a log opened by a relative path keeps
// acknowledging after the process changes its working directory (the
// check uses the path made absolute at open), and still notices a removal.
func TestRelativeDirAfterChdir(t *testing.T) {
	base := t.TempDir()
	t.Chdir(base)
	w, err := Open(vfs.OS(), "rel", Options{})
	must(t, err)
	defer w.Close()
	if _, err := w.Append(context.Background(), RecordEvent, 1, []byte("before")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	if _, err := w.Append(context.Background(), RecordEvent, 2, []byte("after chdir")); err != nil {
		t.Fatalf("append after chdir: %v", err)
	}
	must(t, os.RemoveAll(filepath.Join(base, "rel")))
	_, err = w.Append(context.Background(), RecordEvent, 3, []byte("after RemoveAll"))
	if !errors.Is(err, vfs.ErrUnlinked) {
		t.Fatalf("append after RemoveAll: err = %v, want vfs.ErrUnlinked", err)
	}
}
