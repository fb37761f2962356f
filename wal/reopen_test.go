package wal

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/willibrandon/mtlog-audit/internal/testutil"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// TestRestartsContinueTheLastSegment: 200 restarts (Open, one Append,
// Close) leave a number of segment files that grows with the data, not with
// the restarts: one file with the default segment size, and with small
// segments as many as the bytes need. Every record is then read back by
// every reader, across the interior seals each Close left.
func TestRestartsContinueTheLastSegment(t *testing.T) {
	for _, segSize := range []int64{0, 16 << 10} {
		dir := t.TempDir()
		opts := Options{SegmentSize: segSize}
		const restarts = 200
		want := map[uint64][]byte{}
		for i := range restarts {
			w, err := Open(vfs.OS(), dir, opts)
			if err != nil {
				t.Fatalf("restart %d: %v", i, err)
			}
			seq, err := w.Append(t.Context(), RecordEvent, int64(i), payloadFor(i))
			if err != nil {
				t.Fatal(err)
			}
			want[seq] = payloadFor(i)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		}
		files, err := filepath.Glob(filepath.Join(dir, "*.wal"))
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		for _, name := range files {
			total += testutil.FileSize(t, vfs.OS(), name)
		}
		maxFiles := 1
		if segSize > 0 {
			// A segment is continued while a batch and a seal fit: each
			// one holds at least half the segment size.
			maxFiles = int(total/(segSize/2)) + 1
		}
		if len(files) > maxFiles {
			t.Fatalf("segment size %d: %d restarts left %d segment files for %d bytes, want at most %d", segSize, restarts, len(files), total, maxFiles)
		}
		if segSize > 0 && len(files) < 2 {
			t.Fatalf("segment size %d: %d bytes in one segment file", segSize, total)
		}
		checkEveryReader(t, dir, want)
	}
}

// checkEveryReader reads the cleanly closed log in dir with Check, Records,
// Between, Follow, Salvage (both modes) and Summarize and requires exactly
// the events in want, in order, with nothing reported missing or damaged.
func checkEveryReader(t *testing.T, dir string, want map[uint64][]byte) {
	t.Helper()
	ctx := t.Context()
	fsys := vfs.OS()
	same := func(what string, got map[uint64][]byte) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
		}
		for seq, p := range want {
			if !bytes.Equal(got[seq], p) {
				t.Fatalf("%s: event %d lost or altered", what, seq)
			}
		}
	}
	collect := func(got map[uint64][]byte) func(Record) error {
		return func(r Record) error {
			if r.Type == RecordEvent {
				got[r.Seq] = bytes.Clone(r.Payload)
			}
			return nil
		}
	}

	got := map[uint64][]byte{}
	rep, err := Check(ctx, fsys, dir, collect(got))
	if err != nil || !rep.Sealed || rep.TornTail != nil || rep.Records != rep.LastSeq {
		t.Fatalf("Check: %v, %+v", err, rep)
	}
	same("Check", got)

	got = map[uint64][]byte{}
	next := uint64(1)
	for r, err := range NewReader(fsys, dir).Records(ctx, 1) {
		if err != nil {
			t.Fatalf("Records: %v", err)
		}
		if r.Seq != next {
			t.Fatalf("Records: sequence %d after %d", r.Seq, next-1)
		}
		next++
		collect(got)(r)
	}
	same("Records", got)

	got = map[uint64][]byte{}
	for r, err := range NewReader(fsys, dir).Between(ctx, math.MinInt64, math.MaxInt64) {
		if err != nil {
			t.Fatalf("Between: %v", err)
		}
		collect(got)(r)
	}
	same("Between", got)
	// A window: the events were stamped 0, 1, 2, ... in order.
	n := 0
	for r, err := range NewReader(fsys, dir).Between(ctx, 50, 60) {
		if err != nil || r.Time < 50 || r.Time >= 60 {
			t.Fatalf("Between(50, 60): %v, time %d", err, r.Time)
		}
		n++
	}
	if n != 10 {
		t.Fatalf("Between(50, 60): %d events, want 10", n)
	}

	fctx, cancel := context.WithCancel(ctx)
	fa := startFollow(fctx, dir, 1)
	testutil.WaitFor(t, "Follow to reach the last record", func() bool { return fa.has(rep.LastSeq) })
	cancel()
	<-fa.done
	if !errors.Is(fa.err, context.Canceled) {
		t.Fatalf("Follow: %v", fa.err)
	}
	got = map[uint64][]byte{}
	for _, r := range fa.recs {
		collect(got)(r)
	}
	same("Follow", got)

	for _, mode := range []SalvageMode{SalvageSafe, SalvageAggressive} {
		got = map[uint64][]byte{}
		srep, err := Salvage(ctx, fsys, dir, mode, collect(got), nil)
		if err != nil || len(srep.Gaps) != 0 || srep.TornTail != nil || srep.Records != rep.Records {
			t.Fatalf("Salvage %v: %v, %+v", mode, err, srep)
		}
		same("Salvage", got)
	}

	sums, err := Summarize(ctx, fsys, dir, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var records uint64
	for _, s := range sums {
		if s.Problem != "" || !s.Sealed {
			t.Fatalf("Summarize: segment %d: %+v", s.Number, s)
		}
		records += s.Records
	}
	if records != rep.Records {
		t.Fatalf("Summarize: %d records, want %d", records, rep.Records)
	}
}

