package vfs

import (
	"os"
	"path/filepath"
	"testing"
)

// benchMirror returns a Mirror of two directories on the operating
// system's filesystem under $MIRROR_BENCH_DIR (default: a temporary
// directory; put it on tmpfs, such as /dev/shm, to measure the Mirror's
// own cost rather than the disk's).
func benchMirror(b *testing.B) *Mirror {
	b.Helper()
	root := b.TempDir()
	if d := os.Getenv("MIRROR_BENCH_DIR"); d != "" {
		var err error
		if root, err = os.MkdirTemp(d, "mirror-bench"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(root) })
	}
	p, m := filepath.Join(root, "p"), filepath.Join(root, "m")
	for _, d := range []string{p, m} {
		if err := os.Mkdir(d, 0o750); err != nil {
			b.Fatal(err)
		}
	}
	mir, err := NewMirror(OS(), p, m)
	if err != nil {
		b.Fatal(err)
	}
	return mir
}

// benchWrite writes and fdatasyncs 256 bytes per operation through mir,
// as a group commit of one small batch does.
func benchWrite(b *testing.B, mir *Mirror) {
	f, err := mir.Create(filepath.Join(mir.Replicas()[0].Dir, "seg"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 256)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	var off int64
	for b.Loop() {
		if _, err := f.WriteAt(buf, off); err != nil {
			b.Fatal(err)
		}
		if err := f.Datasync(); err != nil {
			b.Fatal(err)
		}
		if off += int64(len(buf)); off >= 1<<20 {
			off = 0
		}
	}
}

// BenchmarkMirrorWrite measures WriteAt and Datasync through a Mirror of
// one mirror with the default policy (every copy, no time limit).
func BenchmarkMirrorWrite(b *testing.B) { benchWrite(b, benchMirror(b)) }
