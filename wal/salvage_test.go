package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/internal/testutil"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// The salvage tests build real logs with Open and Append (several writers, so
// that batches hold several records), damage them, and compare what Salvage
// returns with the records as they were before the damage.

// slvRec is a record of an intact log and where its bytes lie.
type slvRec struct {
	Seq                uint64
	Type               RecordType
	Time               int64
	Payload            []byte
	Segment            uint64
	BatchOff, BatchEnd int64 // the record's batch, padding included
	FrameOff, FrameEnd int64 // the record's own frame
}

// slvLog is an intact log: its records, in order, and its segment sizes.
type slvLog struct {
	recs  []slvRec
	sizes map[uint64]int64
	segs  []uint64
	bySeq map[uint64]*slvRec
}

// slvFixture makes copies of one intact log on one kind of filesystem.
type slvFixture struct {
	name  string
	log   *slvLog
	clone func(t *testing.T) (vfs.FS, string)
}

func slvPayload(i int) []byte {
	n := 20 + (i*37)%300
	p := make([]byte, n)
	binary.LittleEndian.PutUint64(p, uint64(i))
	for j := 8; j < n; j++ {
		p[j] = byte(i*31 + j*7)
	}
	if i%9 == 0 {
		clear(p[8:]) // zero runs must not confuse the search for records
	}
	return p
}

