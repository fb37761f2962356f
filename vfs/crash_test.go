package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"strings"
	"sync"
	"syscall"
	"testing"
)

var (
	loseAll = CrashOptions{Seed: 1}
	keepAll = CrashOptions{Seed: 1, KeepSectorProb: 1, KeepDirOpProb: 1}
)

func TestCrashFS(t *testing.T) {
	c := NewCrashFS()
	if err := c.MkdirAll("/data", 0o750); err != nil {
		t.Fatal(err)
	}
	testFS(t, c, "/data")
	testFS(t, NewCrashFS(), ".")
}

// dump returns every file of fsys (path → contents) and every directory
// (path + "/" → "").
func dump(t *testing.T, fsys FS) map[string]string {
	t.Helper()
	out := make(map[string]string)
	var walk func(dir string)
	walk = func(dir string) {
		names, err := fsys.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			p := path.Join(dir, name)
			fi, err := fsys.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.IsDir() {
				out[p+"/"] = ""
				walk(p)
			} else {
				out[p] = string(readFile(t, fsys, p))
			}
		}
	}
	walk(".")
	return out
}

func mustCreate(t *testing.T, fsys FS, name string) File {
	t.Helper()
	f, err := fsys.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mustWrite(t *testing.T, f File, off int64, data string) {
	t.Helper()
	if _, err := f.WriteAt([]byte(data), off); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantFiles(t *testing.T, fsys FS, want map[string]string) {
	t.Helper()
	if got := dump(t, fsys); !maps.Equal(got, want) {
		t.Errorf("files = %q, want %q", got, want)
	}
}

func TestCrashUnsyncedWrite(t *testing.T) {
	c := NewCrashFS()
	f := mustCreate(t, c, "f")
	must(t, c.SyncDir("."))
	mustWrite(t, f, 0, "hello")
	wantFiles(t, c.CrashClone(loseAll), map[string]string{"f": ""})
	wantFiles(t, c.CrashClone(keepAll), map[string]string{"f": "hello"})
	// The receiver is unchanged.
	wantFiles(t, c, map[string]string{"f": "hello"})
}

func TestCrashSyncedWriteSurvives(t *testing.T) {
	for _, sync := range []string{"Sync", "Datasync"} {
		t.Run(sync, func(t *testing.T) {
			c := NewCrashFS()
			f := mustCreate(t, c, "f")
			must(t, c.SyncDir("."))
			mustWrite(t, f, 0, "durable")
			// Sync through a second handle: durability belongs to the inode.
			g, err := c.OpenReadWrite("f")
			must(t, err)
			if sync == "Sync" {
				must(t, g.Sync())
			} else {
				must(t, g.Datasync())
			}
			mustWrite(t, f, 7, " and more")
			mustWrite(t, f, 0, "D")
			wantFiles(t, c.CrashClone(loseAll), map[string]string{"f": "durable"})
			wantFiles(t, c.CrashClone(keepAll), map[string]string{"f": "Durable and more"})
			for seed := range int64(20) {
				got := dump(t, c.CrashClone(CrashOptions{Seed: seed, KeepSectorProb: 0.5, KeepDirOpProb: 0.5}))["f"]
				if got != "durable" && got != "Durable and more" { // one sector: all or nothing
					t.Fatalf("seed %d: f = %q", seed, got)
				}
			}
		})
	}
}

func TestCrashUnsyncedTruncate(t *testing.T) {
	c := NewCrashFS()
	f := mustCreate(t, c, "f")
	must(t, c.SyncDir("."))
	mustWrite(t, f, 0, strings.Repeat("x", 1000))
	must(t, f.Sync())
	must(t, f.Truncate(100))
	wantFiles(t, c.CrashClone(loseAll), map[string]string{"f": strings.Repeat("x", 1000)})
	wantFiles(t, c.CrashClone(keepAll), map[string]string{"f": strings.Repeat("x", 100)})
}

// TestCrashTornSectors writes 8 KiB over a synced 3000-byte prefix and
// checks that after a crash each sector is entirely new or entirely old
// (zero past the old end), and that the length is the old one or the end of
// a sector.
func TestCrashTornSectors(t *testing.T) {
	for _, sector := range []int{512, 4096} {
		t.Run(fmt.Sprint(sector), func(t *testing.T) {
			const oldLen, newLen = 3000, 8192
			c := NewCrashFS()
			f := mustCreate(t, c, "f")
			must(t, c.SyncDir("."))
			mustWrite(t, f, 0, strings.Repeat("a", oldLen))
			must(t, f.Datasync())
			mustWrite(t, f, 0, strings.Repeat("b", newLen))

			old := func(i int) byte {
				if i < oldLen {
					return 'a'
				}
				return 0
			}
			var torn, lengths = 0, map[int]bool{}
			for seed := range int64(40) {
				got := dump(t, c.CrashClone(CrashOptions{Seed: seed, SectorSize: sector, KeepSectorProb: 0.5}))["f"]
				if len(got) != oldLen && (len(got)%sector != 0 || len(got) < oldLen || len(got) > newLen) {
					t.Fatalf("seed %d: length %d is neither %d nor a sector end in (%d, %d]", seed, len(got), oldLen, oldLen, newLen)
				}
				lengths[len(got)] = true
				kinds := map[string]bool{}
				for s := 0; s < len(got); s += sector {
					sec := got[s:min(s+sector, len(got))]
					isNew := strings.Count(sec, "b") == len(sec)
					isOld := true
					for i := range len(sec) {
						isOld = isOld && sec[i] == old(s+i)
					}
					switch {
					case isNew:
						kinds["new"] = true
					case isOld:
						kinds["old"] = true
					default:
						t.Fatalf("seed %d: sector at %d is torn within: %q", seed, s, sec)
					}
				}
				if kinds["new"] && kinds["old"] {
					torn++
				}
			}
			if torn == 0 {
				t.Error("no clone mixed new and old sectors")
			}
			if len(lengths) < 2 {
				t.Errorf("every clone had the same length %v", lengths)
			}
		})
	}
}

func TestCrashCreateNeedsSyncDir(t *testing.T) {
	c := NewCrashFS()
	must(t, c.MkdirAll("wal", 0o750))
	f := mustCreate(t, c, "wal/1")
	mustWrite(t, f, 0, "data")
	must(t, f.Sync())
	wantFiles(t, c.CrashClone(loseAll), map[string]string{})
	wantFiles(t, c.CrashClone(keepAll), map[string]string{"wal/": "", "wal/1": "data"})

	// Syncing the new directory alone is not enough: its own entry in the
	// root is still pending.
	must(t, c.SyncDir("wal"))
	wantFiles(t, c.CrashClone(loseAll), map[string]string{})
	must(t, c.SyncDir("."))
	wantFiles(t, c.CrashClone(loseAll), map[string]string{"wal/": "", "wal/1": "data"})

	// An unsynced remove is lost; a synced one is not.
	must(t, c.Remove("wal/1"))
	wantFiles(t, c.CrashClone(loseAll), map[string]string{"wal/": "", "wal/1": "data"})
	must(t, c.SyncDir("wal"))
	wantFiles(t, c.CrashClone(loseAll), map[string]string{"wal/": ""})
}

// TestCrashRenameAtomic replaces a file by renaming a synced temporary over
// it: after any crash the target holds the old or the new contents, never a
// mixture and never nothing.
func TestCrashRenameAtomic(t *testing.T) {
	c := NewCrashFS()
	must(t, c.MkdirAll("d", 0o750))
	must(t, c.SyncDir("."))
	f := mustCreate(t, c, "d/target")
	mustWrite(t, f, 0, "old")
	must(t, f.Sync())
	must(t, c.SyncDir("d"))

	tmp := mustCreate(t, c, "d/target.tmp")
	mustWrite(t, tmp, 0, "new contents")
	must(t, tmp.Sync())
	must(t, c.Rename("d/target.tmp", "d/target"))
	// A pending rename out of the directory that is lost with it.
	must(t, c.Rename("d/target", "d/target2"))
	must(t, c.Rename("d/target2", "d/target"))

	outcomes := map[string]bool{}
	for seed := range int64(64) {
		got := dump(t, c.CrashClone(CrashOptions{Seed: seed, KeepSectorProb: 0.5, KeepDirOpProb: 0.5}))
		delete(got, "d/")
		switch {
		case maps.Equal(got, map[string]string{"d/target": "old"}),
			maps.Equal(got, map[string]string{"d/target": "old", "d/target.tmp": "new contents"}),
			maps.Equal(got, map[string]string{"d/target": "new contents"}),
			maps.Equal(got, map[string]string{"d/target2": "new contents"}):
			outcomes[fmt.Sprint(got)] = true
		default:
			t.Fatalf("seed %d: impossible state %q", seed, got)
		}
	}
	if len(outcomes) < 3 {
		t.Errorf("only %d distinct outcomes: %v", len(outcomes), outcomes)
	}
	wantFiles(t, c.CrashClone(loseAll), map[string]string{"d/": "", "d/target": "old"})
	wantFiles(t, c.CrashClone(keepAll), map[string]string{"d/": "", "d/target": "new contents"})
	must(t, c.SyncDir("d"))
	wantFiles(t, c.CrashClone(loseAll), map[string]string{"d/": "", "d/target": "new contents"})
}

func TestCrashRenameDirectory(t *testing.T) {
	c := NewCrashFS()
	must(t, c.MkdirAll("a/sub", 0o750))
	writeFile(t, c, "a/sub/f", "x")
	if err := c.Rename("a", "a/sub/a"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("rename into itself: err = %v, want EINVAL", err)
	}
	must(t, c.Rename("a/sub", "b"))
	wantFiles(t, c, map[string]string{"a/": "", "b/": "", "b/f": "x"})
	// Sync every directory, children first.
	for _, dir := range []string{"b", "a", "."} {
		must(t, c.SyncDir(dir))
	}
	wantFiles(t, c.CrashClone(loseAll), map[string]string{"a/": "", "b/": "", "b/f": ""})
}

// history performs a mix of synced and unsynced operations.
func history(t *testing.T) *CrashFS {
	c := NewCrashFS()
	must(t, c.MkdirAll("d", 0o750))
	must(t, c.SyncDir("."))
	for i := range 8 {
		f := mustCreate(t, c, fmt.Sprintf("d/%d", i))
		mustWrite(t, f, 0, strings.Repeat(string(rune('a'+i)), 3000))
		if i%2 == 0 {
			must(t, f.Sync())
			must(t, c.SyncDir("d"))
		}
		mustWrite(t, f, 1000, strings.Repeat("Z", 5000))
		if i%3 == 0 {
			must(t, c.Rename(fmt.Sprintf("d/%d", i), fmt.Sprintf("d/r%d", i)))
		}
	}
	return c
}

func TestCrashDeterministic(t *testing.T) {
	opts := CrashOptions{Seed: 42, KeepSectorProb: 0.5, KeepDirOpProb: 0.5}
	a := dump(t, history(t).CrashClone(opts))
	b := dump(t, history(t).CrashClone(opts))
	if !maps.Equal(a, b) {
		t.Fatal("same seed and history gave different clones")
	}
	c := history(t)
	if !maps.Equal(dump(t, c.CrashClone(opts)), dump(t, c.CrashClone(opts))) {
		t.Fatal("cloning twice with the same seed gave different clones")
	}
	opts.Seed = 43
	if maps.Equal(a, dump(t, c.CrashClone(opts))) {
		t.Error("different seeds gave identical clones")
	}
}

func TestCrashCloneIndependent(t *testing.T) {
	c := NewCrashFS()
	f := mustCreate(t, c, "f")
	mustWrite(t, f, 0, "one")
	l, err := c.Lock("LOCK", "me")
	must(t, err)
	defer l.Close()
	clone := c.CrashClone(keepAll)
	// Everything in a clone is durable.
	wantFiles(t, clone.CrashClone(loseAll), map[string]string{"f": "one", "LOCK": "me"})
	// The process died: nobody holds the lock in the clone.
	cl, err := clone.Lock("LOCK", "recovery")
	if err != nil {
		t.Fatalf("Lock in clone: %v", err)
	}
	cl.Close()
	g, err := clone.OpenReadWrite("f")
	must(t, err)
	mustWrite(t, g, 0, "TWO")
	mustWrite(t, f, 3, "+")
	if got := string(readFile(t, c, "f")); got != "one+" {
		t.Errorf("original = %q, want one+", got)
	}
	if got := string(readFile(t, clone, "f")); got != "TWO" {
		t.Errorf("clone = %q, want TWO", got)
	}
}

func TestCrashHook(t *testing.T) {
	c := NewCrashFS()
	var ops []Op
	var clone *CrashFS
	c.SetHook(func(op Op) {
		ops = append(ops, op)
		if op.Kind == OpWrite && op.Off == 3 {
			if c.Count() != int64(len(ops)) {
				t.Errorf("Count() = %d inside hook, want %d", c.Count(), len(ops))
			}
			clone = c.CrashClone(keepAll) // must not deadlock
		}
	})
	f := mustCreate(t, c, "f")
	mustWrite(t, f, 0, "abc")
	mustWrite(t, f, 3, "def")
	must(t, f.Truncate(4))
	must(t, f.Datasync())
	must(t, c.Rename("f", "g"))
	must(t, c.SyncDir("."))
	c.SetHook(nil)
	must(t, c.Remove("g"))

	want := []Op{
		{Kind: OpCreate, Name: "f"},
		{Kind: OpWrite, Name: "f", Off: 0, Len: 3},
		{Kind: OpWrite, Name: "f", Off: 3, Len: 3},
		{Kind: OpTruncate, Name: "f", Off: 4},
		{Kind: OpDatasync, Name: "f"},
		{Kind: OpRename, Name: "f", NewName: "g"},
		{Kind: OpSyncDir, Name: "."},
	}
	if fmt.Sprint(ops) != fmt.Sprint(want) {
		t.Errorf("hook saw %v, want %v", ops, want)
	}
	if c.Count() != int64(len(want))+1 {
		t.Errorf("Count() = %d, want %d", c.Count(), len(want)+1)
	}
	if clone == nil {
		t.Fatal("hook did not clone")
	}
	wantFiles(t, clone, map[string]string{"f": "abc"})
}

func TestCrashRemovedHandleWorks(t *testing.T) {
	c := NewCrashFS()
	f := mustCreate(t, c, "f")
	must(t, c.SyncDir("."))
	mustWrite(t, f, 0, "before")
	must(t, c.Remove("f"))
	if _, err := c.Open("f"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open removed file: err = %v", err)
	}
	mustWrite(t, f, 6, " after")
	must(t, f.Sync())
	buf := make([]byte, 12)
	if n, err := f.ReadAt(buf, 0); n != 12 || err != nil || string(buf) != "before after" {
		t.Errorf("ReadAt on removed file = %d, %v, %q", n, err, buf)
	}
	// A new file of the same name is a different inode.
	writeFile(t, c, "f", "new")
	if got := string(readFile(t, c, "f")); got != "new" {
		t.Errorf("new file = %q", got)
	}
	// Removal and re-creation are pending: a crash brings back the old
	// inode with its synced contents.
	wantFiles(t, c.CrashClone(loseAll), map[string]string{"f": "before after"})
	must(t, c.SyncDir("."))
	wantFiles(t, c.CrashClone(loseAll), map[string]string{"f": ""})
}

func TestCrashClosedHandle(t *testing.T) {
	c := NewCrashFS()
	f := mustCreate(t, c, "f")
	must(t, f.Close())
	if _, err := f.WriteAt([]byte("x"), 0); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("WriteAt after Close: err = %v", err)
	}
	if err := f.Close(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("second Close: err = %v", err)
	}
}

// TestCrashConcurrent runs a writer, readers and crash clones at once; run
// with -race.
func TestCrashConcurrent(t *testing.T) {
	c := NewCrashFS()
	must(t, c.MkdirAll("d", 0o750))
	f := mustCreate(t, c, "d/log")
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		rec := bytes.Repeat([]byte("r"), 100)
		for i := range 500 {
			if _, err := f.WriteAt(rec, int64(i*len(rec))); err != nil {
				t.Error(err)
				return
			}
			if i%10 == 0 {
				if err := f.Datasync(); err != nil {
					t.Error(err)
				}
			}
		}
	}()
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.Open("d/log")
			if err != nil {
				t.Error(err)
				return
			}
			buf := make([]byte, 100)
			for i := int64(0); ; i++ {
				select {
				case <-done:
					return
				default:
				}
				r.ReadAt(buf, (i%50)*100)
				c.List("d")
				clone := c.CrashClone(CrashOptions{Seed: i, KeepSectorProb: 0.5, KeepDirOpProb: 0.5})
				if _, err := clone.Stat("d/log"); err != nil && !errors.Is(err, fs.ErrNotExist) {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if size, _ := f.Size(); size != 50000 {
		t.Errorf("size = %d, want 50000", size)
	}
}
