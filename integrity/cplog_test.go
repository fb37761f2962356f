package integrity

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/willibrandon/mtlog-audit/internal/testutil"
	"github.com/willibrandon/mtlog-audit/vfs"
)

func cpTestFS(t *testing.T) *vfs.CrashFS {
	t.Helper()
	fsys := vfs.NewCrashFS()
	if err := fsys.MkdirAll("d", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := fsys.SyncDir("."); err != nil {
		t.Fatal(err)
	}
	return fsys
}

func cpEntry(i, n int) []byte {
	b := []byte(fmt.Sprintf("entry %d\n", i))
	for len(b) < n {
		b = append(b, byte('a'+(len(b)+i)%26))
	}
	return b
}

func wantEntries(t *testing.T, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("entry %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestCheckpointLogRoundTrip(t *testing.T) {
	fsys := cpTestFS(t)
	l, err := OpenCheckpointLog(fsys, "d/cp")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.Last(); ok || len(l.Entries()) != 0 {
		t.Fatal("new log is not empty")
	}
	var want [][]byte
	for i, n := range []int{1, 100, 700, MaxCheckpointSize} {
		e := cpEntry(i, n)
		if err := l.Append(e); err != nil {
			t.Fatal(err)
		}
		want = append(want, e)
	}
	wantEntries(t, l.Entries(), want)
	if last, ok := l.Last(); !ok || !bytes.Equal(last, want[len(want)-1]) {
		t.Fatal("Last is not the last entry")
	}
	// The returned slices are copies.
	l.Entries()[0][0] ^= 0xff
	wantEntries(t, l.Entries(), want)

	if err := l.Append(nil); err == nil {
		t.Error("empty entry accepted")
	}
	if err := l.Append(make([]byte, MaxCheckpointSize+1)); err == nil {
		t.Error("oversized entry accepted")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append([]byte("x")); err == nil {
		t.Error("append after Close accepted")
	}

	got, err := ReadCheckpointLog(fsys, "d/cp")
	if err != nil {
		t.Fatal(err)
	}
	wantEntries(t, got, want)
	l, err = OpenCheckpointLog(fsys, "d/cp")
	if err != nil {
		t.Fatal(err)
	}
	wantEntries(t, l.Entries(), want)
	more := []byte("after reopen\n")
	if err := l.Append(more); err != nil {
		t.Fatal(err)
	}
	l.Close()
	got, err = ReadCheckpointLog(fsys, "d/cp")
	if err != nil {
		t.Fatal(err)
	}
	wantEntries(t, got, append(want, more))

	// Durable at once: a power loss that keeps nothing unsynced keeps
	// the created file and every appended entry.
	clone := fsys.CrashClone(vfs.CrashOptions{})
	got, err = ReadCheckpointLog(clone, "d/cp")
	if err != nil {
		t.Fatal(err)
	}
	wantEntries(t, got, append(want, more))
}

func TestCheckpointLogCreateDurable(t *testing.T) {
	fsys := cpTestFS(t)
	l, err := OpenCheckpointLog(fsys, "d/cp")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	clone := fsys.CrashClone(vfs.CrashOptions{KeepDirOpProb: 0})
	if _, err := clone.Stat("d/cp"); err != nil {
		t.Fatalf("created checkpoint log is not durable: %v", err)
	}
	if _, err := ReadCheckpointLog(fsys, "d/missing"); err == nil {
		t.Error("ReadCheckpointLog of a missing file succeeded")
	}
}

// writeLog writes a checkpoint log of the given entries and returns the
// offsets at which they start, and the end.
func writeLog(t *testing.T, fsys vfs.FS, path string, entries [][]byte, tail []byte) []int {
	t.Helper()
	var data []byte
	var offs []int
	for _, e := range entries {
		offs = append(offs, len(data))
		data = appendFrame(data, e)
	}
	offs = append(offs, len(data))
	data = append(data, tail...)
	_ = fsys.Remove(path)
	writeTestFile(t, fsys, path, string(data))
	f, err := fsys.OpenReadWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := fsys.SyncDir("d"); err != nil {
		t.Fatal(err)
	}
	return offs
}

func TestCheckpointLogTornTail(t *testing.T) {
	fsys := cpTestFS(t)
	entries := [][]byte{cpEntry(0, 300), cpEntry(1, 40), cpEntry(2, 1000)}
	full := appendFrame(nil, cpEntry(3, 600))
	crcBad := bytes.Clone(full)
	crcBad[len(crcBad)-1] ^= 1
	tails := map[string][]byte{
		"partial header":       full[:5],
		"header only":          full[:cpFrameHeader],
		"partial payload":      full[:len(full)-1],
		"bad crc":              crcBad,
		"zeros":                make([]byte, 512),
		"lost first sector":    append(make([]byte, 512), full[512:]...),
		"length beyond max":    {0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 'x'},
		"frame then zeros":     append(bytes.Clone(full[:len(full)-3]), 0, 0, 0),
		"zero length":          make([]byte, cpFrameHeader+3),
		"single byte":          {1},
		"max-size torn region": make([]byte, cpFrameHeader+MaxCheckpointSize),
	}
	for name, tail := range tails {
		t.Run(name, func(t *testing.T) {
			offs := writeLog(t, fsys, "d/cp", entries, tail)
			end := int64(offs[len(offs)-1])
			before := testutil.FileSize(t, fsys, "d/cp")

			got, err := ReadCheckpointLog(fsys, "d/cp")
			if err != nil {
				t.Fatalf("ReadCheckpointLog: %v", err)
			}
			wantEntries(t, got, entries)
			if testutil.FileSize(t, fsys, "d/cp") != before {
				t.Fatal("ReadCheckpointLog modified the file")
			}

			l, err := OpenCheckpointLog(fsys, "d/cp")
			if err != nil {
				t.Fatalf("OpenCheckpointLog: %v", err)
			}
			wantEntries(t, l.Entries(), entries)
			if size := testutil.FileSize(t, fsys, "d/cp"); size != end {
				t.Fatalf("size after open = %d, want the torn tail cut at %d", size, end)
			}
			// The cut is durable.
			if size := testutil.FileSize(t, fsys.CrashClone(vfs.CrashOptions{}), "d/cp"); size != end {
				t.Fatalf("size after a crash = %d, want %d: the truncation was not synced", size, end)
			}
			next := cpEntry(9, 77)
			if err := l.Append(next); err != nil {
				t.Fatal(err)
			}
			l.Close()
			got, err = ReadCheckpointLog(fsys, "d/cp")
			if err != nil {
				t.Fatal(err)
			}
			wantEntries(t, got, append(bytes2(entries), next))
		})
	}
}

func bytes2(in [][]byte) [][]byte { return append([][]byte(nil), in...) }

func TestCheckpointLogCorrupt(t *testing.T) {
	fsys := cpTestFS(t)
	entries := [][]byte{cpEntry(0, 300), cpEntry(1, 40), cpEntry(2, 1000)}
	cases := []struct {
		name    string
		damage  func(data []byte, offs []int) []byte
		wantOff func(offs []int) int
	}{
		{"first payload byte", func(d []byte, o []int) []byte { d[o[0]+cpFrameHeader] ^= 1; return d }, func(o []int) int { return o[0] }},
		{"middle length", func(d []byte, o []int) []byte { d[o[1]] ^= 0x10; return d }, func(o []int) int { return o[1] }},
		{"middle crc", func(d []byte, o []int) []byte { d[o[1]+5] ^= 1; return d }, func(o []int) int { return o[1] }},
		{"byte missing", func(d []byte, o []int) []byte { return append(d[:o[1]+20:o[1]+20], d[o[1]+21:]...) }, func(o []int) int { return o[1] }},
		{"garbage after the end longer than one entry", func(d []byte, o []int) []byte {
			return append(d, bytes.Repeat([]byte{0xee}, cpFrameHeader+MaxCheckpointSize+1)...)
		}, func(o []int) int { return o[3] }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var data []byte
			var offs []int
			for _, e := range entries {
				offs = append(offs, len(data))
				data = appendFrame(data, e)
			}
			offs = append(offs, len(data))
			data = tc.damage(data, offs)
			_ = fsys.Remove("d/cp")
			writeTestFile(t, fsys, "d/cp", string(data))
			before := testutil.FileSize(t, fsys, "d/cp")
			for _, open := range []func() error{
				func() error { _, err := ReadCheckpointLog(fsys, "d/cp"); return err },
				func() error {
					l, err := OpenCheckpointLog(fsys, "d/cp")
					if err == nil {
						l.Close()
					}
					return err
				},
			} {
				err := open()
				if !errors.Is(err, ErrCheckpointLogCorrupt) {
					t.Fatalf("err = %v, want ErrCheckpointLogCorrupt", err)
				}
				var ce *CheckpointLogCorruptError
				if !errors.As(err, &ce) || ce.Offset != int64(tc.wantOff(offs)) || ce.Path != "d/cp" {
					t.Fatalf("err = %v, want offset %d", err, tc.wantOff(offs))
				}
				if testutil.FileSize(t, fsys, "d/cp") != before {
					t.Fatal("a corrupt log was modified")
				}
			}
		})
	}
}

// A failed sync is sticky: the log refuses further appends.
func TestCheckpointLogFailureIsSticky(t *testing.T) {
	inner := cpTestFS(t)
	fsys := vfs.NewFaultFS(inner)
	l, err := OpenCheckpointLog(fsys, "d/cp")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Append([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	fsys.FailSyncs(syscall.EIO)
	if err := l.Append([]byte("two\n")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append with failing sync: err = %v, want EIO", err)
	}
	fsys.FailSyncs(nil)
	if err := l.Append([]byte("three\n")); err == nil {
		t.Fatal("Append after a failed sync succeeded")
	}
	if n := len(l.Entries()); n != 1 {
		t.Fatalf("%d entries, want only the one acknowledged", n)
	}

	// A failed write (a full disk) is undone and may be retried: part of
	// the frame landed, the next Append overwrites it, and a reopened log
	// holds exactly the acknowledged entries.
	l2, err := OpenCheckpointLog(fsys, "d/cp2")
	if err != nil {
		t.Fatal(err)
	}
	if err := l2.Append([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	fsys.SetWriteBudget(7) // part of the next frame fits
	if err := l2.Append([]byte("a longer entry that does not fit\n")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append on a full disk: err = %v, want ENOSPC", err)
	}
	fsys.SetWriteBudget(-1)
	if err := l2.Append([]byte("two\n")); err != nil {
		t.Fatalf("Append after space was freed: %v", err)
	}
	l2.Close()
	got, err := ReadCheckpointLog(fsys, "d/cp2")
	if err != nil {
		t.Fatal(err)
	}
	wantEntries(t, got, [][]byte{[]byte("one\n"), []byte("two\n")})
}

// TestCheckpointLogCrash appends entries to a CrashFS and, before every
// operation, simulates a power loss with random choices of what unsynced
// state survives. Reopening each crashed copy must succeed and hold every
// entry whose Append had returned, in order, and nothing else but possibly
// the entry being appended.
func TestCheckpointLogCrash(t *testing.T) {
	trials := 30
	if testing.Short() {
		trials = 5
	}
	for trial := range trials {
		rng := rand.New(rand.NewPCG(uint64(trial), 7))
		fsys := cpTestFS(t)
		type crash struct {
			fs        *vfs.CrashFS
			acked     int // Appends that had returned
			attempted int // Appends that had started
			opts      vfs.CrashOptions
		}
		var crashes []crash
		acked, attempted := 0, 0
		fsys.SetHook(func(op vfs.Op) {
			opts := vfs.CrashOptions{
				Seed:           rng.Int64(),
				SectorSize:     []int{512, 4096}[rng.IntN(2)],
				KeepSectorProb: rng.Float64(),
				KeepDirOpProb:  rng.Float64(),
			}
			crashes = append(crashes, crash{fsys.CrashClone(opts), acked, attempted, opts})
		})
		l, err := OpenCheckpointLog(fsys, "d/cp")
		if err != nil {
			t.Fatal(err)
		}
		var want [][]byte
		for i := range 12 {
			e := cpEntry(trial*100+i, 1+rng.IntN(3000))
			attempted++
			if err := l.Append(e); err != nil {
				t.Fatal(err)
			}
			want = append(want, e)
			acked++
		}
		fsys.SetHook(nil)
		l.Close()
		crashes = append(crashes, crash{fsys.CrashClone(vfs.CrashOptions{Seed: 1, KeepSectorProb: 0.5, KeepDirOpProb: 0.5}), acked, attempted, vfs.CrashOptions{}})

		for ci, c := range crashes {
			where := fmt.Sprintf("trial %d, crash %d (%+v, %d acked)", trial, ci, c.opts, c.acked)
			read, rerr := ReadCheckpointLog(c.fs, "d/cp")
			l, err := OpenCheckpointLog(c.fs, "d/cp")
			if err != nil {
				t.Fatalf("%s: reopen: %v", where, err)
			}
			got := l.Entries()
			if rerr == nil && len(read) != len(got) {
				t.Fatalf("%s: ReadCheckpointLog found %d entries, OpenCheckpointLog %d", where, len(read), len(got))
			}
			if rerr != nil && c.acked > 0 {
				t.Fatalf("%s: ReadCheckpointLog: %v", where, rerr)
			}
			if len(got) < c.acked || len(got) > c.attempted {
				t.Fatalf("%s: %d entries survive, want %d to %d", where, len(got), c.acked, c.attempted)
			}
			wantEntries(t, got, want[:len(got)])
			// The recovered log takes appends, durably.
			extra := []byte("after the crash\n")
			if err := l.Append(extra); err != nil {
				t.Fatalf("%s: append after recovery: %v", where, err)
			}
			l.Close()
			again, err := ReadCheckpointLog(c.fs.CrashClone(vfs.CrashOptions{Seed: 3, KeepSectorProb: 0}), "d/cp")
			if err != nil {
				t.Fatalf("%s: after a second crash: %v", where, err)
			}
			wantEntries(t, again, append(bytes2(got), extra))
		}
	}
}