// reopenedLog builds a log on a crash filesystem: 10 records, a clean
// Close, a reopen and 5 more records appended one batch each after the
// seal. It returns the filesystem (as a crash would leave it, every write
// kept, when crash is set; else after a second Close), the acknowledged
// records, the end of the first seal and the offsets of the batches after it.
func reopenedLog(t *testing.T, crash bool) (*vfs.CrashFS, map[uint64][]byte, int64, []int64) {
	t.Helper()
	fsys, acked := buildLog(t, 10, 1<<20, true)
	name := segmentFiles(t, fsys)[0]
	sealEnd := testutil.FileSize(t, fsys, name)
	w, err := Open(fsys, testDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 5 {
		p := sizedPayload(1, i, 64, rng) // checkRecovered knows it for ours
		seq, err := w.Append(t.Context(), RecordEvent, int64(100+i), p)
		if err != nil {
			t.Fatal(err)
		}
		acked[seq] = p
		offs = append(offs, sealEnd+int64(i)*SectorSize)
	}
	if crash {
		c := fsys.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
		w.Release()
		return c, acked, sealEnd, offs
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := segmentFiles(t, fsys); len(got) != 1 {
		t.Fatalf("close, reopen, append: %d segments, want the one continued", len(got))
	}
	return fsys, acked, sealEnd, offs
}

// TestReopenedSegmentRecovery: crashes and damage after a reopen are judged
// by the recovery rules, the interior seal read like any record.
func TestReopenedSegmentRecovery(t *testing.T) {
	t.Run("crash after appending", func(t *testing.T) {
		// Zeros filled ahead after the batches that follow the seal.
		fsys, acked, _, offs := reopenedLog(t, true)
		name := segmentFiles(t, fsys)[0]
		if end := offs[len(offs)-1] + SectorSize; testutil.FileSize(t, fsys, name) <= end {
			t.Fatalf("no zeros filled ahead after the batches (file %d bytes, batches end at %d)", testutil.FileSize(t, fsys, name), end)
		}
		checkRecovered(t, 1, fsys, acked, Options{})
	})
	t.Run("zeros after the seal", func(t *testing.T) {
		// Space filled ahead after a seal, then nothing: a seal whose
		// cut was not durable, or a reopen that crashed before its
		// first batch.
		fsys, acked := buildLog(t, 10, 1<<20, true)
		name := segmentFiles(t, fsys)[0]
		sealEnd := testutil.FileSize(t, fsys, name)
		mutate(t, fsys, name, func(f vfs.File, size int64) { f.WriteAt(make([]byte, 8<<10), size) })
		rep, err := Check(t.Context(), fsys, testDir, nil)
		if err != nil || rep.TornTail != nil || !rep.Sealed {
			t.Fatalf("Check: %v, %+v", err, rep)
		}
		w, err := Open(fsys, testDir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := testutil.FileSize(t, fsys, name); got != sealEnd {
			t.Fatalf("Open left %d bytes, want the segment cut at its seal (%d)", got, sealEnd)
		}
		w.Close()
		checkRecovered(t, 2, fsys, acked, Options{})
	})
	t.Run("torn batch after the seal", func(t *testing.T) {
		fsys, acked := buildLog(t, 10, 1<<20, true)
		name := segmentFiles(t, fsys)[0]
		sealEnd := testutil.FileSize(t, fsys, name)
		// A batch header whose body runs past the end of the file.
		fakeBatch(t, fsys, name, sealEnd, 4<<10, uint64(sealEnd))
		rep, err := Check(t.Context(), fsys, testDir, nil)
		if err != nil || rep.TornTail == nil || rep.TornTail.Offset != sealEnd {
			t.Fatalf("Check: %v, %+v", err, rep)
		}
		checkRecovered(t, 3, fsys, acked, Options{})
		if got := testutil.FileSize(t, fsys, name); got != sealEnd {
			t.Fatalf("Open left %d bytes, want the torn batch cut at %d", got, sealEnd)
		}
	})
	t.Run("damage after the seal in a crashed log", func(t *testing.T) {
		// A later batch vouches that the damaged one was durable.
		fsys, _, _, offs := reopenedLog(t, true)
		name := segmentFiles(t, fsys)[0]
		testutil.XorByte(t, fsys, name, offs[1]+batchHeaderSize+3, 0x5a)
		if !detected(fsys) {
			t.Fatal("damage in a batch after an interior seal was not reported")
		}
	})
	t.Run("damage after the seal in a closed log", func(t *testing.T) {
		fsys, acked, _, offs := reopenedLog(t, false)
		name := segmentFiles(t, fsys)[0]
		testutil.XorByte(t, fsys, name, offs[1]+batchHeaderSize+3, 0x5a)
		// Open checks the sealed segment by its seal; every full read
		// fails at the damage.
		if !detectedInSealedBody(t, fsys, 1) {
			t.Fatal("damage in a batch after an interior seal was not reported by a full read")
		}
		got := map[uint64]bool{}
		srep, err := Salvage(t.Context(), fsys, testDir, SalvageAggressive, func(r Record) error {
			got[r.Seq] = true
			return nil
		}, nil)
		if err != nil || len(srep.Gaps) != 1 {
			t.Fatalf("Salvage: %v, %+v", err, srep)
		}
		lost := 0
		for seq := range acked {
			if !got[seq] {
				lost++
			}
		}
		// The record of the damaged batch is lost; those after it, and
		// the final seal, are salvaged.
		if lost != 1 || !got[srep.LastSeq] || srep.LastSeq != uint64(len(acked)+2) {
			t.Fatalf("Salvage lost %d records, last %d: %+v", lost, srep.LastSeq, srep)
		}
	})
}

// TestReopenOnlyWhenItFits: a sealed last segment without room for a batch
// and another seal is left as it is, and the next record starts a new
// segment.
func TestReopenOnlyWhenItFits(t *testing.T) {
	fsys, _ := buildLog(t, 10, 1<<20, true)
	name := segmentFiles(t, fsys)[0]
	size := testutil.FileSize(t, fsys, name)
	for _, c := range []struct {
		segSize int64
		files   int
	}{{size + 2*SectorSize, 1}, {size + SectorSize, 2}} {
		w, err := Open(fsys, testDir, Options{SegmentSize: c.segSize})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Append(t.Context(), RecordEvent, 1, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got := len(segmentFiles(t, fsys)); got != c.files {
			t.Fatalf("segment size %d, sealed segment of %d bytes: %d files, want %d", c.segSize, size, got, c.files)
		}
		size = testutil.FileSize(t, fsys, segmentFiles(t, fsys)[c.files-1])
	}
	if _, err := Check(t.Context(), fsys, testDir, nil); err != nil {
		t.Fatal(err)
	}
}

// TestFollowAcrossReopen: Follow, waiting at the seal of a cleanly closed
// log, yields the records a reopen appends after that seal, in the same
// segment file.
func TestFollowAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(vfs.OS(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := w.Append(t.Context(), RecordEvent, int64(i), payloadFor(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	fa := startFollow(ctx, dir, 1)
	testutil.WaitFor(t, "the seal", func() bool { return fa.has(w.LastSeq()) })
	var last uint64
	for round := range 3 {
		w, err = Open(vfs.OS(), dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			if last, err = w.Append(t.Context(), RecordEvent, int64(10*round+i), payloadFor(10*round+i)); err != nil {
				t.Fatal(err)
			}
		}
		testutil.WaitFor(t, "the records after the reopen", func() bool { return fa.has(last) })
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, "the last seal", func() bool { return fa.has(last + 1) })
	cancel()
	<-fa.done
	if !errors.Is(fa.err, context.Canceled) {
		t.Fatalf("Follow: %v", fa.err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.wal")); len(files) != 1 {
		t.Fatalf("%d segment files, want the one continued", len(files))
	}
	seals := 0
	for i, r := range fa.recs {
		if r.Seq != uint64(i)+1 {
			t.Fatalf("Follow yielded sequence %d at position %d", r.Seq, i)
		}
		if r.Type == RecordSeal {
			seals++
		}
	}
	if len(fa.recs) != int(last)+1 || seals != 4 {
		t.Fatalf("Follow yielded %d records with %d seals, want %d with 4", len(fa.recs), seals, last+1)
	}
}
