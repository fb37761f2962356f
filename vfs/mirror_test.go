package vfs

import (
	"errors"
	"io/fs"
	"maps"
	"path"
	"strings"
	"syscall"
	"testing"
)

// copies returns every file under dir (relative path → contents).
func copyOf(t *testing.T, fsys FS, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for p, data := range dump(t, fsys) {
		if rest, ok := strings.CutPrefix(p, dir+"/"); ok {
			out[rest] = data
		}
	}
	return out
}

func newMirror(t *testing.T) (*CrashFS, *Mirror) {
	t.Helper()
	c := NewCrashFS()
	must(t, c.MkdirAll("p", 0o750))
	must(t, c.MkdirAll("m1", 0o750))
	must(t, c.MkdirAll("m2", 0o750))
	must(t, c.SyncDir("."))
	m, err := NewMirror(c, "p", "m1", "m2")
	must(t, err)
	return c, m
}

func TestMirrorSharedBehaviour(t *testing.T) {
	c, m := newMirror(t)
	testFS(t, m, "p")
	p := copyOf(t, c, "p")
	for _, d := range []string{"m1", "m2"} {
		if got := copyOf(t, c, d); !maps.Equal(got, p) {
			t.Errorf("copy %s = %q, want the primary's %q", d, got, p)
		}
	}
}

func TestMirrorWritesEveryCopyReadsPrimary(t *testing.T) {
	c, m := newMirror(t)
	f := mustCreate(t, m, "p/seg")
	mustWrite(t, f, 0, "header")
	mustWrite(t, f, 512, "batch")
	must(t, f.Truncate(600))
	must(t, f.Datasync())
	must(t, m.SyncDir("p"))
	must(t, m.MkdirAll("p/sub/dir", 0o750))
	must(t, m.Rename("p/seg", "p/sub/seg"))
	must(t, m.SyncDir("p"))
	must(t, m.SyncDir("p/sub"))
	for _, d := range []string{"m1", "m2"} {
		if got, want := copyOf(t, c, d), copyOf(t, c, "p"); !maps.Equal(got, want) {
			t.Fatalf("copy %s = %q, want %q", d, got, want)
		}
	}
	// A power loss now keeps everything in every copy: it was all synced.
	crashed := c.CrashClone(CrashOptions{Seed: 1})
	for _, d := range []string{"p", "m1", "m2"} {
		if got := string(readFile(t, crashed, d+"/sub/seg")); len(got) != 600 || !strings.HasPrefix(got, "header") {
			t.Errorf("after a crash, %s/sub/seg = %q", d, got)
		}
	}
	// Reads come from the primary alone.
	g, err := c.OpenReadWrite("m1/sub/seg")
	must(t, err)
	mustWrite(t, g, 0, "XXXXXX")
	g.Close()
	if got := string(readFile(t, m, "p/sub/seg")[:6]); got != "header" {
		t.Errorf("read through the mirror = %q, want the primary's bytes", got)
	}
	rw, err := m.OpenReadWrite("p/sub/seg")
	must(t, err)
	buf := make([]byte, 6)
	if _, err := rw.ReadAt(buf, 0); err != nil || string(buf) != "header" {
		t.Errorf("ReadAt = %q, %v", buf, err)
	}
	if size, err := rw.Size(); size != 600 || err != nil {
		t.Errorf("Size = %d, %v", size, err)
	}
	if rw.Name() != "p/sub/seg" {
		t.Errorf("Name = %q", rw.Name())
	}
	rw.Close()
}

func TestMirrorMkdirIsDurableInMirrors(t *testing.T) {
	c := NewCrashFS()
	m, err := NewMirror(c, "/a/p", "/b/m")
	must(t, err)
	must(t, m.MkdirAll("/a/p", 0o750))
	crashed := c.CrashClone(CrashOptions{KeepDirOpProb: 0})
	if _, err := crashed.Stat("/b/m"); err != nil {
		t.Errorf("mirror directory not durable after MkdirAll: %v", err)
	}
}

func TestMirrorOutsidePrimaryIsNotMirrored(t *testing.T) {
	c, m := newMirror(t)
	writeFile(t, m, "other", "x")
	if _, err := c.Stat("m1/other"); err == nil {
		t.Error("a path outside the primary was mirrored")
	}
	if err := m.Rename("other", "p/other"); err == nil {
		t.Error("rename across the mirrored directory's boundary succeeded")
	}
}

func TestMirrorSyncErrorOnMirrorFails(t *testing.T) {
	prim, mir := NewCrashFS(), NewFaultFS(NewCrashFS())
	must(t, prim.MkdirAll("d", 0o750))
	must(t, mir.MkdirAll("d", 0o750))
	m, err := NewMirrorOf(Replica{prim, "d"}, Replica{mir, "d"})
	must(t, err)
	f := mustCreate(t, m, "d/f")
	mustWrite(t, f, 0, "data")
	mir.FailSyncs(syscall.EIO)
	for name, sync := range map[string]func() error{"Sync": f.Sync, "Datasync": f.Datasync, "SyncDir": func() error { return m.SyncDir("d") }} {
		err := sync()
		if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "mirror copy d") {
			t.Errorf("%s with a failing mirror: err = %v, want EIO naming the mirror", name, err)
		}
	}
	mir.FailSyncs(nil)
	must(t, f.Datasync())
}

