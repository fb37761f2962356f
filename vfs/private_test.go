//go:build unix

package vfs

import (
	"os"
	"path/filepath"
	"testing"
)

// CreatePrivate makes owner-only files on every filesystem of this
// package (used for the forward-security key, epoch.key).
func TestCreatePrivate(t *testing.T) {
	tmp := t.TempDir()
	a, b := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	os.Mkdir(a, 0o700)
	os.Mkdir(b, 0o700)
	m, err := NewMirror(OS(), a, b)
	if err != nil {
		t.Fatal(err)
	}
	crash := NewCrashFS()
	if err := crash.MkdirAll("/d", 0o700); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		fsys  FS
		path  string
		check []string
	}{
		"os":     {OS(), filepath.Join(a, "os.key"), []string{filepath.Join(a, "os.key")}},
		"fault":  {NewFaultFS(OS()), filepath.Join(a, "fault.key"), []string{filepath.Join(a, "fault.key")}},
		"mirror": {m, filepath.Join(a, "m.key"), []string{filepath.Join(a, "m.key"), filepath.Join(b, "m.key")}},
		"crash":  {crash, "/d/c.key", []string{"/d/c.key"}},
	} {
		f, err := CreatePrivate(c.fsys, c.path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		f.Close()
		for _, p := range c.check {
			stat := OS().Stat
			if name == "crash" {
				stat = crash.Stat
			}
			fi, err := stat(p)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: %s has mode %04o, want 0600", name, p, fi.Mode().Perm())
			}
		}
	}
}
