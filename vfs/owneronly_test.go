//go:build unix

package vfs

import (
	"os"
	"path/filepath"
	"testing"
)

// OwnerOnly accepts a 0600 file and names the mode and the chmod that fixes
// one that group or others may access, through every wrapper.
func TestOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	m, err := NewMirror(OS(), dir, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, fsys := range []FS{OS(), NewFaultFS(OS()), m} {
		for i, c := range []struct {
			mode     os.FileMode
			why, fix string
		}{
			{0o600, "", ""},
			{0o400, "", ""},
			{0o640, "mode 0640", "chmod 600 "},
			{0o604, "mode 0604", "chmod 600 "},
		} {
			name := filepath.Join(dir, "key")
			os.Remove(name)
			if err := os.WriteFile(name, []byte("k"), c.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(name, c.mode); err != nil { // past the umask
				t.Fatal(err)
			}
			fi, err := fsys.Stat(name)
			if err != nil {
				t.Fatal(err)
			}
			why, fix := OwnerOnly(fsys, name, fi)
			if c.fix != "" {
				c.fix += name
			}
			if why != c.why || fix != c.fix {
				t.Errorf("%T case %d: OwnerOnly = %q, %q; want %q, %q", fsys, i, why, fix, c.why, c.fix)
			}
		}
	}
}