func TestMirrorWriteErrorOnMirror(t *testing.T) {
	prim, mir := NewCrashFS(), NewFaultFS(NewCrashFS())
	must(t, prim.MkdirAll("d", 0o750))
	must(t, mir.MkdirAll("d", 0o750))
	m, err := NewMirrorOf(Replica{prim, "d"}, Replica{mir, "d"})
	must(t, err)
	f := mustCreate(t, m, "d/f")
	mir.SetWriteBudget(3)
	if _, err := f.WriteAt([]byte("abcdef"), 0); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write to a full mirror: err = %v, want ENOSPC", err)
	}
	// The caller undoes the write in every copy, as the log does.
	must(t, f.Truncate(0))
	for _, c := range []FS{prim, mir} {
		if got := readFile(t, c, "d/f"); len(got) != 0 {
			t.Errorf("after undo: %q", got)
		}
	}
	// A failing primary write reaches no mirror.
	mir.SetWriteBudget(-1)
	bad := NewFaultFS(prim)
	m2, err := NewMirrorOf(Replica{bad, "d"}, Replica{mir, "d"})
	must(t, err)
	g, err := m2.OpenReadWrite("d/f")
	must(t, err)
	bad.FailWrites(syscall.EIO)
	if _, err := g.WriteAt([]byte("x"), 0); !errors.Is(err, syscall.EIO) {
		t.Errorf("err = %v, want EIO", err)
	}
	if got := readFile(t, mir, "d/f"); len(got) != 0 {
		t.Errorf("the mirror was written after the primary failed: %q", got)
	}
}

func TestMirrorCreateRollsBack(t *testing.T) {
	c, m := newMirror(t)
	writeFile(t, c, "m2/f", "stale")
	if _, err := m.Create("p/f"); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create over a mirror's file: err = %v, want fs.ErrExist", err)
	}
	for _, name := range []string{"p/f", "m1/f"} {
		if _, err := c.Stat(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left behind by a failed Create: %v", name, err)
		}
	}
	if got := string(readFile(t, c, "m2/f")); got != "stale" {
		t.Errorf("the mirror's own file was touched: %q", got)
	}
}

func TestMirrorRemoveIsIdempotentOnMirrors(t *testing.T) {
	c, m := newMirror(t)
	writeFile(t, m, "p/f", "x")
	must(t, c.Remove("m1/f"))
	if err := m.Remove("p/f"); err != nil {
		t.Errorf("Remove of a file a mirror lacks: %v", err)
	}
	writeFile(t, c, "m2/g", "stale")
	if err := m.Remove("p/g"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove of a file the primary lacks: err = %v, want fs.ErrNotExist", err)
	}
	if _, err := c.Stat("m2/g"); !errors.Is(err, fs.ErrNotExist) {
		t.Error("the mirror's stray file was not removed")
	}
}

func TestMirrorLockEveryCopy(t *testing.T) {
	c, m := newMirror(t)
	held, err := c.Lock("m2/LOCK", "someone else")
	must(t, err)
	if _, err := m.Lock("p/LOCK", "me"); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "someone else") {
		t.Fatalf("Lock with a mirror held elsewhere: err = %v", err)
	}
	l, err := c.Lock("p/LOCK", "probe") // the failed Lock released the primary
	must(t, err)
	l.Close()
	held.Close()
	l, err = m.Lock("p/LOCK", "me")
	must(t, err)
	for _, d := range []string{"p", "m1", "m2"} {
		if _, err := c.Lock(d+"/LOCK", "other"); !errors.Is(err, ErrLocked) {
			t.Errorf("%s not locked: %v", d, err)
		}
	}
	must(t, l.Close())
}

func TestMirrorConfig(t *testing.T) {
	c := NewCrashFS()
	for _, tc := range [][]string{{"a", "a"}, {"a", "a/b"}, {"a/b", "a"}, {"/x", "/x/"}, {"a", ""}} {
		if _, err := NewMirror(c, tc[0], tc[1:]...); err == nil {
			t.Errorf("NewMirror(%q) accepted", tc)
		}
	}
	if _, err := NewMirror(c, "a", "ab", "b"); err != nil {
		t.Errorf("NewMirror of distinct directories: %v", err)
	}
	if _, err := NewMirrorOf(Replica{c, "d"}, Replica{NewCrashFS(), "d"}); err != nil {
		t.Errorf("the same path on two filesystems: %v", err)
	}
	if _, err := NewMirrorOf(Replica{nil, "d"}); err == nil {
		t.Error("nil FS accepted")
	}
	m, _ := NewMirror(c, "a", "b")
	if r := m.Replicas(); len(r) != 2 || r[0].Dir != "a" || r[1].Dir != path.Clean("b") {
		t.Errorf("Replicas = %v", r)
	}
}

// A copy whose file (or whole directory) was removed behind the Mirror's
// back fails CheckLinked, and the error names that copy: writes and syncs
// to the file open there still succeed, so the check is what notices.
func TestMirrorCheckLinkedEveryCopy(t *testing.T) {
	c, m := newMirror(t)
	f := mustCreate(t, m, "p/seg")
	defer f.Close()
	must(t, f.CheckLinked())
	must(t, c.Remove("m2/seg"))
	must(t, c.Remove("m2"))
	mustWrite(t, f, 0, "still takes writes")
	must(t, f.Datasync())
	err := f.CheckLinked()
	if !errors.Is(err, ErrUnlinked) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "mirror copy m2") {
		t.Fatalf("CheckLinked with m2 removed = %v, want ErrUnlinked naming mirror copy m2", err)
	}
	must(t, c.Remove("p/seg"))
	if err := f.CheckLinked(); !errors.Is(err, ErrUnlinked) || strings.Contains(err.Error(), "mirror") {
		t.Fatalf("CheckLinked with the primary's file removed = %v, want the primary's ErrUnlinked", err)
	}
}
