package vfs_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

var mirrorIterations = flag.Int("mirror.iterations", 300, "randomized power-loss crash points for TestMirrorPowerLoss")

// TestMirrorPowerLoss runs concurrent appenders through a Mirror of a
// write-ahead log with two mirrors, all on one CrashFS (one power loss hits
// every disk at once), crashes at a random operation keeping random subsets
// of unsynced sectors and directory entries, and checks that each copy, on
// its own, reopens with every acknowledged record byte for byte: the log's
// "ack after fdatasync" rule covers every copy.
func TestMirrorPowerLoss(t *testing.T) {
	n := *mirrorIterations
	if testing.Short() {
		n = min(n, 100)
	}
	for i := range n {
		seed := uint64(i) + 1
		clone, acked := mirrorRunUntilCrash(t, seed)
		if t.Failed() {
			return
		}
		for _, dir := range []string{"/p", "/m1", "/m2"} {
			fsys := clone.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
			got, err := reopenAlone(fsys, dir)
			if err != nil {
				t.Fatalf("seed %d: copy %s alone: %v", seed, dir, err)
			}
			for seq, p := range acked {
				if !bytes.Equal(got[seq], p) {
					t.Fatalf("seed %d: copy %s lost or altered acknowledged record %d", seed, dir, seq)
				}
			}
		}
	}
}

func mirrorRunUntilCrash(t *testing.T, seed uint64) (*vfs.CrashFS, map[uint64][]byte) {
	rng := rand.New(rand.NewPCG(seed, 0x313))
	c := vfs.NewCrashFS()
	m, err := vfs.NewMirror(c, "/p", "/m1", "/m2")
	if err != nil {
		t.Fatal(err)
	}
	writers, per := 1+rng.IntN(4), 5+rng.IntN(25)
	crashAt := int64(1 + rng.IntN(40+writers*per*6))
	co := vfs.CrashOptions{Seed: int64(seed), SectorSize: []int{512, 4096}[rng.IntN(2)], KeepSectorProb: rng.Float64(), KeepDirOpProb: rng.Float64()}
	var mu sync.Mutex // the Mirror syncs copies concurrently: the hook runs on several goroutines
	acked := map[uint64][]byte{}
	var clone *vfs.CrashFS
	var snapshot map[uint64][]byte
	var ops int64
	c.SetHook(func(vfs.Op) {
		mu.Lock()
		defer mu.Unlock()
		ops++
		if ops == crashAt && clone == nil {
			snapshot, clone = maps.Clone(acked), c.CrashClone(co)
		}
	})
	w, err := wal.Open(m, "/p", wal.Options{SegmentSize: 4096 + 512*int64(seed%8)})
	if err != nil {
		t.Fatalf("seed %d: open: %v", seed, err)
	}
	var wg sync.WaitGroup
	for g := range writers {
		payloads := make([][]byte, per)
		for i := range payloads {
			payloads[i] = make([]byte, 8+rng.IntN(300))
			binary.LittleEndian.PutUint32(payloads[i], uint32(g))
			binary.LittleEndian.PutUint32(payloads[i][4:], uint32(i))
			for j := 8; j < len(payloads[i]); j++ {
				payloads[i][j] = byte(rng.Uint32())
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, p := range payloads {
				seq, err := w.Append(context.Background(), wal.RecordEvent, int64(g), p)
				if err != nil {
					t.Errorf("seed %d: append: %v", seed, err)
					return
				}
				mu.Lock()
				acked[seq] = p
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if rng.IntN(3) == 0 {
		w.Close()
	}
	mu.Lock()
	if clone == nil {
		snapshot, clone = maps.Clone(acked), c.CrashClone(co)
	}
	mu.Unlock()
	c.SetHook(nil)
	w.Release()
	return clone, snapshot
}

// reopenAlone opens one copy as a plain log (recovering it) and returns its
// event records.
func reopenAlone(fsys vfs.FS, dir string) (map[uint64][]byte, error) {
	w, err := wal.Open(fsys, dir, wal.Options{})
	if err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	got := map[uint64][]byte{}
	_, err = wal.Check(context.Background(), fsys, dir, func(r wal.Record) error {
		if r.Type == wal.RecordEvent {
			got[r.Seq] = bytes.Clone(r.Payload)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("check after recovery: %w", err)
	}
	return got, nil
}
