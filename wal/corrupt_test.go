package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"path"
	"testing"

	"github.com/willibrandon/mtlog-audit/internal/testutil"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// buildLog writes n records to a fresh CrashFS log and returns it, closed
// cleanly (sealed) or crashed (everything synced kept, nothing else).
func buildLog(t *testing.T, n int, segSize int64, clean bool) (*vfs.CrashFS, map[uint64][]byte) {
	t.Helper()
	return buildLogOpts(t, n, Options{SegmentSize: segSize}, clean)
}

// buildLogOpts is buildLog with options (a Tag hook, say).
func buildLogOpts(t *testing.T, n int, opts Options, clean bool) (*vfs.CrashFS, map[uint64][]byte) {
	t.Helper()
	fsys := vfs.NewCrashFS()
	w, err := Open(fsys, testDir, opts)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(n), 11))
	acked := map[uint64][]byte{}
	for i := 0; i < n; i++ {
		p := testPayload(0, i, rng)
		seq, err := w.Append(context.Background(), RecordEvent, int64(i), p)
		if err != nil {
			t.Fatal(err)
		}
		acked[seq] = p
	}
	if clean {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return fsys, acked
	}
	crashed := fsys.CrashClone(vfs.CrashOptions{})
	w.Close()
	return crashed, acked
}

