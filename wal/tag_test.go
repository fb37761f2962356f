package wal

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/willibrandon/mtlog-audit/internal/testutil"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// testTagger tags a batch with SHA-256 of its sequence numbers and
// payloads, and checks that the sequence numbers it sees are consecutive
// except where a failed write gave them back.
type testTagger struct {
	t        *testing.T
	calls    int
	firstSeq []uint64
	tags     map[uint64][32]byte // by the batch's last sequence number
	digests  map[uint64][32]byte // Digest set by Tag, as OnCommit saw it
}

func newTestTagger(t *testing.T) *testTagger {
	return &testTagger{t: t, tags: map[uint64][32]byte{}, digests: map[uint64][32]byte{}}
}

func batchTag(recs []Committed) [32]byte {
	h := sha256.New()
	for _, r := range recs {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], r.Seq)
		h.Write(b[:])
		h.Write(r.Payload)
	}
	var t [32]byte
	h.Sum(t[:0])
	return t
}

func (g *testTagger) options(o Options) Options {
	o.Tag = func(recs []Committed) ([32]byte, error) {
		g.calls++
		g.firstSeq = append(g.firstSeq, recs[0].Seq)
		for i := range recs {
			recs[i].Digest = sha256.Sum256(recs[i].Payload)
		}
		tag := batchTag(recs)
		g.tags[recs[len(recs)-1].Seq] = tag
		return tag, nil
	}
	o.OnCommit = func(recs []Committed) error {
		for _, r := range recs {
			if r.Digest == ([32]byte{}) { // an untagged (version 1) seal
				continue
			}
			if r.Digest != sha256.Sum256(r.Payload) {
				g.t.Errorf("record %d: OnCommit did not get the Digest that Tag set", r.Seq)
			}
			g.digests[r.Seq] = r.Digest
		}
		return nil
	}
	return o
}

// checkTags reads the log and checks that every batch's last record
// carries the tag made for it (and only the last one carries one).
func checkTags(t *testing.T, fsys vfs.FS, g *testTagger, wantVersion uint16) int {
	t.Helper()
	batches := 0
	var batch []Committed
	for r, err := range NewReader(fsys, testDir).Records(context.Background(), 0) {
		if err != nil {
			t.Fatal(err)
		}
		if wantVersion != 0 && r.Version != wantVersion {
			t.Fatalf("record %d: version %d, want %d", r.Seq, r.Version, wantVersion)
		}
		batch = append(batch, Committed{Seq: r.Seq, Payload: append([]byte(nil), r.Payload...)})
		if !r.BatchEnd {
			if r.Tagged || r.Tag != ([32]byte{}) {
				t.Fatalf("record %d is not the last of its batch but carries a tag", r.Seq)
			}
			continue
		}
		batches++
		if !r.Tagged || r.Tag != g.tags[r.Seq] || r.Tag != batchTag(batch) {
			t.Fatalf("batch ending at %d: tag %x (tagged %v), want %x", r.Seq, r.Tag[:4], r.Tagged, g.tags[r.Seq])
		}
		batch = batch[:0]
	}
	return batches
}

