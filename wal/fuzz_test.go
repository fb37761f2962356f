package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/willibrandon/mtlog-audit/internal/testutil"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// seedSegments returns the bytes of the segments of a small real log.
func seedSegments(tb testing.TB) [][]byte {
	fsys := vfs.NewCrashFS()
	w, err := Open(fsys, testDir, Options{SegmentSize: 2048})
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i < 12; i++ {
		if _, err := w.Append(context.Background(), RecordEvent, int64(i), []byte(fmt.Sprintf("payload %d %s", i, "............................................................"))); err != nil {
			tb.Fatal(err)
		}
	}
	w.Close()
	var out [][]byte
	names, _ := fsys.List(testDir)
	for _, n := range names {
		if _, ok := parseSegmentName(n); ok {
			f, _ := fsys.Open(path.Join(testDir, n))
			size, _ := f.Size()
			b := make([]byte, size)
			f.ReadAt(b, 0)
			f.Close()
			out = append(out, b)
		}
	}
	return out
}

// FuzzOpenDir opens a directory whose two segment files hold arbitrary
// bytes: Open and Check must return (an error or a log), never panic, hang or
// allocate without bound.
func FuzzOpenDir(f *testing.F) {
	segs := seedSegments(f)
	f.Add(segs[0], segs[1])
	f.Add(segs[0], []byte{})
	f.Add([]byte("MTLAUDIT"), []byte{0})
	// A record damaged inside sealed segment 1, whose seal is intact.
	flipped := bytes.Clone(segs[0])
	flipped[segHeaderSize+batchHeaderSize+recHeaderSize] ^= 0x10
	f.Add(flipped, segs[1])
	f.Fuzz(func(t *testing.T, a, b []byte) {
		fsys := vfs.NewCrashFS()
		fsys.MkdirAll(testDir, 0o755)
		for i, data := range [][]byte{a, b} {
			if i == 1 && len(data) == 0 {
				continue
			}
			g, err := fsys.Create(path.Join(testDir, segmentName(uint64(i+1))))
			if err != nil {
				t.Fatal(err)
			}
			g.WriteAt(data, 0)
			g.Close()
		}
		_, before := Check(context.Background(), fsys, testDir, func(Record) error { return nil })
		if w, err := Open(fsys, testDir, Options{}); err == nil {
			w.Append(context.Background(), RecordEvent, 1, []byte("after fuzz"))
			w.Close()
			_, after := Check(context.Background(), fsys, testDir, nil)
			var was, is *CorruptError
			if len(b) > 0 && errors.As(before, &was) && was.Segment == 1 {
				// Damage inside the batches of sealed segment 1, which
				// Open checks by its header and seal alone: it must
				// still be there, untouched, and still be reported.
				if !errors.As(after, &is) || is.Segment != 1 || is.Offset != was.Offset {
					t.Fatalf("damage in sealed segment 1 (%v) reads differently after an open and an append: %v", before, after)
				}
				if got := testutil.ReadFile(t, fsys, path.Join(testDir, segmentName(1))); !bytes.Equal(got, a) {
					t.Fatal("Open changed sealed segment 1")
				}
				return
			}
			if after != nil {
				t.Fatalf("a log that opened does not check after an append: %v", after)
			}
		}
	})
}

// FuzzRecordDecoder feeds arbitrary batch bodies to the record decoder.
func FuzzRecordDecoder(f *testing.F) {
	segs := seedSegments(f)
	body := append([]byte(nil), segs[0][segHeaderSize+batchHeaderSize:]...)
	whiten(body, readHeaderSalt(segs[0]), segHeaderSize+batchHeaderSize)
	f.Add(body, uint32(1), uint32(len(body)))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, uint32(1), uint32(4))
	f.Fuzz(func(t *testing.T, body []byte, count, bodyLen uint32) {
		if count > 1<<16 {
			count %= 1 << 16
		}
		if int(bodyLen) > len(body) {
			bodyLen = uint32(len(body))
		}
		splitBatch(body[:bodyLen], batchHeader{Count: count, FirstSeq: 1, BodyLen: bodyLen})
	})
}

func readHeaderSalt(seg []byte) uint64 {
	h, _ := decodeSegHeader(seg)
	return h.Salt
}

// TestWriteFuzzCorpus regenerates the committed seed corpus when
// WAL_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("WAL_WRITE_CORPUS") != "1" {
		t.Skip("set WAL_WRITE_CORPUS=1 to regenerate testdata/fuzz")
	}
	segs := seedSegments(t)
	write := func(target, name string, vals ...string) {
		dir := filepath.Join("testdata", "fuzz", target)
		os.MkdirAll(dir, 0o755)
		s := "go test fuzz v1\n"
		for _, v := range vals {
			s += v + "\n"
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("FuzzOpenDir", "real-log", fmt.Sprintf("[]byte(%q)", segs[0]), fmt.Sprintf("[]byte(%q)", segs[1]))
	torn := append([]byte(nil), segs[0]...)
	clear(torn[len(torn)-300:])
	write("FuzzOpenDir", "torn-tail", fmt.Sprintf("[]byte(%q)", torn), "[]byte(\"\")")
	write("FuzzOpenDir", "header-only", fmt.Sprintf("[]byte(%q)", segs[0][:segHeaderSize]), "[]byte(\"\")")
	body := append([]byte(nil), segs[0][segHeaderSize+batchHeaderSize:]...)
	whiten(body, readHeaderSalt(segs[0]), segHeaderSize+batchHeaderSize)
	write("FuzzRecordDecoder", "real-batch", fmt.Sprintf("[]byte(%q)", body), "uint32(1)", fmt.Sprintf("uint32(%d)", len(body)))
	write("FuzzRecordDecoder", "huge-length", "[]byte(\"\\xf0\\xff\\xff\\xff\\x00\\x00\\x00\\x00\")", "uint32(3)", "uint32(8)")
}
