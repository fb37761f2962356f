package vfs

import (
	"errors"
	"io"
	"io/fs"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFaultFSPassesThrough(t *testing.T) {
	c := NewCrashFS()
	must(t, c.MkdirAll("d", 0o750))
	testFS(t, NewFaultFS(c), "d")
}

func TestFaultWriteBudget(t *testing.T) {
	f := NewFaultFS(NewCrashFS())
	file := mustCreate(t, f, "f")
	f.SetWriteBudget(10)
	if n, err := file.WriteAt([]byte("abcd"), 0); n != 4 || err != nil {
		t.Fatalf("write within budget = %d, %v", n, err)
	}
	n, err := file.WriteAt([]byte("0123456789"), 4)
	if n != 6 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write over budget = %d, %v; want 6, ENOSPC", n, err)
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != "f" {
		t.Errorf("error %v is not a *fs.PathError for f", err)
	}
	if got := string(readFile(t, f, "f")); got != "abcd012345" {
		t.Errorf("contents = %q, want abcd012345", got)
	}
	if n, err := file.WriteAt([]byte("x"), 10); n != 0 || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("write on full disk = %d, %v; want 0, ENOSPC", n, err)
	}
	if size, _ := file.Size(); size != 10 {
		t.Errorf("size = %d, want 10", size)
	}
	f.SetWriteBudget(-1)
	if n, err := file.WriteAt([]byte("xyz"), 10); n != 3 || err != nil {
		t.Errorf("write after lifting budget = %d, %v", n, err)
	}
	if st := f.Stats(); st.BytesWritten != 13 || st.Writes != 3 || st.Faults != 2 {
		t.Errorf("Stats = %+v, want 13 bytes in 3 writes, 2 faults", st)
	}
}

func TestFaultFailWrites(t *testing.T) {
	f := NewFaultFS(NewCrashFS())
	file := mustCreate(t, f, "f")
	f.FailWrites(syscall.EIO)
	if n, err := file.WriteAt([]byte("abc"), 0); n != 0 || !errors.Is(err, syscall.EIO) {
		t.Errorf("WriteAt = %d, %v; want 0, EIO", n, err)
	}
	if size, _ := file.Size(); size != 0 {
		t.Errorf("failed write changed size to %d", size)
	}
	f.FailWrites(nil)
	mustWrite(t, file, 0, "abc")
}

func TestFaultFailSyncs(t *testing.T) {
	c := NewCrashFS()
	f := NewFaultFS(c)
	file := mustCreate(t, f, "f")
	mustWrite(t, file, 0, "data")
	f.FailSyncs(syscall.EIO)
	for name, sync := range map[string]func() error{
		"Sync": file.Sync, "Datasync": file.Datasync, "SyncDir": func() error { return f.SyncDir(".") },
	} {
		if err := sync(); !errors.Is(err, syscall.EIO) {
			t.Errorf("%s: err = %v, want EIO", name, err)
		}
	}
	// Nothing reached the disk.
	wantFiles(t, c.CrashClone(loseAll), map[string]string{})
	f.FailSyncs(nil)
	must(t, file.Sync())
	must(t, f.SyncDir("."))
	wantFiles(t, c.CrashClone(loseAll), map[string]string{"f": "data"})
	if st := f.Stats(); st.Syncs != 2 || st.Faults != 3 {
		t.Errorf("Stats = %+v, want 2 syncs, 3 faults", st)
	}
}

func TestFaultFailSyncAfter(t *testing.T) {
	f := NewFaultFS(NewCrashFS())
	file := mustCreate(t, f, "f")
	f.FailSyncAfter(2, syscall.EIO)
	must(t, file.Sync())
	must(t, f.SyncDir("."))
	for i := range 3 {
		if err := file.Datasync(); !errors.Is(err, syscall.EIO) {
			t.Errorf("sync %d after the budget: err = %v, want EIO", 3+i, err)
		}
	}
	f.FailSyncAfter(0, nil)
	must(t, file.Sync())
	f.FailSyncAfter(0, syscall.EIO)
	if err := file.Sync(); !errors.Is(err, syscall.EIO) {
		t.Errorf("FailSyncAfter(0): err = %v, want EIO", err)
	}
}

func TestFaultShortWrites(t *testing.T) {
	c := NewCrashFS()
	f := NewFaultFS(c)
	file := mustCreate(t, f, "f")
	data := []byte(strings.Repeat("0123456789", 10))

	f.SetShortWrites(1, 7)
	for i := range 20 {
		n, err := file.WriteAt(data, 0)
		if n >= len(data) || !errors.Is(err, io.ErrShortWrite) {
			t.Fatalf("write %d = %d, %v; want a short write", i, n, err)
		}
	}

	// With p = 0.5 some writes are short, some whole, and each short write
	// wrote exactly the prefix it reported.
	short, whole := 0, 0
	f.SetShortWrites(0.5, 1)
	for i := range 40 {
		name := "g" + string(rune('a'+i))
		g := mustCreate(t, c, name) // created without faults
		g.Close()
		g, err := f.OpenReadWrite(name)
		must(t, err)
		n, err := g.WriteAt(data, 0)
		switch {
		case err == nil && n == len(data):
			whole++
		case errors.Is(err, io.ErrShortWrite) && n < len(data):
			short++
		default:
			t.Fatalf("write = %d, %v", n, err)
		}
		if got := readFile(t, c, name); string(got) != string(data[:n]) {
			t.Fatalf("file holds %q after reporting %d bytes", got, n)
		}
	}
	if short == 0 || whole == 0 {
		t.Errorf("p=0.5 gave %d short and %d whole writes", short, whole)
	}

	// The same seed gives the same choices.
	lengths := func(seed int64) []int {
		f.SetShortWrites(0.5, seed)
		var out []int
		for range 20 {
			n, _ := file.WriteAt(data, 0)
			out = append(out, n)
		}
		return out
	}
	a, b := lengths(3), lengths(3)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed gave %v and %v", a, b)
		}
	}
	f.SetShortWrites(0, 0)
	if n, err := file.WriteAt(data, 0); n != len(data) || err != nil {
		t.Errorf("after disabling: %d, %v", n, err)
	}
}

func TestFaultLatency(t *testing.T) {
	f := NewFaultFS(NewCrashFS())
	file := mustCreate(t, f, "f")
	f.SetLatency(20 * time.Millisecond)
	start := time.Now()
	mustWrite(t, file, 0, "x")
	must(t, file.Sync())
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("a write and a sync took %v, want at least 40ms", d)
	}
	f.SetLatency(0)
}
