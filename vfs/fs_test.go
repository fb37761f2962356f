package vfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// testFS checks behaviour every FS implementation shares, inside dir (which
// must exist).
func testFS(t *testing.T, fsys FS, dir string) {
	t.Helper()
	p := func(name string) string { return path.Join(dir, name) }

	f, err := fsys.Create(p("a"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Name() != p("a") {
		t.Errorf("Name() = %q, want %q", f.Name(), p("a"))
	}
	if _, err := fsys.Create(p("a")); !errors.Is(err, fs.ErrExist) || !errors.Is(err, syscall.EEXIST) {
		t.Errorf("Create of existing file: err = %v, want fs.ErrExist", err)
	}
	if n, err := f.WriteAt([]byte("hello"), 0); n != 5 || err != nil {
		t.Fatalf("WriteAt = %d, %v", n, err)
	}
	if _, err := f.WriteAt([]byte("!"), 7); err != nil { // leaves a zero-filled gap
		t.Fatal(err)
	}
	if size, err := f.Size(); size != 8 || err != nil {
		t.Errorf("Size = %d, %v; want 8", size, err)
	}
	buf := make([]byte, 10)
	n, err := f.ReadAt(buf, 0)
	if n != 8 || err != io.EOF || !bytes.Equal(buf[:n], []byte("hello\x00\x00!")) {
		t.Errorf("ReadAt past end = %d, %v, %q; want 8, EOF, %q", n, err, buf[:n], "hello\x00\x00!")
	}
	if n, err := f.ReadAt(buf[:3], 1); n != 3 || err != nil || string(buf[:3]) != "ell" {
		t.Errorf("ReadAt inside = %d, %v, %q", n, err, buf[:3])
	}
	if n, err := f.ReadAt(buf, 8); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at end = %d, %v; want 0, EOF", n, err)
	}
	if err := f.Truncate(2); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(4); err != nil { // regrows with zeros, not old bytes
		t.Fatal(err)
	}
	if got := readFile(t, fsys, p("a")); string(got) != "he\x00\x00" {
		t.Errorf("after truncates: %q, want %q", got, "he\x00\x00")
	}
	for _, sync := range []func() error{f.Sync, f.Datasync} {
		if err := sync(); err != nil {
			t.Errorf("sync: %v", err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	// Open, OpenReadWrite and missing files.
	if _, err := fsys.Open(p("missing")); !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, syscall.ENOENT) {
		t.Errorf("Open missing: err = %v, want fs.ErrNotExist", err)
	}
	if _, err := fsys.OpenReadWrite(p("missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenReadWrite missing: err = %v, want fs.ErrNotExist", err)
	}
	ro, err := fsys.Open(p("a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.WriteAt([]byte("x"), 0); err == nil {
		t.Error("WriteAt on a read-only file succeeded")
	}
	ro.Close()
	rw, err := fsys.OpenReadWrite(p("a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rw.WriteAt([]byte("HE"), 0); err != nil {
		t.Fatal(err)
	}
	rw.Close()
	if got := readFile(t, fsys, p("a")); string(got) != "HE\x00\x00" {
		t.Errorf("after OpenReadWrite write: %q", got)
	}

	// Directories, List and Stat.
	if err := fsys.MkdirAll(p("d/e"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := fsys.MkdirAll(p("d/e"), 0o750); err != nil {
		t.Errorf("MkdirAll of existing dir: %v", err)
	}
	writeFile(t, fsys, p("d/e/f"), "x")
	writeFile(t, fsys, p("c"), "cc")
	if names, err := fsys.List(dir); err != nil || !slices.Equal(names, []string{"a", "c", "d"}) {
		t.Errorf("List = %q, %v; want [a c d]", names, err)
	}
	if _, err := fsys.List(p("missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List missing: err = %v", err)
	}
	if fi, err := fsys.Stat(p("c")); err != nil || fi.Size() != 2 || fi.IsDir() || fi.Name() != "c" {
		t.Errorf("Stat(c) = %v, %v", fi, err)
	}
	if fi, err := fsys.Stat(p("d")); err != nil || !fi.IsDir() {
		t.Errorf("Stat(d) = %v, %v", fi, err)
	}
	if _, err := fsys.Stat(p("missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat missing: err = %v", err)
	}
	if err := fsys.MkdirAll(p("c/x"), 0o750); err == nil {
		t.Error("MkdirAll under a file succeeded")
	}
	if err := fsys.SyncDir(dir); err != nil {
		t.Errorf("SyncDir: %v", err)
	}

	// Remove and Rename.
	if err := fsys.Remove(p("d/e")); err == nil {
		t.Error("Remove of a non-empty dir succeeded")
	}
	if err := fsys.Rename(p("c"), p("a")); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, fsys, p("a")); string(got) != "cc" {
		t.Errorf("after rename over a: %q, want cc", got)
	}
	if _, err := fsys.Stat(p("c")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("renamed source still there: %v", err)
	}
	if err := fsys.Rename(p("missing"), p("z")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Rename missing: err = %v", err)
	}
	for _, name := range []string{"d/e/f", "d/e", "d", "a"} {
		if err := fsys.Remove(p(name)); err != nil {
			t.Errorf("Remove(%s): %v", name, err)
		}
	}
	if err := fsys.Remove(p("a")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove missing: err = %v", err)
	}
	if names, err := fsys.List(dir); err != nil || len(names) != 0 {
		t.Errorf("List after removes = %q, %v", names, err)
	}

	testCheckLinked(t, fsys, dir)

	// Lock: a second Lock fails naming the owner until the first is closed.
	l1, err := fsys.Lock(p("LOCK"), "pid 1 on host-a")
	if err != nil {
		t.Fatal(err)
	}
	_, err = fsys.Lock(p("LOCK"), "pid 2 on host-b")
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "is held by pid 1 on host-a") {
		t.Errorf("second Lock: err = %v, want ErrLocked naming pid 1 on host-a", err)
	}
	if err := l1.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := fsys.Lock(p("LOCK"), "owner 2")
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	if got := readFile(t, fsys, p("LOCK")); string(got) != "owner 2" {
		t.Errorf("lock file holds %q, want %q", got, "owner 2")
	}
	if _, err := fsys.Lock(p("LOCK"), "owner 3"); err == nil || !strings.Contains(err.Error(), "held by owner 2") {
		t.Errorf("third Lock: err = %v", err)
	}
	l2.Close()
}

// testCheckLinked checks File.CheckLinked against each way a file can stop
// being at its path: removed, renamed away, replaced by another file, and
// its directory removed or renamed away and replaced by an empty one.
func testCheckLinked(t *testing.T, fsys FS, dir string) {
	t.Helper()
	p := func(name string) string { return path.Join(dir, name) }
	must(t, fsys.MkdirAll(p("log"), 0o750))
	f, err := fsys.Create(p("log/seg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := func(what string, unlinked, notExist bool) {
		t.Helper()
		err := f.CheckLinked()
		if !unlinked {
			if err != nil {
				t.Errorf("%s: CheckLinked = %v, want nil", what, err)
			}
			return
		}
		if !errors.Is(err, ErrUnlinked) || errors.Is(err, fs.ErrNotExist) != notExist || !strings.Contains(err.Error(), p("log/seg")) {
			t.Errorf("%s: CheckLinked = %v, want ErrUnlinked naming the path (fs.ErrNotExist: %v)", what, err, notExist)
		}
	}
	want("created", false, false)
	must(t, fsys.Rename(p("log/seg"), p("log/seg.moved")))
	want("renamed away", true, true)
	must(t, fsys.Rename(p("log/seg.moved"), p("log/seg")))
	want("renamed back", false, false)

	writeFile(t, fsys, p("log/other"), "x")
	must(t, fsys.Rename(p("log/other"), p("log/seg")))
	want("replaced by another file", true, false)
	must(t, fsys.Remove(p("log/seg")))
	want("removed", true, true)

	g, err := fsys.Create(p("log/seg"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	must(t, fsys.Rename(p("log"), p("log.moved")))
	must(t, fsys.MkdirAll(p("log"), 0o750))
	if err := g.CheckLinked(); !errors.Is(err, ErrUnlinked) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("directory renamed away and replaced: CheckLinked = %v, want ErrUnlinked and fs.ErrNotExist", err)
	}
	must(t, fsys.Remove(p("log")))
	must(t, fsys.Rename(p("log.moved"), p("log")))
	if err := g.CheckLinked(); err != nil {
		t.Errorf("directory renamed back: CheckLinked = %v, want nil", err)
	}
	must(t, fsys.Remove(p("log/seg")))
	must(t, fsys.Remove(p("log")))
	if err := g.CheckLinked(); !errors.Is(err, ErrUnlinked) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("directory removed: CheckLinked = %v, want ErrUnlinked and fs.ErrNotExist", err)
	}
	// A file under a path that now runs through a regular file.
	writeFile(t, fsys, p("log"), "not a directory")
	if err := g.CheckLinked(); !errors.Is(err, ErrUnlinked) {
		t.Errorf("directory replaced by a file: CheckLinked = %v, want ErrUnlinked", err)
	}
	must(t, fsys.Remove(p("log")))
}

func readFile(t *testing.T, fsys FS, name string) []byte {
	t.Helper()
	f, err := fsys.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, fsys FS, name, data string) {
	t.Helper()
	f, err := fsys.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(data), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
