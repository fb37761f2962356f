package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"maps"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/willibrandon/mtlog-audit/vfs"
)

var powerLossIterations = flag.Int("powerloss.iterations", defaultPowerLossIterations, "randomized power-loss crash points to test")

const testDir = "/wal"

// testPayload is a self-checking payload: writer, index and a checksum, so a
// reader can tell a payload we wrote from anything else.
func testPayload(writer, i int, rng *rand.Rand) []byte {
	p := sizedPayload(writer, i, 16+rng.IntN(400), rng)
	if rng.IntN(8) == 0 { // runs of zeros must not confuse torn-write detection
		clear(p[12:])
		sealPayload(p)
	}
	return p
}

// sizedPayload is a self-checking payload of n ≥ 12 bytes.
func sizedPayload(writer, i, n int, rng *rand.Rand) []byte {
	p := make([]byte, n)
	binary.LittleEndian.PutUint32(p[0:], uint32(writer))
	binary.LittleEndian.PutUint32(p[4:], uint32(i))
	for j := 12; j < n; j++ {
		p[j] = byte(rng.Uint32())
	}
	sealPayload(p)
	return p
}

// sealPayload sets a payload's checksum.
func sealPayload(p []byte) { binary.LittleEndian.PutUint32(p[8:], crc32.ChecksumIEEE(p[12:])) }

func validPayload(p []byte) bool {
	return len(p) >= 12 && binary.LittleEndian.Uint32(p[8:]) == crc32.ChecksumIEEE(p[12:])
}

// crashRun runs writers against a CrashFS and takes a crash clone just
// before operation crashAt. It returns the clone and the records that were
// acknowledged before the crash.
type crashRun struct {
	clone *vfs.CrashFS
	acked map[uint64][]byte
}

func runUntilCrash(t *testing.T, seed uint64, opts Options) crashRun {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	fsys := vfs.NewCrashFS()
	writers := 1 + rng.IntN(4)
	perWriter := 5 + rng.IntN(30)
	crashAt := int64(1 + rng.IntN(12+writers*perWriter*2))
	co := vfs.CrashOptions{Seed: int64(seed), SectorSize: []int{512, 4096}[rng.IntN(2)], KeepSectorProb: rng.Float64(), KeepDirOpProb: rng.Float64()}

	var mu sync.Mutex
	acked := map[uint64][]byte{}
	var run crashRun
	var ops int64
	// The hook runs on the committer and on the goroutine that fills
	// segments ahead with zeros.
	fsys.SetHook(func(op vfs.Op) {
		mu.Lock()
		defer mu.Unlock()
		ops++
		if ops == crashAt && run.clone == nil {
			run.acked = maps.Clone(acked)
			run.clone = fsys.CrashClone(co)
		}
	})
	w, err := Open(fsys, testDir, opts)
	if err != nil {
		t.Fatalf("seed %d: open: %v", seed, err)
	}
	payloads := make([][][]byte, writers)
	for g := range payloads {
		for i := 0; i < perWriter; i++ {
			payloads[g] = append(payloads[g], testPayload(g, i, rng))
		}
	}
	// The workload runs in 1 to 3 rounds with a clean Close and a reopen
	// between them, so that crashes also fall after a reopen: appending
	// after the last segment's seal (an interior seal from then on).
	rounds := 1 + rand.New(rand.NewPCG(seed, 0x7e09e2)).IntN(3)
	for r := range rounds {
		if r > 0 {
			if err := w.Close(); err != nil {
				t.Fatalf("seed %d: close before reopen: %v", seed, err)
			}
			if w, err = Open(fsys, testDir, opts); err != nil {
				t.Fatalf("seed %d: reopen after a clean close: %v", seed, err)
			}
		}
		lo, hi := r*perWriter/rounds, (r+1)*perWriter/rounds
		var wg sync.WaitGroup
		for g := 0; g < writers; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := lo; i < hi; i++ {
					p := payloads[g][i]
					seq, err := w.Append(context.Background(), RecordEvent, int64(g*1000+i), p)
					if err != nil {
						t.Errorf("seed %d: append: %v", seed, err)
						return
					}
					mu.Lock()
					acked[seq] = p
					mu.Unlock()
				}
			}(g)
		}
		wg.Wait()
	}
	if rng.IntN(3) == 0 {
		w.Close()
	}
	// The zero filler may still be at work (the log is not always closed)
	// and calling the hook.
	mu.Lock()
	if run.clone == nil { // the crash point lay beyond the workload: crash now
		run.acked = maps.Clone(acked)
		run.clone = fsys.CrashClone(co)
	}
	mu.Unlock()
	fsys.SetHook(nil)
	return run
}

