package audit

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/benchref"
	"github.com/willibrandon/mtlog-audit/internal/testutil"
	"github.com/willibrandon/mtlog-audit/replica"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
	"github.com/willibrandon/mtlog/core"
)

var redundancyIterations = flag.Int("redundancy.iterations", 250, "randomized power-loss crash points for TestRedundancyPowerLoss")

// redEvent is a small deterministic event; its encoding is its payload.
func redEvent(i int) *Event {
	return &Event{
		Timestamp:       time.Unix(1_700_000_000+int64(i), 0).UTC(),
		Level:           LevelInformation,
		MessageTemplate: "Event {N} for {User}",
		Message:         fmt.Sprintf("Event %d for u-%d", i, i%7),
		Properties:      map[string]any{"N": int64(i), "User": fmt.Sprintf("u-%d", i%7), "Pad": strings.Repeat("x", i%200)},
	}
}

func encoded(t testing.TB, ev *Event) []byte {
	t.Helper()
	b, err := event.AppendEncode(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// repairs collects what New hands the failure handler.
type repairs struct {
	mu   sync.Mutex
	errs []error
}

func (r *repairs) handler(ev *core.LogEvent, err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

func (r *repairs) take() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.errs
	r.errs = nil
	return e
}

// writeLog writes n events through a Sink with the given options and
// returns each acknowledged event's payload by sequence number.
func writeLog(t *testing.T, n int, opts ...Option) map[uint64][]byte {
	t.Helper()
	s, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	acked := map[uint64][]byte{}
	for i := range n {
		ev := redEvent(i)
		r, err := s.Write(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		acked[r.Seq] = encoded(t, ev)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return acked
}

// records reads a copy's event payloads with wal.Check.
func records(t *testing.T, fsys vfs.FS, dir string) map[uint64][]byte {
	t.Helper()
	got := map[uint64][]byte{}
	if _, err := wal.Check(context.Background(), fsys, dir, func(r wal.Record) error {
		if r.Type == wal.RecordEvent {
			got[r.Seq] = bytes.Clone(r.Payload)
		}
		return nil
	}); err != nil {
		t.Fatalf("check %s: %v", dir, err)
	}
	return got
}

func wantAll(t *testing.T, fsys vfs.FS, dir string, acked map[uint64][]byte) {
	t.Helper()
	got := records(t, fsys, dir)
	for seq, p := range acked {
		if !bytes.Equal(got[seq], p) {
			t.Fatalf("%s: acknowledged event %d lost or altered (have %d events)", dir, seq, len(got))
		}
	}
}

// files returns a copy's managed files (name → contents).
func files(t *testing.T, fsys vfs.FS, dir string) map[string]string {
	t.Helper()
	names, err := fsys.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, name := range names {
		if replica.ManagedName(name) {
			out[name] = string(testutil.ReadFile(t, fsys, filepath.Join(dir, name)))
		}
	}
	return out
}

func sameCopies(t *testing.T, fsys vfs.FS, dirs ...string) {
	t.Helper()
	want := files(t, fsys, dirs[0])
	for _, d := range dirs[1:] {
		got := files(t, fsys, d)
		if !maps.Equal(got, want) {
			t.Fatalf("copies %s and %s differ: %v vs %v", dirs[0], d, slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got)))
		}
	}
}

func verifies(t *testing.T, fsys vfs.FS, dir string, opts ...VerifyOption) {
	t.Helper()
	if rep, err := VerifyFS(context.Background(), fsys, dir, opts...); err != nil || !rep.OK {
		t.Fatalf("verify %s: %v", dir, err)
	}
}

// batches returns the offsets of the batches of segment seg in dir.
func batches(t *testing.T, fsys vfs.FS, dir string, seg uint64) []int64 {
	t.Helper()
	var offs []int64
	wal.Check(context.Background(), fsys, dir, func(r wal.Record) error {
		if r.Segment == seg && (len(offs) == 0 || offs[len(offs)-1] != r.Offset) {
			offs = append(offs, r.Offset)
		}
		return nil
	})
	if len(offs) < 3 {
		t.Fatalf("segment %d has %d batches; the test needs more", seg, len(offs))
	}
	return offs
}

func segPath(dir string, n uint64) string { return filepath.Join(dir, wal.SegmentName(n)) }

// openRedundant opens p mirrored to m on fsys and checks the outcome.
func openRedundant(t *testing.T, fsys vfs.FS, rec *repairs, extra ...Option) *Sink {
	t.Helper()
	opts := append([]Option{WithWAL("/p", WithSegmentSize(8192)), WithRedundancy("/m"), WithFileSystem(fsys), WithFailureHandler(rec.handler)}, extra...)
	s, err := New(opts...)
	if err != nil {
		t.Fatalf("New with redundancy: %v", err)
	}
	return s
}

// wantRepair checks that exactly one repair was reported, through the
// handler and the Sink, and that it changed file name in copy dir.
func wantRepair(t *testing.T, s *Sink, rec *repairs, dir, name string, op RepairOp) *RepairReport {
	t.Helper()
	errs := rec.take()
	if len(errs) != 1 || !errors.Is(errs[0], ErrRepaired) {
		t.Fatalf("failure handler got %v, want one error matching ErrRepaired", errs)
	}
	var re *RepairError
	if !errors.As(errs[0], &re) || re.Report != s.RepairReport() || !s.RepairReport().Repaired() {
		t.Fatalf("the handler's error %v does not carry the Sink's report %v", errs[0], s.RepairReport())
	}
	for _, a := range re.Report.Actions {
		if a.Dir == dir && a.File == name && a.Op == op {
			return re.Report
		}
	}
	t.Fatalf("the report does not say %s %s/%s:\n%s", op, dir, name, re.Report)
	return nil
}

// TestRedundancyRepairsDamage damages one copy of a closed, signed log in
// many ways; New must repair it from the other copy, report it, and leave
// two identical copies that verify and hold every acknowledged event.
func TestRedundancyRepairsDamage(t *testing.T) {
	sk, vk, err := integrity.GenerateKey("audit.test/redundancy")
	if err != nil {
		t.Fatal(err)
	}
	type damage struct {
		name string
		do   func(t *testing.T, fsys vfs.FS, dir string) (file string, op RepairOp)
	}
	damages := []damage{
		{"flip in a sealed segment", func(t *testing.T, fsys vfs.FS, dir string) (string, RepairOp) {
			testutil.XorByte(t, fsys, segPath(dir, 2), batches(t, fsys, dir, 2)[1]+100, 0x5a)
			return wal.SegmentName(2), RepairReplaced
		}},
		{"flip in the last segment", func(t *testing.T, fsys vfs.FS, dir string) (string, RepairOp) {
			st, _ := fsys.List(dir)
			last := lastSegOf(st)
			testutil.XorByte(t, fsys, segPath(dir, last), 512+70, 0x5a)
			return wal.SegmentName(last), RepairReplaced
		}},
		{"flip in a segment header", func(t *testing.T, fsys vfs.FS, dir string) (string, RepairOp) {
			testutil.XorByte(t, fsys, segPath(dir, 1), 20, 0x5a)
			return wal.SegmentName(1), RepairReplaced
		}},
		{"deleted middle segment", func(t *testing.T, fsys vfs.FS, dir string) (string, RepairOp) {
			if err := fsys.Remove(segPath(dir, 2)); err != nil {
				t.Fatal(err)
			}
			return wal.SegmentName(2), RepairAdded
		}},
		{"deleted last segment", func(t *testing.T, fsys vfs.FS, dir string) (string, RepairOp) {
			st, _ := fsys.List(dir)
			last := lastSegOf(st)
			if err := fsys.Remove(segPath(dir, last)); err != nil {
				t.Fatal(err)
			}
			return wal.SegmentName(last), RepairAdded
		}},
		{"deleted first segment", func(t *testing.T, fsys vfs.FS, dir string) (string, RepairOp) {
			if err := fsys.Remove(segPath(dir, 1)); err != nil {
				t.Fatal(err)
			}
			return wal.SegmentName(1), RepairAdded
		}},
		{"flip in the checkpoints", func(t *testing.T, fsys vfs.FS, dir string) (string, RepairOp) {
			testutil.XorByte(t, fsys, filepath.Join(dir, integrity.CheckpointsFile), 30, 0x5a)
			return integrity.CheckpointsFile, RepairReplaced
		}},
		{"flip in the last checkpoint", func(t *testing.T, fsys vfs.FS, dir string) (string, RepairOp) {
			path := filepath.Join(dir, integrity.CheckpointsFile)
			f, _ := fsys.Open(path)
			size, _ := f.Size()
			f.Close()
			testutil.XorByte(t, fsys, path, size-5, 0x5a) // looks like a checkpoint torn by a crash
			return integrity.CheckpointsFile, RepairReplaced
		}},
		{"flip in the tree nodes", func(t *testing.T, fsys vfs.FS, dir string) (string, RepairOp) {
			testutil.XorByte(t, fsys, filepath.Join(dir, integrity.NodesFile), 32*5+3, 0x5a)
			return integrity.NodesFile, RepairReplaced
		}},
		{"truncated segment", func(t *testing.T, fsys vfs.FS, dir string) (string, RepairOp) {
			f, err := fsys.OpenReadWrite(segPath(dir, 2))
			if err != nil {
				t.Fatal(err)
			}
			f.Truncate(2000)
			f.Close()
			return wal.SegmentName(2), RepairReplaced
		}},
	}
	for _, victim := range []string{"/p", "/m"} {
		for _, d := range damages {
			t.Run(strings.TrimPrefix(victim, "/")+"/"+d.name, func(t *testing.T) {
				fsys := vfs.NewCrashFS()
				rec := &repairs{}
				opts := []Option{WithWAL("/p", WithSegmentSize(8192)), WithRedundancy("/m"), WithFileSystem(fsys), WithSigningKey(sk), WithFailureHandler(rec.handler)}
				acked := writeLog(t, 120, opts...)
				if errs := rec.take(); len(errs) != 0 {
					t.Fatalf("a new log reported %v", errs)
				}
				good := "/m"
				if victim == "/m" {
					good = "/p"
				}
				before := files(t, fsys, good)
				file, op := d.do(t, fsys, victim)
				s, err := New(opts...)
				if err != nil {
					t.Fatalf("New did not repair: %v", err)
				}
				wantRepair(t, s, rec, victim, file, op)
				for _, a := range s.RepairReport().Actions {
					if a.Dir == good {
						t.Errorf("the good copy was changed: %s", a)
					}
				}
				n := 0
				for ev, err := range s.Replay(context.Background(), time.Time{}, time.Time{}) {
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(encoded(t, ev), encoded(t, redEvent(n))) {
						t.Fatalf("event %d differs after the repair", n)
					}
					n++
				}
				if n != len(acked) {
					t.Fatalf("replayed %d events, want %d", n, len(acked))
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				_ = before
				sameCopies(t, fsys, "/p", "/m")
				for _, dir := range []string{"/p", "/m"} {
					verifies(t, fsys, dir, WithTrustedKeys(vk))
					wantAll(t, fsys, dir, acked)
				}
				// Opening again finds identical copies: nothing to report.
				s, err = New(opts...)
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				if errs := rec.take(); len(errs) != 0 || s.RepairReport() != nil {
					t.Fatalf("reopening identical copies reported %v", errs)
				}
			})
		}
	}
}

func lastSegOf(names []string) uint64 {
	var last uint64
	for _, n := range names {
		if k, ok := wal.ParseSegmentName(n); ok && k > last {
			last = k
		}
	}
	return last
}

// TestRedundancyBothDamaged damages both copies. Different segments are
// repaired file by file; different batches of one segment are pieced
// together; the same batch in both cannot be repaired, and New fails with
// the primary's ErrCorrupt, naming segment and offset, changing nothing.
func TestRedundancyBothDamaged(t *testing.T) {
	setup := func(t *testing.T) (*vfs.CrashFS, map[uint64][]byte, []Option, *repairs) {
		fsys := vfs.NewCrashFS()
		rec := &repairs{}
		opts := []Option{WithWAL("/p", WithSegmentSize(8192)), WithRedundancy("/m"), WithFileSystem(fsys), WithFailureHandler(rec.handler)}
		return fsys, writeLog(t, 100, opts...), opts, rec
	}
	check := func(t *testing.T, fsys vfs.FS, opts []Option, acked map[uint64][]byte) *RepairReport {
		s, err := New(opts...)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		rep := s.RepairReport()
		s.Close()
		sameCopies(t, fsys, "/p", "/m")
		for _, d := range []string{"/p", "/m"} {
			verifies(t, fsys, d)
			wantAll(t, fsys, d, acked)
		}
		return rep
	}
	t.Run("different segments", func(t *testing.T) {
		fsys, acked, opts, _ := setup(t)
		testutil.XorByte(t, fsys, segPath("/p", 2), batches(t, fsys, "/p", 2)[2]+60, 0x5a)
		testutil.XorByte(t, fsys, segPath("/m", 3), batches(t, fsys, "/m", 3)[1]+60, 0x5a)
		rep := check(t, fsys, opts, acked)
		want := map[string]string{"/p": wal.SegmentName(2), "/m": wal.SegmentName(3)}
		for _, a := range rep.Actions {
			if want[a.Dir] != a.File || a.Op != RepairReplaced {
				t.Errorf("unexpected action %s", a)
			}
		}
		if len(rep.Actions) != 2 {
			t.Errorf("report:\n%s", rep)
		}
	})
	t.Run("different batches of one segment", func(t *testing.T) {
		fsys, acked, opts, _ := setup(t)
		offs := batches(t, fsys, "/p", 2)
		testutil.XorByte(t, fsys, segPath("/p", 2), offs[1]+60, 0x5a)
		testutil.XorByte(t, fsys, segPath("/m", 2), offs[len(offs)-2]+60, 0x5a)
		rep := check(t, fsys, opts, acked)
		if len(rep.Actions) != 2 || !strings.Contains(rep.Actions[0].From, " + ") {
			t.Errorf("want both copies of segment 2 replaced by a spliced version:\n%s", rep)
		}
	})
	t.Run("same batch", func(t *testing.T) {
		fsys, _, opts, rec := setup(t)
		off := batches(t, fsys, "/p", 2)[1]
		testutil.XorByte(t, fsys, segPath("/p", 2), off+60, 0x5a)
		testutil.XorByte(t, fsys, segPath("/m", 2), off+61, 0x5a)
		before := [2]map[string]string{files(t, fsys, "/p"), files(t, fsys, "/m")}
		_, err := New(opts...)
		var ce *wal.CorruptError
		if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.Segment != 2 || ce.Offset != off {
			t.Fatalf("New: err = %v, want ErrCorrupt naming segment 2 at offset %d", err, off)
		}
		if !maps.Equal(before[0], files(t, fsys, "/p")) || !maps.Equal(before[1], files(t, fsys, "/m")) {
			t.Error("a failed repair changed a copy")
		}
		if errs := rec.take(); len(errs) != 0 {
			t.Errorf("handler got %v", errs)
		}
	})
}

// TestRedundancyDiverged refuses copies that hold different histories.
func TestRedundancyDiverged(t *testing.T) {
	fsys := vfs.NewCrashFS()
	writeLog(t, 20, WithWAL("/p"), WithFileSystem(fsys))
	s, err := New(WithWAL("/m"), WithFileSystem(fsys))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if _, err := s.Write(context.Background(), redEvent(1000+i)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	before := files(t, fsys, "/p")
	_, err = New(WithWAL("/p"), WithRedundancy("/m"), WithFileSystem(fsys))
	if !errors.Is(err, ErrDiverged) {
		t.Fatalf("New over diverged copies: err = %v, want ErrDiverged", err)
	}
	if !maps.Equal(before, files(t, fsys, "/p")) {
		t.Error("refused repair changed the primary")
	}
}

// TestRedundancyMissingAndNewMirror: a new log creates every directory; a
// missing mirror beside a log with records fails New (fs.ErrNotExist); an
// empty one is filled from the log and reported.
func TestRedundancyMissingAndNewMirror(t *testing.T) {
	fsys := vfs.NewCrashFS()
	rec := &repairs{}
	acked := writeLog(t, 30, WithWAL("/a/p"), WithRedundancy("/b/m"), WithFileSystem(fsys), WithFailureHandler(rec.handler))
	if errs := rec.take(); len(errs) != 0 {
		t.Fatalf("a new log reported %v", errs)
	}
	sameCopies(t, fsys, "/a/p", "/b/m")
	opts := []Option{WithWAL("/a/p"), WithRedundancy("/b/m", "/c/m2"), WithFileSystem(fsys), WithFailureHandler(rec.handler)}
	if _, err := New(opts...); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "/c/m2") {
		t.Fatalf("New with a missing mirror directory: err = %v, want fs.ErrNotExist naming it", err)
	}
	if err := fsys.MkdirAll("/c/m2", 0o750); err != nil {
		t.Fatal(err)
	}
	s, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	rep := wantRepair(t, s, rec, "/c/m2", wal.SegmentName(1), RepairAdded)
	if !rep.Copies[2].Empty || !strings.Contains(rep.Actions[0].Reason, "empty") {
		t.Errorf("report:\n%s", rep)
	}
	s.Close()
	sameCopies(t, fsys, "/a/p", "/b/m", "/c/m2")
	wantAll(t, fsys, "/c/m2", acked)
	if _, err := New(WithWAL("/a/p"), WithRedundancy("/a/p/m"), WithFileSystem(fsys)); err == nil {
		t.Error("a mirror inside the log directory was accepted")
	}
	if _, err := New(WithWAL("/a/p"), WithRedundancy(), WithFileSystem(fsys)); err == nil {
		t.Error("WithRedundancy() without a directory was accepted")
	}
}

// TestRedundancyTornTailIsNotCorruption crashes between the write of a batch
// to the primary and its write to the mirror (and at random points of the
// batch's sectors): the copies then differ by an unacknowledged tail, which
// New must neither call corruption nor lose an acknowledged event over, and
// after which the copies must be identical again.
func TestRedundancyTornTailIsNotCorruption(t *testing.T) {
	for seed := range 40 {
		fsys := vfs.NewCrashFS()
		rec := &repairs{}
		s := openRedundant(t, fsys, rec)
		acked := map[uint64][]byte{}
		for i := range 10 {
			r, err := s.Write(context.Background(), redEvent(i))
			if err != nil {
				t.Fatal(err)
			}
			acked[r.Seq] = encoded(t, redEvent(i))
		}
		var clone *vfs.CrashFS
		var once sync.Once
		fsys.SetHook(func(op vfs.Op) {
			if op.Kind == vfs.OpWrite && strings.HasPrefix(op.Name, "/m/0") {
				once.Do(func() {
					clone = fsys.CrashClone(vfs.CrashOptions{Seed: int64(seed), KeepSectorProb: float64(seed%5) / 4})
				})
			}
		})
		if _, err := s.Write(context.Background(), redEvent(10)); err != nil {
			t.Fatal(err)
		}
		fsys.SetHook(nil)
		s.Close()
		s, err := New(WithWAL("/p", WithSegmentSize(8192)), WithRedundancy("/m"), WithFileSystem(clone), WithFailureHandler(rec.handler))
		if err != nil {
			t.Fatalf("seed %d: New after a crash between the copies' writes: %v", seed, err)
		}
		if rep := s.RepairReport(); rep != nil {
			for _, a := range rep.Actions {
				if a.Dir != "/m" || a.Op != RepairReplaced || !strings.Contains(a.Reason, "out of date") {
					t.Errorf("seed %d: unexpected repair %s", seed, a)
				}
			}
		}
		s.Close()
		sameCopies(t, clone, "/p", "/m")
		wantAll(t, clone, "/p", acked)
		wantAll(t, clone, "/m", acked)
	}
}

// TestRedundancyPowerLoss runs concurrent writers through a Sink with a
// mirror on a CrashFS, crashes at a random operation (keeping random
// subsets of unsynced sectors and directory entries), and checks that (1)
// each copy on its own reopens with every acknowledged event, byte for
// byte, and (2) New with redundancy reopens the crashed state without
// reporting corruption, leaving identical copies holding every acknowledged
// event; half the iterations also crash New itself (during the repair or
// the recovery) at a random operation and open once more.
func TestRedundancyPowerLoss(t *testing.T) {
	n := *redundancyIterations
	if testing.Short() {
		n = min(n, 60)
	}
	sk, _, err := integrity.GenerateKey("audit.test/powerloss")
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		seed := uint64(i) + 1
		var signing []Option
		switch seed % 6 {
		case 3:
			signing = []Option{WithSigningKey(sk), WithCheckpoints(3, time.Millisecond, time.Minute)}
		case 0:
			signing = []Option{WithSigningKey(sk), WithCheckpoints(3, time.Millisecond, time.Minute), WithForwardSecurity(time.Nanosecond)}
		}
		clone, acked := redundantRunUntilCrash(t, seed, signing...)
		if t.Failed() {
			return
		}
		for _, dir := range []string{"/p", "/m"} {
			alone := clone.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
			s, err := New(append([]Option{WithWAL(dir), WithFileSystem(alone)}, signing...)...)
			if err != nil {
				t.Fatalf("seed %d: copy %s alone: %v", seed, dir, err)
			}
			s.Close()
			wantAll(t, alone, dir, acked)
		}
		fsys := clone
		if seed%2 == 0 {
			fsys = crashDuringNew(t, seed, clone, signing...)
		}
		rec := &repairs{}
		s, err := New(append([]Option{WithWAL("/p", WithSegmentSize(4096)), WithRedundancy("/m"), WithFileSystem(fsys), WithFailureHandler(rec.handler)}, signing...)...)
		if err != nil {
			t.Fatalf("seed %d: New with redundancy after the crash: %v", seed, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("seed %d: close: %v", seed, err)
		}
		sameCopies(t, fsys, "/p", "/m")
		wantAll(t, fsys, "/p", acked)
		wantAll(t, fsys, "/m", acked)
		if t.Failed() {
			return
		}
	}
}

func redundantRunUntilCrash(t *testing.T, seed uint64, extra ...Option) (*vfs.CrashFS, map[uint64][]byte) {
	rng := rand.New(rand.NewPCG(seed, 0xa0d17))
	fsys := vfs.NewCrashFS()
	writers, per := 1+rng.IntN(4), 3+rng.IntN(12)
	crashAt := int64(1 + rng.IntN(60+writers*per*5))
	co := vfs.CrashOptions{Seed: int64(seed), SectorSize: []int{512, 4096}[rng.IntN(2)], KeepSectorProb: rng.Float64(), KeepDirOpProb: rng.Float64()}
	var mu sync.Mutex // the hook runs on several goroutines (copies sync concurrently)
	acked := map[uint64][]byte{}
	var clone *vfs.CrashFS
	var snap map[uint64][]byte
	var ops int64
	fsys.SetHook(func(vfs.Op) {
		mu.Lock()
		defer mu.Unlock()
		if ops++; ops == crashAt && clone == nil {
			snap = maps.Clone(acked)
			clone = fsys.CrashClone(co)
		}
	})
	opts := append([]Option{WithWAL("/p", WithSegmentSize(4096)), WithRedundancy("/m"), WithFileSystem(fsys)}, extra...)
	s, err := New(opts...)
	if err != nil {
		t.Fatalf("seed %d: New: %v", seed, err)
	}
	// 1 to 3 rounds with a clean Close and a reopen between them: the
	// reopened last segment is continued after its seal in every copy.
	rounds := 1 + rand.New(rand.NewPCG(seed, 0x7e09e2)).IntN(3)
	for round := range rounds {
		if round > 0 {
			if err := s.Close(); err != nil {
				t.Fatalf("seed %d: close before reopen: %v", seed, err)
			}
			if s, err = New(opts...); err != nil {
				t.Fatalf("seed %d: reopen after a clean close: %v", seed, err)
			}
		}
		var wg sync.WaitGroup
		for g := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := round * per / rounds; i < (round+1)*per/rounds; i++ {
					ev := redEvent(g*1000 + i)
					r, err := s.Write(context.Background(), ev)
					if err != nil {
						t.Errorf("seed %d: write: %v", seed, err)
						return
					}
					p := encoded(t, ev)
					mu.Lock()
					acked[r.Seq] = p
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	if rng.IntN(3) == 0 {
		s.Close()
	}
	mu.Lock()
	if clone == nil {
		snap, clone = maps.Clone(acked), fsys.CrashClone(co)
	}
	mu.Unlock()
	fsys.SetHook(nil)
	s.Close()
	return clone, snap
}

// crashDuringNew opens the crashed state with redundancy and crashes that
// at a random operation of New (repair, recovery, ledger), returning the
// state a second power loss left.
func crashDuringNew(t *testing.T, seed uint64, fsys *vfs.CrashFS, extra ...Option) *vfs.CrashFS {
	opts := func(f vfs.FS) []Option {
		return append([]Option{WithWAL("/p", WithSegmentSize(4096)), WithRedundancy("/m"), WithFileSystem(f), WithFailureHandler(func(*core.LogEvent, error) {})}, extra...)
	}
	rng := rand.New(rand.NewPCG(seed, 0xbad))
	probe := fsys.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
	var mu sync.Mutex
	var ops int64
	probe.SetHook(func(vfs.Op) { mu.Lock(); ops++; mu.Unlock() })
	if s, err := New(opts(probe)...); err == nil {
		crashRelease(s)
	} else {
		t.Fatalf("seed %d: New on a copy of the crashed state: %v", seed, err)
	}
	if ops == 0 {
		return fsys
	}
	at := 1 + rng.Int64N(ops)
	var crashed *vfs.CrashFS
	var n int64
	work := fsys.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
	work.SetHook(func(vfs.Op) {
		mu.Lock()
		defer mu.Unlock()
		if n++; n == at {
			crashed = work.CrashClone(vfs.CrashOptions{Seed: int64(seed), KeepSectorProb: rng.Float64(), KeepDirOpProb: rng.Float64()})
		}
	})
	if s, err := New(opts(work)...); err == nil {
		crashRelease(s)
	}
	if crashed == nil {
		return fsys
	}
	return crashed
}

// crashRelease stops a Sink as a crash would: nothing sealed, nothing signed.
func crashRelease(s *Sink) {
	s.closed.Store(true)
	s.led.StopRunner()
	s.w.Release()
	s.led.CloseFiles()
}

// routeFS sends paths under prefix to alt and everything else to base.
type routeFS struct {
	base, alt vfs.FS
	prefix    string
}

func (r routeFS) pick(name string) vfs.FS {
	if c := filepath.Clean(name); c == r.prefix || strings.HasPrefix(c, r.prefix+string(filepath.Separator)) {
		return r.alt
	}
	return r.base
}
func (r routeFS) Create(n string) (vfs.File, error)        { return r.pick(n).Create(n) }
func (r routeFS) Open(n string) (vfs.File, error)          { return r.pick(n).Open(n) }
func (r routeFS) OpenReadWrite(n string) (vfs.File, error) { return r.pick(n).OpenReadWrite(n) }
func (r routeFS) Remove(n string) error                    { return r.pick(n).Remove(n) }
func (r routeFS) Rename(o, n string) error                 { return r.pick(o).Rename(o, n) }
func (r routeFS) MkdirAll(d string, p fs.FileMode) error   { return r.pick(d).MkdirAll(d, p) }
func (r routeFS) List(d string) ([]string, error)          { return r.pick(d).List(d) }
func (r routeFS) Stat(n string) (fs.FileInfo, error)       { return r.pick(n).Stat(n) }
func (r routeFS) SyncDir(d string) error                   { return r.pick(d).SyncDir(d) }
func (r routeFS) Lock(n, o string) (io.Closer, error)      { return r.pick(n).Lock(n, o) }

// TestRedundancyMirrorFsyncEIOFailsClosed uses the operating system's
// filesystem; an fsync error on the mirror alone must stop every further
// acknowledgement, exactly like one on the primary, and the next New must
// bring the copies back together with every acknowledged event.
func TestRedundancyMirrorFsyncEIOFailsClosed(t *testing.T) {
	root := t.TempDir()
	p, m := filepath.Join(root, "p"), filepath.Join(root, "m")
	fault := vfs.NewFaultFS(vfs.OS())
	fsys := routeFS{base: vfs.OS(), alt: fault, prefix: m}
	rec := &repairs{}
	s, err := New(WithWAL(p), WithRedundancy(m), WithFileSystem(fsys), WithFailureHandler(rec.handler), WithFailOpen())
	if err != nil {
		t.Fatal(err)
	}
	acked := map[uint64][]byte{}
	for i := range 20 {
		r, err := s.Write(context.Background(), redEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		acked[r.Seq] = encoded(t, redEvent(i))
	}
	fault.FailSyncs(syscall.EIO)
	_, err = s.Write(context.Background(), redEvent(20))
	if !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), m) {
		t.Fatalf("write with a failing mirror fsync: err = %v, want ErrFailed and EIO naming the mirror", err)
	}
	fault.FailSyncs(nil)
	for i := range 5 {
		if _, err := s.Write(context.Background(), redEvent(21+i)); !errors.Is(err, ErrFailed) {
			t.Fatalf("write after the mirror's fsync failed: err = %v, want ErrFailed (no more acknowledgements)", err)
		}
	}
	s.EmitEvent(context.Background(), redEvent(99)) // fail-open: reported, not recorded
	s.Close()
	wantAll(t, vfs.OS(), p, acked)
	wantAll(t, vfs.OS(), m, acked)
	rec.take()
	s, err = New(WithWAL(p), WithRedundancy(m), WithFailureHandler(rec.handler))
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	for i := range 5 {
		r, err := s.Write(context.Background(), redEvent(30+i))
		if err != nil {
			t.Fatal(err)
		}
		acked[r.Seq] = encoded(t, redEvent(30+i))
	}
	s.Close()
	sameCopies(t, vfs.OS(), p, m)
	for _, d := range []string{p, m} {
		verifies(t, vfs.OS(), d)
		wantAll(t, vfs.OS(), d, acked)
	}
}

// TestRedundancyMirrorFull: a full mirror fails the write (not
// acknowledged, undone in both copies); once space is freed, writing
// resumes and the copies stay identical.
func TestRedundancyMirrorFull(t *testing.T) {
	c := vfs.NewCrashFS()
	fault := vfs.NewFaultFS(c)
	fsys := routeFS{base: c, alt: fault, prefix: "/m"}
	s, err := New(WithWAL("/p"), WithRedundancy("/m"), WithFileSystem(fsys), WithFailOpen(), WithFailureHandler(func(*core.LogEvent, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	acked := map[uint64][]byte{}
	write := func(i int) error {
		r, err := s.Write(context.Background(), redEvent(i))
		if err == nil {
			acked[r.Seq] = encoded(t, redEvent(i))
		}
		return err
	}
	for i := range 5 {
		if err := write(i); err != nil {
			t.Fatal(err)
		}
	}
	fault.SetWriteBudget(100)
	if err := write(5); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write to a full mirror: err = %v, want ENOSPC", err)
	}
	fault.SetWriteBudget(-1)
	for i := 6; i < 10; i++ {
		if err := write(i); err != nil {
			t.Fatalf("write after space was freed: %v", err)
		}
	}
	s.Close()
	sameCopies(t, c, "/p", "/m")
	wantAll(t, c, "/m", acked)
	if got := records(t, c, "/p"); len(got) != len(acked) {
		t.Errorf("the log holds %d events, want the %d acknowledged", len(got), len(acked))
	}
}

// TestRepairFromMirrorOffline repairs a damaged directory on the operating
// system's filesystem from its mirror, offline, and leaves the mirror as it
// was.
func TestRepairFromMirrorOffline(t *testing.T) {
	root := t.TempDir()
	p, m := filepath.Join(root, "p"), filepath.Join(root, "m")
	sk, vk, _ := integrity.GenerateKey("audit.test/offline")
	acked := writeLog(t, 150, WithWAL(p, WithSegmentSize(8192)), WithRedundancy(m), WithSigningKey(sk))
	osfs := vfs.OS()
	testutil.XorByte(t, osfs, segPath(p, 1), batches(t, osfs, p, 1)[3]+40, 0x5a)
	if err := osfs.Remove(segPath(p, 3)); err != nil {
		t.Fatal(err)
	}
	mirrorBefore := files(t, osfs, m)
	rep, err := RepairFromMirror(context.Background(), osfs, p, m, WithTrustedKeys(vk))
	if err != nil {
		t.Fatalf("RepairFromMirror: %v", err)
	}
	want := map[string]RepairOp{wal.SegmentName(1): RepairReplaced, wal.SegmentName(3): RepairAdded}
	got := map[string]RepairOp{}
	for _, a := range rep.Actions {
		if a.Dir != p {
			t.Errorf("changed the mirror: %s", a)
		}
		got[a.File] = a.Op
	}
	if !maps.Equal(got, want) || rep.Copies[0].Verified || !rep.Copies[1].Verified {
		t.Fatalf("report:\n%s", rep)
	}
	if !maps.Equal(mirrorBefore, files(t, osfs, m)) {
		t.Error("RepairFromMirror changed the mirror")
	}
	if r, err := Verify(context.Background(), p, WithTrustedKeys(vk)); err != nil || !r.OK {
		t.Fatalf("repaired log does not verify: %v", err)
	}
	wantAll(t, osfs, p, acked)
	sameCopies(t, osfs, p, m)
	// Nothing left to do: the report says so.
	rep, err = RepairFromMirror(context.Background(), osfs, p, m, WithTrustedKeys(vk))
	if err != nil || rep.Repaired() || !strings.Contains(rep.String(), "nothing to repair") {
		t.Fatalf("second repair: %v\n%s", err, rep)
	}
	// A whole lost directory is restored.
	restored := filepath.Join(root, "restored")
	if rep, err = RepairFromMirror(context.Background(), osfs, restored, m); err != nil || !rep.Repaired() {
		t.Fatalf("restore into a new directory: %v", err)
	}
	sameCopies(t, osfs, restored, m)
	// Both damaged in the same place: refused with the damage named.
	off := batches(t, osfs, p, 2)[1]
	testutil.XorByte(t, osfs, segPath(p, 2), off+7, 0x5a)
	testutil.XorByte(t, osfs, segPath(m, 2), off+9, 0x5a)
	if _, err := RepairFromMirror(context.Background(), osfs, p, m); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "offset") {
		t.Fatalf("unrepairable damage: err = %v, want ErrCorrupt naming the offset", err)
	}
}

// BenchmarkRedundancy measures durable Sink.Write of a ~256-byte event with
// 64 writers without a mirror, with one mirror on the same disk, and with
// one mirror under WithRedundancyQuorum(2, 10s) (both copies, each with a
// deadline), in the same run (TMPDIR picks the disk).
func BenchmarkRedundancy(b *testing.B) {
	ev := &Event{
		Timestamp:       time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC),
		Level:           LevelInformation,
		MessageTemplate: "User {UserId} performed {Action} on {Resource}",
		Message:         "User u-1001 performed export on patients/42",
		Properties: map[string]any{
			"UserId": "u-1001", "Action": "export", "Resource": "patients/42",
			"Count": 250, "TraceId": strings.Repeat("f", 32), "Ip": "203.0.113.7",
		},
	}
	for _, cfg := range []struct {
		name            string
		mirrors, quorum int
	}{{"mirrors=0", 0, 0}, {"mirrors=1", 1, 0}, {"mirrors=1,quorum=2", 1, 2}} {
		b.Run(cfg.name+"/writers=64", func(b *testing.B) {
			root := b.TempDir()
			opts := []Option{WithWAL(filepath.Join(root, "wal"))}
			if cfg.mirrors > 0 {
				opts = append(opts, WithRedundancy(filepath.Join(root, "mirror")))
			}
			if cfg.quorum > 0 {
				opts = append(opts, WithRedundancyQuorum(cfg.quorum, 10*time.Second))
			}
			s, err := New(opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			benchref.Run(b, 64, func() error {
				_, err := s.Write(ctx, ev)
				return err
			})
		})
	}
}

// TestRedundancyZerosAheadDifferNotRepaired: a crash can leave the copies'
// active segments with the same records but different amounts of the zeros
// filled ahead of them (the fill reached one copy and not yet the other).
// That is no damage and nothing out of date: New must not report a repair
// (it would page someone for nothing), and opening cuts the zeros in both.
func TestRedundancyZerosAheadDifferNotRepaired(t *testing.T) {
	for _, short := range []string{"/m", "/p"} {
		t.Run("zeros cut in "+short, func(t *testing.T) { zerosAheadDiffer(t, short) })
	}
}

func zerosAheadDiffer(t *testing.T, short string) {
	fsys := vfs.NewCrashFS()
	rec := &repairs{}
	s := openRedundant(t, fsys, rec)
	acked := map[uint64][]byte{}
	for i := range 5 {
		r, err := s.Write(context.Background(), redEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		acked[r.Seq] = encoded(t, redEvent(i))
	}
	seg := segPath("/p", 1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		fi, err := fsys.Stat(seg)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() == 8192 { // filled to the end of the segment
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %d bytes: the zeros were not filled ahead", seg, fi.Size())
		}
		time.Sleep(time.Millisecond)
	}
	clone := fsys.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
	s.Close()
	rec.take()
	// One copy lacks the zeros: cut it after its last non-zero sector
	// (batches end on a sector and are whitened to the end).
	f, err := clone.OpenReadWrite(segPath(short, 1))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8192)
	n, _ := f.ReadAt(buf, 0)
	end := int64(bytes.LastIndexFunc(buf[:n], func(r rune) bool { return r != 0 }) + 1)
	end = (end + 511) / 512 * 512
	if end >= int64(n) {
		t.Fatalf("the segment in %s has no zeros ahead (%d of %d bytes non-zero)", short, end, n)
	}
	if err := f.Truncate(end); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s2, err := New(WithWAL("/p", WithSegmentSize(8192)), WithRedundancy("/m"), WithFileSystem(clone), WithFailureHandler(rec.handler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if rep := s2.RepairReport(); rep.Repaired() {
		t.Errorf("copies that differ only in zeros ahead were repaired: %s", rep)
	}
	if errs := rec.take(); len(errs) != 0 {
		t.Errorf("failure handler told %v", errs)
	}
	sameCopies(t, clone, "/p", "/m") // opening cut the zeros in both
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	sameCopies(t, clone, "/p", "/m")
	wantAll(t, clone, "/p", acked)
	wantAll(t, clone, "/m", acked)
}
