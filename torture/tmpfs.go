package torture

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// errPrivilege is matched when the process may not mount a filesystem.
var errPrivilege = errors.New("not permitted")

// DiskFullTmpfs is DiskFull on a real filesystem: it mounts a small tmpfs
// (which needs root, or CAP_SYS_ADMIN; otherwise every iteration is
// skipped with the reason), fills it to 99% with a file, and writes through
// a Sink on it (small segments, frequent signed checkpoints) until a Write
// fails; then it deletes the file and writes again.
//
// Pass: a Write fails (the disk filled) rather than acknowledging what did
// not fit; after the file is deleted the same Sink accepts writes again
// without reopening; Close succeeds; the log then verifies with the key,
// every record covered, and every acknowledged event, from before and
// after the full disk, is present and byte-identical.
type DiskFullTmpfs struct{}

// Name returns "DiskFullTmpfs".
func (DiskFullTmpfs) Name() string { return "DiskFullTmpfs" }

// Doc describes the scenario and its pass criteria.
func (DiskFullTmpfs) Doc() string {
	return "A real size-limited tmpfs (mounted per iteration; needs root, skipped otherwise) filled to 99% by a file; a Sink writes until a " +
		"Write fails with the disk full, the file is deleted, and the Sink writes again. Pass: a Write fails instead of acknowledging what " +
		"did not fit; after the space is freed the same Sink accepts writes; Close succeeds; the log verifies with the key with every record " +
		"covered, and every acknowledged event is byte-identical."
}

// Run runs one iteration.
func (DiskFullTmpfs) Run(ctx context.Context, it Iteration) Outcome {
	if os.Geteuid() != 0 {
		return skipped("mounting a tmpfs needs root (or CAP_SYS_ADMIN); run the suite as root, e.g. in a container")
	}
	rng := it.Rand()
	skey, vkey := keyPair(it.Seed)
	size := int64(4+rng.IntN(5)) << 20
	writers := 1 + rng.IntN(2)
	segSize := 4096 + 512*rng.Int64N(32)
	cpEvery := 1 + rng.IntN(8)
	after := 1 + rng.IntN(5)
	base := time.Unix(1_700_000_000, 0).UTC()
	setup := fmt.Sprintf("tmpfs of %d MiB filled to 99%%, %d writers, segment size %d, checkpoint every %d", size>>20, writers, segSize, cpEvery)

	mnt, err := os.MkdirTemp(it.TempDir, "torture-tmpfs-")
	if err != nil {
		return skipped("temporary directory: %v", err)
	}
	defer os.Remove(mnt)
	if err := mountTmpfs(mnt, size); err != nil {
		if errors.Is(err, errPrivilege) {
			return skipped("%v", err)
		}
		return failed(0, 0, "mount: %v", err)
	}
	defer unmount(mnt)
	total, free, err := fsSpace(mnt)
	if err != nil {
		return failed(0, 0, "statfs: %v", err)
	}
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, free-total/100), 0o600); err != nil {
		return failed(0, 0, "fill the tmpfs: %v (%s)", err, setup)
	}
	dir := filepath.Join(mnt, "wal")
	opts := []audit.Option{audit.WithWAL(dir, audit.WithSegmentSize(segSize)), audit.WithSigningKey(skey), audit.WithCheckpoints(cpEvery, 2*time.Millisecond, time.Hour)}
	sink, err := audit.New(opts...)
	if err != nil {
		return failed(0, 0, "open the log on the 99%% full tmpfs: %v (%s)", err, setup)
	}
	defer sink.Close()
	acked := newAcks()
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wrng := newRand(uint64(it.Seed) + uint64(g))
			for i := 0; i < 100_000 && ctx.Err() == nil; i++ {
				mu.Lock()
				stop := firstErr != nil
				mu.Unlock()
				if stop {
					return
				}
				ev := makeEvent(wrng, g, i, base.Add(time.Duration(i)*time.Millisecond))
				r, err := sink.Write(ctx, ev)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				acked.add(r.Seq, encode(ev))
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return skipped("cancelled")
	}
	if firstErr == nil {
		return failed(0, acked.len(), "the tmpfs never filled (%s)", setup)
	}
	setup += fmt.Sprintf("; %d events acknowledged before: %v", acked.len(), firstErr)
	if err := os.Remove(filler); err != nil {
		return failed(1, acked.len(), "free the space: %v", err)
	}
	wrng := newRand(uint64(it.Seed) ^ 0xf7ee)
	for i := range after {
		ev := makeEvent(wrng, 99, i, base)
		r, err := sink.Write(ctx, ev)
		if err != nil {
			_, freeNow, serr := fsSpace(mnt)
			return failed(1, acked.len(), "write %d after the space was freed: %v (the Sink did not resume; %d bytes free now (%v), files: %s; %s)", i, err, freeNow, serr, listSizes(dir), setup)
		}
		acked.add(r.Seq, encode(ev))
	}
	if err := sink.Close(); err != nil {
		return failed(1, acked.len(), "close after the space was freed: %v (%s)", err, setup)
	}
	all := acked.snapshot()
	if _, err := verify(ctx, vfs.OS(), dir, vkey, true); err != nil {
		return failed(1, len(all), "%v (%s)", err, setup)
	}
	got, _, err := readLog(ctx, vfs.OS(), dir)
	if err != nil {
		return failed(1, len(all), "read: %v (%s)", err, setup)
	}
	if err := checkAcked(got, all); err != nil {
		return failed(1, len(all), "%v (%s)", err, setup)
	}
	return passed(1, len(all), "%d acknowledged events survived the full disk (%s)", len(all), setup)
}

// listSizes names each file in dir with its size, for a failure report.
func listSizes(dir string) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			fmt.Fprintf(&b, "%s=%d ", e.Name(), fi.Size())
		}
	}
	return b.String()
}