// checkRecovered opens the crashed filesystem and checks the promise.
func checkRecovered(t *testing.T, seed uint64, fsys *vfs.CrashFS, acked map[uint64][]byte, opts Options) {
	t.Helper()
	w, err := Open(fsys, testDir, opts)
	if err != nil {
		t.Fatalf("seed %d: reopen after crash: %v", seed, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("seed %d: close: %v", seed, err)
	}
	got := map[uint64][]byte{}
	if _, err := Check(context.Background(), fsys, testDir, func(r Record) error {
		if r.Type == RecordEvent {
			if !validPayload(r.Payload) {
				return fmt.Errorf("record %d holds bytes we never wrote", r.Seq)
			}
			got[r.Seq] = bytes.Clone(r.Payload)
		}
		return nil
	}); err != nil {
		t.Fatalf("seed %d: check after recovery: %v", seed, err)
	}
	for seq, p := range acked {
		if !bytes.Equal(got[seq], p) {
			t.Fatalf("seed %d: acknowledged record %d lost or altered after crash (have %d records)", seed, seq, len(got))
		}
	}
}

// TestPowerLoss crashes at random operations, keeping random subsets of
// unsynced sectors (torn and reordered writes) and directory entries, and
// checks that every acknowledged record survives byte for byte, that
// nothing we did not write is returned, and that Open never reports
// corruption for unacknowledged damage. Half the iterations also crash
// again in the middle of recovery.
func TestPowerLoss(t *testing.T) {
	n := *powerLossIterations
	if testing.Short() {
		n = min(n, 500)
	}
	for i := 0; i < n; i++ {
		seed := uint64(i) + 1
		opts := Options{SegmentSize: 4096 + 512*int64(seed%8)}
		if seed%5 == 0 {
			opts.Sync = SyncInterval // acked records still survive a process crash; here only check recovery
		}
		run := runUntilCrash(t, seed, opts)
		if t.Failed() {
			return
		}
		acked := run.acked
		if opts.Sync != SyncDurable {
			acked = nil // the weaker modes promise nothing across power loss
		}
		fsys := run.clone
		if seed%2 == 0 {
			fsys = crashDuringRecovery(seed, fsys, opts)
		}
		checkRecovered(t, seed, fsys, acked, opts)
		if t.Failed() {
			return
		}
	}
}

// crashDuringRecovery runs Open on fsys and crashes it at a random operation
// of recovery, returning the crashed state (fsys itself if recovery did
// nothing to crash in).
func crashDuringRecovery(seed uint64, fsys *vfs.CrashFS, opts Options) *vfs.CrashFS {
	rng := rand.New(rand.NewPCG(seed, 0xdead))
	probe := fsys.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
	var ops atomic.Int64 // the hook runs on the committer and the zero filler
	probe.SetHook(func(vfs.Op) { ops.Add(1) })
	if w, err := Open(probe, testDir, opts); err == nil {
		w.Close()
	}
	if ops.Load() == 0 {
		return fsys
	}
	at := 1 + rng.Int64N(ops.Load())
	var crashed *vfs.CrashFS
	var n atomic.Int64
	fsys.SetHook(func(vfs.Op) {
		if n.Add(1) == at {
			crashed = fsys.CrashClone(vfs.CrashOptions{Seed: int64(seed), KeepSectorProb: rng.Float64(), KeepDirOpProb: rng.Float64()})
		}
	})
	if w, err := Open(fsys, testDir, opts); err == nil {
		w.Close()
	}
	fsys.SetHook(nil)
	if crashed == nil {
		return fsys
	}
	return crashed
}

// TestCrashBeforeDirSync loses the directory entry of a newly created
// segment: records acknowledged before it survive, because acknowledgement
// of anything in the new segment waits for the directory sync.
func TestCrashBeforeDirSync(t *testing.T) {
	fsys := vfs.NewCrashFS()
	w, err := Open(fsys, testDir, Options{SegmentSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	acked := map[uint64][]byte{}
	var clone *vfs.CrashFS
	var snapshot map[uint64][]byte
	syncDirs := 0
	fsys.SetHook(func(op vfs.Op) {
		if op.Kind == vfs.OpSyncDir {
			syncDirs++
			if syncDirs == 2 && clone == nil {
				snapshot = map[uint64][]byte{}
				for k, v := range acked {
					snapshot[k] = v
				}
				clone = fsys.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 0})
			}
		}
	})
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 40; i++ {
		p := testPayload(0, i, rng)
		seq, err := w.Append(context.Background(), RecordEvent, 1, p)
		if err != nil {
			t.Fatal(err)
		}
		acked[seq] = p
	}
	w.Close()
	if clone == nil {
		t.Fatal("no segment was created after the first: the test did not exercise rotation")
	}
	names, _ := clone.List(testDir)
	checkRecovered(t, 0, clone, snapshot, Options{SegmentSize: 2048})
	if len(snapshot) == 0 {
		t.Fatalf("nothing was acknowledged before the crash; files %v", names)
	}
}

// TestFsyncFailure injects EIO on fdatasync: the failing Append and every
// later one fail with ErrFailed, and everything acknowledged before survives
// a power loss.
func TestFsyncFailure(t *testing.T) {
	for _, after := range []int{0, 1, 3, 10} {
		crash := vfs.NewCrashFS()
		ffs := vfs.NewFaultFS(crash)
		w, err := Open(ffs, testDir, Options{SegmentSize: 4096})
		if err != nil {
			t.Fatal(err)
		}
		ffs.FailSyncAfter(after, syscall.EIO)
		acked := map[uint64][]byte{}
		rng := rand.New(rand.NewPCG(uint64(after), 3))
		var firstErr error
		for i := 0; i < 30; i++ {
			p := testPayload(0, i, rng)
			seq, err := w.Append(context.Background(), RecordEvent, 1, p)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				if !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.EIO) {
					t.Fatalf("after %d: append error %v does not match ErrFailed and EIO", after, err)
				}
				continue
			}
			if firstErr != nil {
				t.Fatalf("after %d: append succeeded after the log failed", after)
			}
			acked[seq] = p
		}
		if firstErr == nil {
			t.Fatalf("after %d: no append failed", after)
		}
		ffs.FailSyncs(nil) // even when syncs work again, the log stays failed
		if _, err := w.Append(context.Background(), RecordEvent, 1, []byte("x")); !errors.Is(err, ErrFailed) {
			t.Fatalf("after %d: append after recovery of the disk: %v, want ErrFailed", after, err)
		}
		w.Close()
		checkRecovered(t, uint64(after), crash.CrashClone(vfs.CrashOptions{}), acked, Options{SegmentSize: 4096})
	}
}