// dataEnd returns the end of a segment's intact batches: after it, a
// crashed log's last segment holds only zeros filled ahead (Prealloc).
func dataEnd(t *testing.T, fsys vfs.FS, name string) int64 {
	t.Helper()
	n, ok := parseSegmentName(path.Base(name))
	if !ok {
		t.Fatalf("%s is not a segment", name)
	}
	seg := &segment{num: n, path: name}
	f, err := loadSegment(fsys, seg, -1, ^uint64(0), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	return seg.end
}

func segmentFiles(t *testing.T, fsys vfs.FS) []string {
	t.Helper()
	names, err := fsys.List(testDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if _, ok := parseSegmentName(n); ok {
			out = append(out, path.Join(testDir, n))
		}
	}
	return out
}

func mutate(t *testing.T, fsys vfs.FS, name string, fn func(f vfs.File, size int64)) {
	t.Helper()
	f, err := fsys.OpenReadWrite(name)
	if err != nil {
		t.Fatal(err)
	}
	size, _ := f.Size()
	fn(f, size)
	f.Sync()
	f.Close()
}

// detected reports whether Open or Check reports damage.
func detected(fsys vfs.FS) bool {
	_, err := Check(context.Background(), fsys, testDir, nil)
	if errors.Is(err, ErrCorrupt) {
		w, oerr := Open(fsys, testDir, Options{})
		if oerr == nil {
			w.Close()
			return false // Check and Open must agree
		}
		return errors.Is(oerr, ErrCorrupt)
	}
	return false
}

// detectedInSealedBody reports whether damage inside the batches of a sealed
// segment (one that another follows, between its header sector and its
// seal sector) is found. Open checks a sealed segment by its header and
// seal only, so it may succeed; then it must leave every sealed segment as
// it was, and a full read, through the opened log and after it is closed,
// must still fail at the damage with ErrCorrupt. A reader never serves a
// damaged record.
func detectedInSealedBody(t *testing.T, fsys vfs.FS, seg uint64) bool {
	t.Helper()
	if _, err := Check(context.Background(), fsys, testDir, nil); !isCorruptIn(err, seg) {
		return false
	}
	files := segmentFiles(t, fsys)
	before := make([][]byte, len(files)-1)
	for i := range before {
		before[i] = testutil.ReadFile(t, fsys, files[i])
	}
	w, err := Open(fsys, testDir, Options{})
	if err != nil {
		return errors.Is(err, ErrCorrupt)
	}
	_, rerr := w.Reader().Check(context.Background(), nil)
	n := 0
	for _, err := range w.Reader().Records(context.Background(), 1) {
		if err != nil {
			rerr = errors.Join(rerr, err)
			break
		}
		n++
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range before {
		if !bytes.Equal(before[i], testutil.ReadFile(t, fsys, files[i])) {
			t.Fatalf("Open changed sealed segment %s", files[i])
		}
	}
	_, cerr := Check(context.Background(), fsys, testDir, nil)
	return isCorruptIn(rerr, seg) && isCorruptIn(cerr, seg)
}

// isCorruptIn reports whether err is a *CorruptError naming segment seg.
func isCorruptIn(err error, seg uint64) bool {
	var ce *CorruptError
	return errors.As(err, &ce) && errors.Is(err, ErrCorrupt) && ce.Segment == seg
}

// TestEveryByteFlipIsDetected flips each byte of every segment of a small
// log, cleanly closed and crashed, and requires every flip to be reported as
// corruption: never truncated away, never accepted. Open reports it for the
// last segment of a crashed log and for a sealed segment's header and seal
// sectors; inside a sealed segment's batches (a cleanly closed last segment
// is sealed too), which Open does not read, Check and every reader
// report it and Open leaves the segment as it is (see detectedInSealedBody).
// The one exception is the
// zeros a crashed log's last segment holds after its records (filled ahead,
// never acknowledged): a flip there must lose nothing. It is a torn tail,
// or, in the sector right after the records (where a torn write would have
// left a whole batch header or none), reported as damage for a person to
// look at.
func TestEveryByteFlipIsDetected(t *testing.T) {
	for _, v := range []struct{ clean, tagged bool }{{true, false}, {false, false}, {true, true}, {false, true}} {
		clean := v.clean
		opts := Options{SegmentSize: 4096}
		if v.tagged { // batches with a tag trailer
			opts = newTestTagger(t).options(opts)
		}
		base, _ := buildLogOpts(t, 40, opts, clean)
		files := segmentFiles(t, base)
		if len(files) < 3 {
			t.Fatalf("want several segments, got %d", len(files))
		}
		rep, err := Check(context.Background(), base, testDir, nil)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(5, 5))
		flips, bodyFlips, tail := 0, 0, 0
		for i, name := range files {
			f, _ := base.Open(name)
			size, _ := f.Size()
			f.Close()
			end := size
			if i == len(files)-1 {
				end = dataEnd(t, base, name)
				if clean && end != size {
					t.Fatalf("a closed log's last segment ends at %d but the file holds %d bytes", end, size)
				}
			}
			for off := int64(0); off < size; off++ {
				c := base.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
				x := byte(1 + rng.IntN(255))
				testutil.XorByte(t, c, name, off, x)
				if off >= end {
					got, err := Check(context.Background(), c, testDir, nil)
					if off < end+SectorSize && errors.Is(err, ErrCorrupt) {
						tail++
						continue
					}
					if err != nil || got.Records != rep.Records || got.TornTail == nil {
						t.Fatalf("clean=%v: flipping byte %d of the zeros after the records of %s: %v, %d records (want %d) and a torn tail (%v)",
							clean, off, name, err, got.Records, rep.Records, got.TornTail)
					}
					tail++
					continue
				}
				if (i < len(files)-1 || clean) && off >= SectorSize && off < size-SectorSize {
					// Inside a sealed segment's batches (the last one's
					// too, after a clean Close): Open does not read them;
					// Check and every reader must fail there.
					num, _ := parseSegmentName(path.Base(name))
					if !detectedInSealedBody(t, c, num) {
						t.Fatalf("clean=%v: flipping byte %d of sealed segment %s (xor %#x) was not detected by a full read", clean, off, name, x)
					}
					bodyFlips++
					continue
				}
				if !detected(c) {
					t.Fatalf("clean=%v: flipping byte %d of %s (xor %#x) was not detected", clean, off, name, x)
				}
				flips++
			}
		}
		t.Logf("clean=%v: %d single-byte flips detected by Open and Check, %d inside sealed segments' batches detected by Check and every reader (Open leaves them as they are); %d in the zeros after the records, none lost anything", clean, flips, bodyFlips, tail)
	}
}

// TestZeroedBlockAndTruncationInMiddle: damage followed by intact,
// later-synced batches is corruption, not a torn tail.
func TestZeroedBlockAndTruncationInMiddle(t *testing.T) {
	base, _ := buildLog(t, 60, 1<<20, false)
	name := segmentFiles(t, base)[0]
	c := base.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
	mutate(t, c, name, func(f vfs.File, size int64) {
		f.WriteAt(make([]byte, 512), 1024)
	})
	if !detected(c) {
		t.Fatal("a zeroed sector in the middle of acknowledged data was not detected")
	}
}

// TestGarbageAfterSeal: bytes appended after a clean close are reported.
func TestGarbageAfterSeal(t *testing.T) {
	base, _ := buildLog(t, 10, 1<<20, true)
	files := segmentFiles(t, base)
	mutate(t, base, files[len(files)-1], func(f vfs.File, size int64) {
		g := make([]byte, 1000)
		for i := range g {
			g[i] = byte(i*7 + 1)
		}
		f.WriteAt(g, size)
	})
	if !detected(base) {
		t.Fatal("garbage after the seal was not detected")
	}
}

// fakeBatch writes a batch header with a valid checksum at off, claiming
// bodyLen bytes, followed by a few non-zero bytes.
func fakeBatch(t *testing.T, fsys vfs.FS, name string, off int64, bodyLen uint32, synced uint64) {
	hdr := readSegHeader(t, fsys, name)
	mutate(t, fsys, name, func(f vfs.File, size int64) {
		b := make([]byte, SectorSize)
		h := batchHeader{Count: 1, Salt: hdr.Salt, Offset: uint64(off), SyncedOff: synced, FirstSeq: 999, BodyLen: bodyLen}
		h.put(b)
		for i := batchHeaderSize; i < len(b); i++ {
			b[i] = 0xA5
		}
		f.WriteAt(b, off)
	})
}

// readSegHeader decodes the header of segment file name; a header that does
// not decode fails the test with its reason.
func readSegHeader(t *testing.T, fsys vfs.FS, name string) segHeader {
	t.Helper()
	h, err := decodeSegHeader(testutil.ReadFile(t, fsys, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return h
}

// TestHugeLengths: a batch whose length points past the end of the file is
// a torn tail at the unacknowledged end (truncated, nothing lost), and a
// record length of 4 GiB allocates nothing and fails the checksum.
func TestHugeLengths(t *testing.T) {
	base, acked := buildLog(t, 20, 1<<20, false)
	name := segmentFiles(t, base)[0]
	end := dataEnd(t, base, name)
	fakeBatch(t, base, name, end, 200<<20, uint64(end))
	checkRecovered(t, 1, base, acked, Options{})

	// Inside acknowledged data, a damaged record length is corruption.
	base, _ = buildLog(t, 20, 1<<20, false)
	name = segmentFiles(t, base)[0]
	mutate(t, base, name, func(f vfs.File, size int64) {
		hdr := readSegHeader(t, base, name)
		b := make([]byte, 4)
		off := int64(segHeaderSize + batchHeaderSize)
		f.ReadAt(b, off)
		// Set the (whitened) length field so that it decodes to 0xFFFFFFF0.
		var ks [8]byte
		binary.LittleEndian.PutUint64(ks[:], 0)
		whiten(ks[:], hdr.Salt, off)
		binary.LittleEndian.PutUint32(b, 0xFFFFFFF0^binary.LittleEndian.Uint32(ks[:4]))
		f.WriteAt(b, off)
	})
	allocs := testing.AllocsPerRun(1, func() { detected(base) })
	if !detected(base) {
		t.Fatal("a 4 GiB record length inside acknowledged data was not detected")
	}
	if allocs > 10000 {
		t.Fatalf("%v allocations", allocs)
	}
}

// TestLeftoverTmpAndStaleSegment: temporary files are removed on open; a
// segment from another log (or an older incarnation) placed after the last
// one is rejected by its identity, not read as current data.
func TestLeftoverTmpAndStaleSegment(t *testing.T) {
	base, acked := buildLog(t, 20, 4096, true)
	f, err := base.Create(path.Join(testDir, segmentName(99)+".tmp"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("half-written segment"), 0)
	f.Close()
	checkRecovered(t, 2, base, acked, Options{SegmentSize: 4096})
	if names, _ := base.List(testDir); len(names) == 0 || names[len(names)-1] == segmentName(99)+".tmp" {
		t.Fatalf("leftover temporary file was not removed: %v", names)
	}

	// A segment copied from another log, named as the next segment.
	other, _ := buildLog(t, 30, 4096, true)
	otherFiles := segmentFiles(t, other)
	files := segmentFiles(t, base)
	next, _ := parseSegmentName(path.Base(files[len(files)-1]))
	data := testutil.ReadFile(t, other, otherFiles[1])
	// Rewrite its header so the number matches its new name (as an
	// attacker or a careless restore might): the chain still rejects it.
	hdr, _ := decodeSegHeader(data)
	hdr.Number = next + 1
	copy(data, hdr.encode())
	g, _ := base.Create(path.Join(testDir, segmentName(next+1)))
	g.WriteAt(data, 0)
	g.Sync()
	g.Close()
	if _, err := Open(base, testDir, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a foreign segment was accepted: %v", err)
	}
	// A file whose name and header disagree.
	c := other.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
	c.Rename(otherFiles[0], path.Join(testDir, segmentName(1000)))
	if _, err := Open(c, testDir, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a misnamed segment was accepted: %v", err)
	}
}

// TestUnknownVersion: a segment written by a newer format is refused with
// ErrUnknownVersion, not treated as corruption and not modified.
func TestUnknownVersion(t *testing.T) {
	base, _ := buildLog(t, 5, 1<<20, true)
	name := segmentFiles(t, base)[0]
	mutate(t, base, name, func(f vfs.File, _ int64) {
		b := make([]byte, segHeaderSize)
		f.ReadAt(b, 0)
		binary.LittleEndian.PutUint16(b[8:], 7)
		binary.LittleEndian.PutUint32(b[segHeaderFields-4:], crc32.Checksum(b[:segHeaderFields-4], castagnoli))
		f.WriteAt(b, 0)
	})
	before := testutil.ReadFile(t, base, name)
	_, err := Open(base, testDir, Options{})
	if !errors.Is(err, ErrUnknownVersion) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("open of a version-7 segment: %v", err)
	}
	if string(before) != string(testutil.ReadFile(t, base, name)) {
		t.Fatal("open modified a segment it could not read")
	}
}