// The Tag hook is called before each batch (seals included) with sequence
// numbers assigned; its tag is stored in the batch and read back on the
// batch's last record; the Digests it sets reach OnCommit.
func TestTagHook(t *testing.T) {
	fsys := vfs.NewCrashFS()
	g := newTestTagger(t)
	w, err := Open(fsys, testDir, g.options(Options{SegmentSize: 4096}))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 40; i++ {
		if _, err := w.Append(context.Background(), RecordEvent, int64(i), testPayload(0, i, rng)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := checkTags(t, fsys, g, FormatVersion); n != g.calls || len(g.digests) != 40+len(segmentFiles(t, fsys)) {
		t.Fatalf("%d tagged batches read, %d tagged; %d digests", n, g.calls, len(g.digests))
	}
	// A flipped bit in a tag is damage like any other.
	files := segmentFiles(t, fsys)
	c := fsys.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
	off := int64(segHeaderSize + batchHeaderSize + recHeaderSize + len(testPayload(0, 0, rand.New(rand.NewPCG(1, 2)))) + 3)
	testutil.XorByte(t, c, files[0], off, 0x10)
	if _, err := Check(context.Background(), c, testDir, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a flipped tag bit must be damage: %v", err)
	}
}

// A batch whose write fails (a full disk) takes no sequence numbers: the
// Tag hook is called again for the same first sequence number, and the
// failed batch's tag is never read back.
func TestTagHookFailedWrite(t *testing.T) {
	crash := vfs.NewCrashFS()
	fsys := vfs.NewFaultFS(crash)
	g := newTestTagger(t)
	w, err := Open(fsys, testDir, g.options(Options{SegmentSize: 1 << 20, Prealloc: -1}))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	if _, err := w.Append(context.Background(), RecordEvent, 1, testPayload(0, 1, rng)); err != nil {
		t.Fatal(err)
	}
	fsys.SetWriteBudget(0)
	if _, err := w.Append(context.Background(), RecordEvent, 2, testPayload(0, 2, rng)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("want a full disk, got %v", err)
	}
	fsys.SetWriteBudget(-1)
	seq, err := w.Append(context.Background(), RecordEvent, 3, testPayload(0, 3, rng))
	if err != nil || seq != 2 {
		t.Fatalf("after the failed write: seq %d, %v", seq, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if len(g.firstSeq) < 3 || g.firstSeq[1] != 2 || g.firstSeq[2] != 2 {
		t.Fatalf("Tag saw first sequence numbers %v, want 1, 2, 2, ...", g.firstSeq)
	}
	checkTags(t, crash, g, FormatVersion) // the tag of the batch that failed was replaced
}

// setVersion1 rewrites the header of a segment written untagged as format
// version 1, as an older build wrote it.
func setVersion1(t *testing.T, fsys vfs.FS, name string) {
	t.Helper()
	mutate(t, fsys, name, func(f vfs.File, _ int64) {
		b := make([]byte, segHeaderSize)
		f.ReadAt(b, 0)
		binary.LittleEndian.PutUint16(b[8:], 1)
		binary.LittleEndian.PutUint32(b[segHeaderFields-4:], crc32.Checksum(b[:segHeaderFields-4], castagnoli))
		f.WriteAt(b, 0)
	})
}

// Version 1 segments stay readable; a writer with a Tag hook never appends
// to one: it seals it (untagged: version 1 has no tags) and continues in a
// new version 2 segment, every batch of which is tagged.
func TestVersion1SegmentsStayReadable(t *testing.T) {
	crash := vfs.NewCrashFS()
	w, err := Open(crash, testDir, Options{SegmentSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 5; i++ {
		if _, err := w.Append(context.Background(), RecordEvent, int64(i), testPayload(0, i, rng)); err != nil {
			t.Fatal(err)
		}
	}
	fsys := crash.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1}) // an older build crashed
	w.Release()
	setVersion1(t, fsys, segmentFiles(t, fsys)[0])
	rep, err := Check(context.Background(), fsys, testDir, nil)
	if err != nil || rep.Records != 5 {
		t.Fatalf("a version 1 segment must read: %v %+v", err, rep)
	}
	g := newTestTagger(t)
	w, err = Open(fsys, testDir, g.options(Options{SegmentSize: 1 << 20}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(context.Background(), RecordEvent, 9, testPayload(0, 9, rng)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var versions []uint16
	for r, err := range NewReader(fsys, testDir).Records(context.Background(), 0) {
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, r.Version)
		if r.BatchEnd && r.Tagged != (r.Version == 2) {
			t.Fatalf("record %d (version %d): tagged %v", r.Seq, r.Version, r.Tagged)
		}
		if r.Version == 1 && r.Seq == 6 && r.Type != RecordSeal {
			t.Fatalf("record 6 should seal the version 1 segment, got %v", r.Type)
		}
	}
	if len(versions) != 8 || versions[5] != 1 || versions[6] != 2 {
		t.Fatalf("versions %v: want 5 events and a seal in version 1, then an event and a seal in version 2", versions)
	}
}