// slvWrite appends n records with several writers and closes the log cleanly.
func slvWrite(t testing.TB, fsys vfs.FS, dir string, n int, segSize int64, timeBase int64) {
	t.Helper()
	w, err := Open(fsys, dir, Options{SegmentSize: segSize, MaxDelay: 100 * time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	const writers = 4
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < n; i += writers {
				if _, err := w.Append(context.Background(), RecordEvent, timeBase+int64(i), slvPayload(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// slvLayoutOf reads an intact log and computes where every record lies.
func slvLayoutOf(t testing.TB, fsys vfs.FS, dir string) *slvLog {
	t.Helper()
	l := &slvLog{sizes: map[uint64]int64{}, bySeq: map[uint64]*slvRec{}}
	if _, err := Check(context.Background(), fsys, dir, func(r Record) error {
		l.recs = append(l.recs, slvRec{Seq: r.Seq, Type: r.Type, Time: r.Time, Payload: bytes.Clone(r.Payload), Segment: r.Segment, BatchOff: r.Offset})
		return nil
	}); err != nil {
		t.Fatalf("intact log does not check: %v", err)
	}
	names, err := fsys.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if n, ok := parseSegmentName(name); ok {
			f, err := fsys.Open(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			l.sizes[n], _ = f.Size()
			f.Close()
			l.segs = append(l.segs, n)
		}
	}
	// A segment is its header and its batches back to back: a batch ends
	// where the next begins, or at the end of the file.
	for i := range l.recs {
		r := &l.recs[i]
		r.BatchEnd = l.sizes[r.Segment]
		for j := i + 1; j < len(l.recs) && l.recs[j].Segment == r.Segment; j++ {
			if l.recs[j].BatchOff != r.BatchOff {
				r.BatchEnd = l.recs[j].BatchOff
				break
			}
		}
		r.FrameOff = r.BatchOff + batchHeaderSize
		if i > 0 && l.recs[i-1].Segment == r.Segment && l.recs[i-1].BatchOff == r.BatchOff {
			r.FrameOff = l.recs[i-1].FrameEnd
		}
		r.FrameEnd = r.FrameOff + recHeaderSize + int64(len(r.Payload))
		l.bySeq[r.Seq] = r
	}
	return l
}

const slvSegSize = 24 << 10

func slvCrashFixture(t *testing.T) *slvFixture {
	base := vfs.NewCrashFS()
	slvWrite(t, base, testDir, 700, slvSegSize, 1_000_000)
	return &slvFixture{name: "crashfs", log: slvLayoutOf(t, base, testDir), clone: func(*testing.T) (vfs.FS, string) {
		return base.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1}), testDir
	}}
}

func slvOSFixture(t *testing.T) *slvFixture {
	src := filepath.Join(t.TempDir(), "wal")
	slvWrite(t, vfs.OS(), src, 700, slvSegSize, 1_000_000)
	return &slvFixture{name: "osfs", log: slvLayoutOf(t, vfs.OS(), src), clone: func(t *testing.T) (vfs.FS, string) {
		dst := filepath.Join(t.TempDir(), "wal")
		if err := os.MkdirAll(dst, 0o750); err != nil {
			t.Fatal(err)
		}
		names, _ := os.ReadDir(src)
		for _, e := range names {
			data, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o640); err != nil {
				t.Fatal(err)
			}
		}
		return vfs.OS(), dst
	}}
}

// slvDamage is a damaged byte range [From, To) of one segment file (To is
// math.MaxInt64 for "to the end and beyond": truncation, deletion).
type slvDamage struct {
	Seg      uint64
	From, To int64
}

func (d slvDamage) hits(seg uint64, from, to int64) bool {
	return seg == d.Seg && from < d.To && to > d.From
}

func slvTouched(r *slvRec, dmg []slvDamage, frame bool) bool {
	from, to := r.BatchOff, r.BatchEnd
	if frame {
		from, to = r.FrameOff, r.FrameEnd
	}
	for _, d := range dmg {
		if d.hits(r.Segment, from, to) {
			return true
		}
	}
	return false
}

// slvBefore reports whether r lies entirely before the first damage, in log
// order: what safe mode must return.
func slvBefore(r *slvRec, dmg []slvDamage) bool {
	first := dmg[0]
	for _, d := range dmg[1:] {
		if d.Seg < first.Seg || (d.Seg == first.Seg && d.From < first.From) {
			first = d
		}
	}
	return r.Segment < first.Seg || (r.Segment == first.Seg && r.BatchEnd <= first.From)
}

func slvPath(dir string, seg uint64) string { return filepath.Join(dir, segmentName(seg)) }

// slvSnapshot returns every file of dir with its bytes (and, on the OS, its
// modification time), to prove that Salvage changed nothing.
func slvSnapshot(t *testing.T, fsys vfs.FS, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	names, err := fsys.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		p := filepath.Join(dir, name)
		fi, err := fsys.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		f, err := fsys.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		size, _ := f.Size()
		b := make([]byte, size)
		f.ReadAt(b, 0)
		f.Close()
		out[name] = fmt.Sprintf("%s|%d|%x", fi.ModTime().Format(time.RFC3339Nano), fi.Mode(), b)
	}
	return out
}

func slvEqualSnap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// slvRun salvages and checks, whatever the damage, that every visited record
// is one that was written (same type, time and payload under the same
// sequence number), that sequence numbers only increase, and that the input
// was not modified.
func slvRun(t *testing.T, fsys vfs.FS, dir string, l *slvLog, mode SalvageMode) (map[uint64]bool, *SalvageReport) {
	got, _, rep := slvRunAt(t, fsys, dir, l, mode)
	return got, rep
}

// slvRunAt is slvRun that also returns each record's Offset as visited.
func slvRunAt(t *testing.T, fsys vfs.FS, dir string, l *slvLog, mode SalvageMode) (map[uint64]bool, map[uint64]int64, *SalvageReport) {
	t.Helper()
	before := slvSnapshot(t, fsys, dir)
	got := map[uint64]bool{}
	offs := map[uint64]int64{}
	var last uint64
	rep, err := Salvage(context.Background(), fsys, dir, mode, func(r Record) error {
		o := l.bySeq[r.Seq]
		if o == nil || o.Type != r.Type || o.Time != r.Time || !bytes.Equal(o.Payload, r.Payload) {
			return fmt.Errorf("record %d (%v, segment %d offset %d) is not what was written", r.Seq, r.Type, r.Segment, r.Offset)
		}
		if r.Seq <= last {
			return fmt.Errorf("record %d after %d", r.Seq, last)
		}
		last = r.Seq
		got[r.Seq] = true
		offs[r.Seq] = r.Offset
		return nil
	}, nil)
	if err != nil {
		t.Fatalf("%v salvage: %v", mode, err)
	}
	if !slvEqualSnap(before, slvSnapshot(t, fsys, dir)) {
		t.Fatalf("%v salvage modified the directory", mode)
	}
	if rep.Records != uint64(len(got)) {
		t.Fatalf("report counts %d records, visited %d", rep.Records, len(got))
	}
	return got, offs, rep
}

func slvGaps(rep *SalvageReport) string {
	var b bytes.Buffer
	for _, g := range rep.Gaps {
		fmt.Fprintf(&b, "\n  segment %d offset %d length %d seqs %d-%d exact=%v: %s", g.Segment, g.Offset, g.Length, g.FirstSeq, g.LastSeq, g.Exact, g.Reason)
	}
	return b.String()
}

// slvCovered checks that every record that was written and not salvaged,
// up to the last one salvaged, lies in a gap's sequence range.
func slvCovered(t *testing.T, l *slvLog, got map[uint64]bool, rep *SalvageReport) {
	t.Helper()
	for _, r := range l.recs {
		if got[r.Seq] || r.Seq > rep.LastSeq {
			continue
		}
		in := false
		for _, g := range rep.Gaps {
			if g.FirstSeq != 0 && r.Seq >= g.FirstSeq && (g.LastSeq == 0 || r.Seq <= g.LastSeq) {
				in = true
			}
		}
		if !in {
			t.Fatalf("record %d was lost but no gap says so:%s", r.Seq, slvGaps(rep))
		}
	}
}

type slvCase struct {
	name   string
	damage func(t *testing.T, fsys vfs.FS, dir string, l *slvLog) []slvDamage
}

func slvCases() []slvCase {
	mid := func(l *slvLog) uint64 { return l.segs[len(l.segs)/2] }
	// batchAt returns the offset of the batch k batches into a segment.
	batchAt := func(l *slvLog, seg uint64, k int) int64 {
		var offs []int64
		for _, r := range l.recs {
			if r.Segment == seg && (len(offs) == 0 || offs[len(offs)-1] != r.BatchOff) {
				offs = append(offs, r.BatchOff)
			}
		}
		return offs[min(k, len(offs)-1)]
	}
	return []slvCase{
		{"flip bytes mid-segment", func(t *testing.T, fsys vfs.FS, dir string, l *slvLog) []slvDamage {
			seg := mid(l)
			at := l.sizes[seg] / 2
			for _, o := range []int64{at, at + 1, at + 300} {
				testutil.XorByte(t, fsys, slvPath(dir, seg), o, 0x5a)
			}
			return []slvDamage{{seg, at, at + 301}}
		}},
		{"zero 4 KiB", func(t *testing.T, fsys vfs.FS, dir string, l *slvLog) []slvDamage {
			seg := mid(l)
			at := l.sizes[seg]/3 + 77
			testutil.WriteAt(t, fsys, slvPath(dir, seg), make([]byte, 4096), at)
			return []slvDamage{{seg, at, at + 4096}}
		}},
		{"truncate mid-segment inside a record", func(t *testing.T, fsys vfs.FS, dir string, l *slvLog) []slvDamage {
			seg := mid(l)
			var at int64
			for _, r := range l.recs { // a record in the middle that is not its batch's first
				if r.Segment == seg && r.FrameOff > l.sizes[seg]/2 && r.FrameOff != r.BatchOff+batchHeaderSize {
					at = r.FrameOff + 10
					break
				}
			}
			testutil.Truncate(t, fsys, slvPath(dir, seg), at)
			return []slvDamage{{seg, at, math.MaxInt64}}
		}},
		{"truncate mid-segment in padding", func(t *testing.T, fsys vfs.FS, dir string, l *slvLog) []slvDamage {
			seg := mid(l)
			at := batchAt(l, seg, 12) - 3
			testutil.Truncate(t, fsys, slvPath(dir, seg), at)
			return []slvDamage{{seg, at, math.MaxInt64}}
		}},
		{"truncate mid-segment at a batch boundary", func(t *testing.T, fsys vfs.FS, dir string, l *slvLog) []slvDamage {
			seg := mid(l)
			at := batchAt(l, seg, 10)
			testutil.Truncate(t, fsys, slvPath(dir, seg), at)
			return []slvDamage{{seg, at, math.MaxInt64}}
		}},
		{"delete a middle segment", func(t *testing.T, fsys vfs.FS, dir string, l *slvLog) []slvDamage {
			seg := mid(l)
			if err := fsys.Remove(slvPath(dir, seg)); err != nil {
				t.Fatal(err)
			}
			return []slvDamage{{seg, 0, math.MaxInt64}}
		}},
		{"delete the first segment", func(t *testing.T, fsys vfs.FS, dir string, l *slvLog) []slvDamage {
			if err := fsys.Remove(slvPath(dir, 1)); err != nil {
				t.Fatal(err)
			}
			return []slvDamage{{1, 0, math.MaxInt64}}
		}},
		{"flip segment header fields", func(t *testing.T, fsys vfs.FS, dir string, l *slvLog) []slvDamage {
			seg := mid(l)
			for _, o := range []int64{17, 26, 35} { // number, first sequence, salt
				testutil.XorByte(t, fsys, slvPath(dir, seg), o, 0x01)
			}
			return []slvDamage{{seg, 0, segHeaderSize}}
		}},
		{"zero segment header", func(t *testing.T, fsys vfs.FS, dir string, l *slvLog) []slvDamage {
			seg := mid(l)
			testutil.WriteAt(t, fsys, slvPath(dir, seg), make([]byte, segHeaderSize), 0)
			return []slvDamage{{seg, 0, segHeaderSize}}
		}},
		{"header and first batch header", func(t *testing.T, fsys vfs.FS, dir string, l *slvLog) []slvDamage {
			seg := mid(l)
			testutil.WriteAt(t, fsys, slvPath(dir, seg), bytes.Repeat([]byte{0xee}, segHeaderSize+40), 0)
			return []slvDamage{{seg, 0, segHeaderSize + 40}}
		}},
		{"zero a whole segment", func(t *testing.T, fsys vfs.FS, dir string, l *slvLog) []slvDamage {
			seg := mid(l)
			testutil.WriteAt(t, fsys, slvPath(dir, seg), make([]byte, l.sizes[seg]), 0)
			return []slvDamage{{seg, 0, math.MaxInt64}}
		}},
		{"damage a seal", func(t *testing.T, fsys vfs.FS, dir string, l *slvLog) []slvDamage {
			seg := l.segs[1]
			at := l.sizes[seg] - SectorSize + batchHeaderSize + 5
			testutil.XorByte(t, fsys, slvPath(dir, seg), at, 0x80)
			return []slvDamage{{seg, at, at + 1}}
		}},
		{"damage padding only", func(t *testing.T, fsys vfs.FS, dir string, l *slvLog) []slvDamage {
			seg := l.segs[1]
			at := l.sizes[seg] - 3 // the seal batch's padding
			testutil.XorByte(t, fsys, slvPath(dir, seg), at, 0x80)
			return []slvDamage{{seg, at, at + 1}}
		}},
		{"several at once", func(t *testing.T, fsys vfs.FS, dir string, l *slvLog) []slvDamage {
			a, b, c := l.segs[0], mid(l), l.segs[len(l.segs)-2]
			testutil.XorByte(t, fsys, slvPath(dir, a), 2000, 0xff)
			testutil.WriteAt(t, fsys, slvPath(dir, b), bytes.Repeat([]byte{0x33}, 1500), 5000)
			if err := fsys.Remove(slvPath(dir, c)); err != nil {
				t.Fatal(err)
			}
			return []slvDamage{{a, 2000, 2001}, {b, 5000, 6500}, {c, 0, math.MaxInt64}}
		}},
		{"damage in the last segment", func(t *testing.T, fsys vfs.FS, dir string, l *slvLog) []slvDamage {
			// Zero up to 700 bytes from inside a batch in the middle of the
			// last segment, sparing its seal, so that something follows.
			seg := l.segs[len(l.segs)-1]
			seal := l.sizes[seg] - SectorSize // the seal batch is the last sector
			at := batchAt(l, seg, 0)
			for k := 1; ; k++ {
				b := batchAt(l, seg, k)
				if b >= seal || b > l.sizes[seg]/2 {
					break
				}
				at = b
			}
			at += 60
			n := min(700, seal-at)
			testutil.WriteAt(t, fsys, slvPath(dir, seg), make([]byte, n), at)
			return []slvDamage{{seg, at, at + n}}
		}},
	}
}

// TestSalvageDamage damages copies of a multi-segment log in many ways, on an
// in-memory and on the real filesystem. Aggressive mode must return every
// record whose batch was not touched (in fact every record whose own frame
// was not touched), account for every lost record with a gap, and nothing
// else; safe mode must return exactly the records before the first damage.
func TestSalvageDamage(t *testing.T) {
	for _, fx := range []*slvFixture{slvCrashFixture(t), slvOSFixture(t)} {
		l := fx.log
		if len(l.segs) < 6 {
			t.Fatalf("%s: want many segments, got %d", fx.name, len(l.segs))
		}
		multi := 0
		for i := 1; i < len(l.recs); i++ {
			if l.recs[i].BatchOff == l.recs[i-1].BatchOff && l.recs[i].Segment == l.recs[i-1].Segment {
				multi++
			}
		}
		t.Logf("%s: %d records in %d segments; %d records share a batch with the previous one", fx.name, len(l.recs), len(l.segs), multi)
		for _, c := range slvCases() {
			t.Run(fx.name+"/"+c.name, func(t *testing.T) {
				fsys, dir := fx.clone(t)
				dmg := c.damage(t, fsys, dir, l)

				got, offs, rep := slvRunAt(t, fsys, dir, l, SalvageAggressive)
				var untouched, untouchedFrames, hit, hitFrames int
				for i := range l.recs {
					r := &l.recs[i]
					if !slvTouched(r, dmg, false) {
						untouched++
						if got[r.Seq] {
							hit++
						}
						// An intact batch is found by resynchronizing on it,
						// not record by record.
						if got[r.Seq] && offs[r.Seq] != r.BatchOff {
							t.Fatalf("record %d of an intact batch at offset %d was recovered at %d", r.Seq, r.BatchOff, offs[r.Seq])
						}
					}
					if !slvTouched(r, dmg, true) {
						untouchedFrames++
						if got[r.Seq] {
							hitFrames++
						}
					}
				}
				lost, complete := rep.Lost()
				t.Logf("aggressive: salvaged %d of %d untouched batches' records (%.1f%%), %d of %d untouched frames (%.1f%%); %d records in all, %d recovered from damaged batches; %d gaps, %d records lost (complete=%v)%s",
					hit, untouched, 100*float64(hit)/float64(untouched), hitFrames, untouchedFrames, 100*float64(hitFrames)/float64(untouchedFrames),
					len(got), rep.Recovered, len(rep.Gaps), lost, complete, slvGaps(rep))
				if hit != untouched || hitFrames != untouchedFrames {
					t.Fatalf("aggressive salvage missed untouched records")
				}
				if rep.Stopped || rep.TornTail != nil || len(rep.Gaps) == 0 {
					t.Fatalf("report: stopped=%v torn=%v gaps=%d", rep.Stopped, rep.TornTail, len(rep.Gaps))
				}
				slvCovered(t, l, got, rep)
				if want := uint64(len(l.recs) - len(got)); !complete || lost != want {
					t.Fatalf("gaps account for %d lost records (complete=%v), %d were lost:%s", lost, complete, want, slvGaps(rep))
				}

				got, rep = slvRun(t, fsys, dir, l, SalvageSafe)
				want := 0
				for i := range l.recs {
					r := &l.recs[i]
					if slvBefore(r, dmg) {
						want++
						if !got[r.Seq] {
							t.Fatalf("safe mode missed record %d before the damage", r.Seq)
						}
					}
				}
				if len(got) != want {
					t.Fatalf("safe mode returned %d records, the prefix before the damage holds %d", len(got), want)
				}
				if !rep.Stopped || len(rep.Gaps) != 1 || rep.Gaps[0].FirstSeq != uint64(want)+1 || !rep.Gaps[0].OpenEnded() {
					t.Fatalf("safe report: stopped=%v%s", rep.Stopped, slvGaps(rep))
				}
				t.Logf("safe: %d records, the prefix before the damage; stopped at segment %d offset %d: %s", len(got), rep.Gaps[0].Segment, rep.Gaps[0].Offset, rep.Gaps[0].Reason)
			})
		}
	}
}

// TestSalvageIntact: on an undamaged log both modes return exactly what
// Reader.Records returns, with no gaps, and report progress up to every
// byte of every segment.
func TestSalvageIntact(t *testing.T) {
	fx := slvCrashFixture(t)
	fsys, dir := fx.clone(t)
	var want []Record
	for r, err := range NewReader(fsys, dir).Records(context.Background(), 0) {
		if err != nil {
			t.Fatal(err)
		}
		r.Payload = bytes.Clone(r.Payload)
		want = append(want, r)
	}
	var total int64
	for _, n := range fx.log.sizes {
		total += n
	}
	for _, mode := range []SalvageMode{SalvageSafe, SalvageAggressive} {
		var got []Record
		var progress []int64
		rep, err := Salvage(context.Background(), fsys, dir, mode, func(r Record) error {
			r.Payload = bytes.Clone(r.Payload)
			got = append(got, r)
			return nil
		}, func(n int64) { progress = append(progress, n) })
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%v: %d records, reader has %d", mode, len(got), len(want))
		}
		for i := range got {
			if got[i].Seq != want[i].Seq || got[i].Type != want[i].Type || got[i].Time != want[i].Time || !bytes.Equal(got[i].Payload, want[i].Payload) ||
				got[i].Segment != want[i].Segment || got[i].Offset != want[i].Offset {
				t.Fatalf("%v: record %d differs: %+v vs %+v", mode, i, got[i], want[i])
			}
		}
		if len(rep.Gaps) != 0 || rep.Stopped || rep.TornTail != nil || rep.Recovered != 0 {
			t.Fatalf("%v: intact log reported %+v%s", mode, rep, slvGaps(rep))
		}
		if rep.Segments != len(fx.log.segs) || rep.Records != uint64(len(want)) || rep.FirstSeq != 1 || rep.LastSeq != want[len(want)-1].Seq || rep.BytesScanned != total {
			t.Fatalf("%v: report %+v (want %d segments, %d bytes)", mode, rep, len(fx.log.segs), total)
		}
		if !sort.SliceIsSorted(progress, func(i, j int) bool { return progress[i] < progress[j] }) || len(progress) == 0 || progress[len(progress)-1] != total {
			t.Fatalf("%v: progress %v, total %d", mode, progress, total)
		}
	}
}

// TestSalvageTornTail: the torn tail of a crashed log is reported as such,
// not as a gap, in both modes, and every acknowledged record is returned.
func TestSalvageTornTail(t *testing.T) {
	base := vfs.NewCrashFS()
	w, err := Open(base, testDir, Options{SegmentSize: 8192})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 60; i++ {
		if _, err := w.Append(context.Background(), RecordEvent, int64(i), slvPayload(i)); err != nil {
			t.Fatal(err)
		}
	}
	crashed := base.CrashClone(vfs.CrashOptions{}) // everything synced survives; no seal
	w.Close()
	l := slvLayoutOf(t, crashed, testDir)
	last := l.segs[len(l.segs)-1]
	size := l.sizes[last]
	for _, tail := range []struct {
		name  string
		write func(c *vfs.CrashFS)
	}{
		{"zero sector", func(c *vfs.CrashFS) { testutil.WriteAt(t, c, slvPath(testDir, last), make([]byte, SectorSize), size) }},
		{"batch past the end", func(c *vfs.CrashFS) {
			hdr := readSegHeader(t, c, slvPath(testDir, last))
			b := make([]byte, SectorSize)
			h := batchHeader{Count: 3, Salt: hdr.Salt, Offset: uint64(size), SyncedOff: uint64(size), FirstSeq: l.recs[len(l.recs)-1].Seq + 1, BodyLen: 4000}
			h.put(b)
			for i := batchHeaderSize; i < len(b); i++ {
				b[i] = 0xa5
			}
			testutil.WriteAt(t, c, slvPath(testDir, last), b, size)
		}},
	} {
		c := crashed.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
		tail.write(c)
		for _, mode := range []SalvageMode{SalvageSafe, SalvageAggressive} {
			got, rep := slvRun(t, c, testDir, l, mode)
			if len(got) != len(l.recs) || len(rep.Gaps) != 0 || rep.Stopped {
				t.Fatalf("%s, %v: %d of %d records, stopped=%v%s", tail.name, mode, len(got), len(l.recs), rep.Stopped, slvGaps(rep))
			}
			if rep.TornTail == nil || rep.TornTail.Segment != last || rep.TornTail.Offset != size || rep.TornTail.Bytes != SectorSize {
				t.Fatalf("%s, %v: torn tail %+v, want segment %d offset %d", tail.name, mode, rep.TornTail, last, size)
			}
		}
	}
}

// TestSalvageForeignSegment: a segment from another log, renamed and
// renumbered into the middle of this one, verifies record by record but does
// not chain: it is skipped as a gap, and the sequence numbers it replaced are
// reported missing.
func TestSalvageForeignSegment(t *testing.T) {
	fx := slvCrashFixture(t)
	l := fx.log
	fsys, dir := fx.clone(t)
	other := vfs.NewCrashFS()
	slvWrite(t, other, testDir, 700, slvSegSize, 5_000_000) // another log: its seals differ
	seg := l.segs[3]
	data := testutil.ReadFile(t, other, slvPath(testDir, seg))
	hdr, err := decodeSegHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	var first, lastSeq uint64
	for _, r := range l.recs {
		if r.Segment == seg {
			if first == 0 {
				first = r.Seq
			}
			lastSeq = r.Seq
		}
	}
	hdr.FirstSeq = first // the forgery even claims the right sequence numbers
	copy(data, hdr.encode())
	if err := fsys.Remove(slvPath(dir, seg)); err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Create(slvPath(dir, seg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	f.Close()

	got, rep := slvRun(t, fsys, dir, l, SalvageAggressive)
	for _, r := range l.recs {
		if got[r.Seq] == (r.Segment == seg) {
			t.Fatalf("record %d of segment %d: salvaged=%v", r.Seq, r.Segment, got[r.Seq])
		}
	}
	if len(rep.Gaps) != 1 || rep.Gaps[0].Segment != seg || rep.Gaps[0].FirstSeq != first || rep.Gaps[0].LastSeq != lastSeq || !rep.Gaps[0].Exact {
		t.Fatalf("gaps (want segment %d seqs %d-%d):%s", seg, first, lastSeq, slvGaps(rep))
	}
	_, rep = slvRun(t, fsys, dir, l, SalvageSafe)
	if !rep.Stopped || rep.LastSeq != first-1 {
		t.Fatalf("safe mode: stopped=%v last %d%s", rep.Stopped, rep.LastSeq, slvGaps(rep))
	}
}

// TestSalvageErrors: a visit error, a cancelled context, a directory that is
// not a log and an unknown mode are reported as errors, checkable with
// errors.Is.
func TestSalvageErrors(t *testing.T) {
	fx := slvCrashFixture(t)
	fsys, dir := fx.clone(t)
	boom := errors.New("boom")
	n := 0
	rep, err := Salvage(context.Background(), fsys, dir, SalvageAggressive, func(Record) error {
		if n++; n == 10 {
			return boom
		}
		return nil
	}, nil)
	if !errors.Is(err, boom) || rep == nil || rep.Records != 10 {
		t.Fatalf("visit error: %v, report %+v", err, rep)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Salvage(ctx, fsys, dir, SalvageAggressive, nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if _, err := Salvage(context.Background(), fsys, "/nowhere", SalvageSafe, nil, nil); !errors.Is(err, ErrNotWAL) {
		t.Fatalf("missing directory: %v", err)
	}
	fsys.MkdirAll("/empty", 0o755)
	if _, err := Salvage(context.Background(), fsys, "/empty", SalvageSafe, nil, nil); !errors.Is(err, ErrNotWAL) {
		t.Fatalf("empty directory: %v", err)
	}
	if _, err := Salvage(context.Background(), fsys, dir, SalvageMode(7), nil, nil); err == nil {
		t.Fatal("unknown mode accepted")
	}
	for _, s := range []string{"safe", "Aggressive"} {
		m, err := ParseSalvageMode(s)
		if err != nil || !bytes.EqualFold([]byte(m.String()), []byte(s)) {
			t.Fatalf("ParseSalvageMode(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := ParseSalvageMode("reckless"); err == nil {
		t.Fatal("ParseSalvageMode accepted nonsense")
	}
	// A segment of a newer format version is not guessed at.
	hdr := readSegHeader(t, fsys, slvPath(dir, 2))
	hdr.Version = 9
	testutil.WriteAt(t, fsys, slvPath(dir, 2), hdr.encode(), 0)
	if _, err := Salvage(context.Background(), fsys, dir, SalvageAggressive, nil, nil); !errors.Is(err, ErrUnknownVersion) {
		t.Fatalf("newer version: %v", err)
	}
}

// TestSalvageRandomDamage applies seeded random damage (byte flips, zeroed
// and overwritten ranges, truncations, deletions, sectors copied elsewhere)
// and requires Salvage never to panic, never to return a record that was not
// written (or under another sequence number), to keep sequence numbers
// increasing, to return a contiguous prefix in safe mode, and to account
// for every lost record before the last one salvaged with a gap.
func TestSalvageRandomDamage(t *testing.T) {
	fx := slvCrashFixture(t)
	l := fx.log
	for seed := uint64(1); seed <= 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 0x5a1))
		fsys, dir := fx.clone(t)
		ops := 1 + rng.IntN(5)
		for k := 0; k < ops; k++ {
			seg := l.segs[rng.IntN(len(l.segs))]
			name := slvPath(dir, seg)
			if _, err := fsys.Stat(name); err != nil {
				continue
			}
			size := int64(len(testutil.ReadFile(t, fsys, name)))
			if size == 0 {
				continue
			}
			at := rng.Int64N(size)
			switch op := rng.IntN(10); {
			case op < 4:
				for j := 0; j < 1+rng.IntN(8); j++ {
					testutil.XorByte(t, fsys, name, min(at+rng.Int64N(64), size-1), byte(1+rng.IntN(255)))
				}
			case op < 6:
				testutil.WriteAt(t, fsys, name, make([]byte, 1+rng.IntN(8192)), at)
			case op == 6:
				g := make([]byte, 1+rng.IntN(2048))
				for i := range g {
					g[i] = byte(rng.Uint32())
				}
				testutil.WriteAt(t, fsys, name, g, at)
			case op == 7:
				testutil.Truncate(t, fsys, name, at)
			case op == 8:
				fsys.Remove(name)
			default: // a sector copied over another, from this or another segment
				srcName := slvPath(dir, l.segs[rng.IntN(len(l.segs))])
				if _, err := fsys.Stat(srcName); err != nil {
					continue
				}
				if src := testutil.ReadFile(t, fsys, srcName); len(src) >= SectorSize {
					from := rng.IntN(len(src)/SectorSize) * SectorSize
					testutil.WriteAt(t, fsys, name, src[from:from+SectorSize], at&^(SectorSize-1))
				}
			}
		}
		for _, mode := range []SalvageMode{SalvageSafe, SalvageAggressive} {
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("seed %d, %v: panic: %v", seed, mode, p)
					}
				}()
				got, rep := slvRun(t, fsys, dir, l, mode)
				if mode == SalvageSafe {
					for s := uint64(1); s <= uint64(len(got)); s++ {
						if !got[s] {
							t.Fatalf("seed %d: safe mode did not return a contiguous prefix", seed)
						}
					}
					return
				}
				slvCovered(t, l, got, rep)
			}()
		}
	}
}