// TestWriteENOSPC: a full disk fails the write without failing the log;
// after space is freed appends resume and nothing acknowledged is lost.
func TestWriteENOSPC(t *testing.T) {
	crash := vfs.NewCrashFS()
	ffs := vfs.NewFaultFS(crash)
	w, err := Open(ffs, testDir, Options{SegmentSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	acked := map[uint64][]byte{}
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 10; i++ {
		p := testPayload(0, i, rng)
		seq, err := w.Append(context.Background(), RecordEvent, 1, p)
		if err != nil {
			t.Fatal(err)
		}
		acked[seq] = p
	}
	ffs.SetWriteBudget(700)
	sawENOSPC := false
	for i := 10; i < 20; i++ {
		p := testPayload(0, i, rng)
		seq, err := w.Append(context.Background(), RecordEvent, 1, p)
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) || errors.Is(err, ErrFailed) {
				t.Fatalf("append on a full disk: %v", err)
			}
			sawENOSPC = true
			continue
		}
		acked[seq] = p
	}
	if !sawENOSPC {
		t.Fatal("the write budget never ran out")
	}
	ffs.SetWriteBudget(-1)
	for i := 20; i < 30; i++ {
		p := testPayload(0, i, rng)
		seq, err := w.Append(context.Background(), RecordEvent, 1, p)
		if err != nil {
			t.Fatalf("append after space was freed: %v", err)
		}
		acked[seq] = p
	}
	w.Close()
	checkRecovered(t, 7, crash.CrashClone(vfs.CrashOptions{}), acked, Options{})
}
