package vfs_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// TestReplaceFileCrash: a power cut at any operation of ReplaceFile, with
// any part of what was not synced kept, leaves the old content whole or
// the new content whole; once it returned, the new content always.
func TestReplaceFileCrash(t *testing.T) {
	oldData, newData := bytes.Repeat([]byte("old "), 300), bytes.Repeat([]byte("new!"), 500)
	for cut := int64(0); cut < 12; cut++ {
		for seed := range int64(20) {
			fsys := vfs.NewCrashFS()
			if err := fsys.MkdirAll("/d", 0o700); err != nil {
				t.Fatal(err)
			}
			if err := vfs.ReplaceFile(fsys, "/d/f", "/d/f.tmp", oldData, false); err != nil {
				t.Fatal(err)
			}
			if err := fsys.SyncDir("/"); err != nil {
				t.Fatal(err)
			}
			base := fsys.Count()
			var mu sync.Mutex
			var state *vfs.CrashFS
			fsys.SetHook(func(vfs.Op) {
				mu.Lock()
				defer mu.Unlock()
				if state == nil && fsys.Count()-base >= cut {
					state = fsys.CrashClone(vfs.CrashOptions{Seed: seed, KeepSectorProb: 0.5, KeepDirOpProb: 0.5})
				}
			})
			if err := vfs.ReplaceFile(fsys, "/d/f", "/d/f.tmp", newData, false); err != nil {
				t.Fatal(err)
			}
			fsys.SetHook(nil)
			returned := state == nil
			if returned {
				state = fsys.CrashClone(vfs.CrashOptions{Seed: seed, KeepSectorProb: 0.5, KeepDirOpProb: 0.5})
			}
			got, err := vfs.ReadFile(state, "/d/f")
			if err != nil {
				t.Fatalf("cut %d seed %d: %v", cut, seed, err)
			}
			switch {
			case bytes.Equal(got, newData):
			case bytes.Equal(got, oldData) && !returned:
			default:
				t.Fatalf("cut %d seed %d (returned %v): the file holds %d bytes starting %q", cut, seed, returned, len(got), got[:min(len(got), 8)])
			}
		}
	}
}

// TestReplaceFileLeftoverAndPrivate: a temporary file left by a crash is
// replaced, not an error; with private the result is owner-only.
func TestReplaceFileLeftoverAndPrivate(t *testing.T) {
	dir := t.TempDir()
	name, tmp := filepath.Join(dir, "key"), filepath.Join(dir, "key.tmp")
	if err := os.WriteFile(tmp, []byte("half a key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := vfs.ReplaceFile(vfs.OS(), name, tmp, []byte("secret\n"), true); err != nil {
		t.Fatalf("with a leftover temporary file: %v", err)
	}
	if b, _ := os.ReadFile(name); string(b) != "secret\n" {
		t.Fatalf("content %q", b)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("temporary file still there: %v", err)
	}
	if fi, err := os.Stat(name); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Fatalf("private file mode %v, %v", fi.Mode(), err)
	}
}
