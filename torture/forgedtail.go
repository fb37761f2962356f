package torture

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// ForgedTail appends forged records to a signed log, the way anyone
// without the key can (through the wal package: a correct segment chain,
// checksums and whitening), and reopens it with the key.
type ForgedTail struct{}

// Name returns "ForgedTail".
func (ForgedTail) Name() string { return "ForgedTail" }

// Doc describes the scenario and its pass criteria.
func (ForgedTail) Doc() string {
	return "A signed log (sometimes forward-secure) is closed cleanly or crashed (power loss at a random point); forged events " +
		"(a random number, in one or more batches, some written concurrently) are appended without the key: after the seal (in the " +
		"continued last segment, or a new segment when it is full), or in the last segment after its seal was stripped or the writer crashed; the forger closes or crashes; sometimes " +
		"the checkpoints file is deleted or rolled back. Pass: the log as the genuine writer left it reopens; with the forged tail, " +
		"reopening with the key refuses (an error matching audit.ErrIntegrity) and no signed checkpoint ever covers a forged record."
}

// Run runs one iteration.
func (ForgedTail) Run(ctx context.Context, it Iteration) Outcome {
	rng := it.Rand()
	skey, vkey := keyPair(it.Seed)
	segSize := 2048 + 512*rng.Int64N(6)
	cpEvery := 1 + rng.IntN(4)
	genuine := 1 + rng.IntN(20)
	fwd := rng.IntN(4) == 0
	crash := rng.IntN(2) == 0
	var extra []audit.Option
	if fwd {
		extra = append(extra, audit.WithForwardSecurity(time.Nanosecond))
	}
	setup := fmt.Sprintf("%d genuine events, segment size %d, checkpoint every %d, forward-secure: %v, genuine writer crashed: %v", genuine, segSize, cpEvery, fwd, crash)

	// The genuine log.
	fsys := vfs.NewCrashFS()
	sink, err := audit.New(sinkOptions(fsys, skey, segSize, cpEvery, extra...)...)
	if err != nil {
		return failed(0, 0, "open a new log: %v (%s)", err, setup)
	}
	crashAt := -1
	if crash {
		crashAt = rng.IntN(genuine + 1)
	}
	var state *vfs.CrashFS
	base := time.Unix(1_700_000_000, 0).UTC()
	acked := 0
	for i := range genuine {
		if i == crashAt {
			state = fsys.CrashClone(crashOptions(rng))
		}
		if _, err := sink.Write(ctx, makeEvent(rng, 0, i, base.Add(time.Duration(i)*time.Millisecond))); err != nil {
			sink.Close()
			return failed(0, acked, "write on a healthy disk: %v (%s)", err, setup)
		}
		acked++
	}
	if crashAt == genuine {
		state = fsys.CrashClone(crashOptions(rng))
	}
	if err := sink.Close(); err != nil {
		return failed(0, acked, "close: %v (%s)", err, setup)
	}
	if state == nil {
		state = fsys
	}

	// Control: the log as the genuine writer left it reopens.
	control := state.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
	if s, err := audit.New(sinkOptions(control, skey, segSize, cpEvery, extra...)...); err != nil {
		return failed(0, acked, "the genuine log (no forgery) does not reopen: %v (%s)", err, setup)
	} else if err := s.Close(); err != nil {
		return failed(0, acked, "the genuine log (no forgery): close after reopen: %v (%s)", err, setup)
	}

	// The forgery, on another copy.
	dmg := state.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
	before, _, err := readLog(ctx, dmg, logDir)
	if err != nil {
		return failed(0, acked, "read the genuine log: %v (%s)", err, setup)
	}
	var what []string
	if rng.IntN(2) == 0 {
		stripped, err := stripSeal(dmg)
		if err != nil {
			return failed(0, acked, "strip the seal: %v (%s)", err, setup)
		}
		if stripped {
			what = append(what, "seal stripped")
		}
	}
	forged := 1 + rng.IntN(12)
	writers := 1
	if rng.IntN(3) == 0 {
		writers = 2 + rng.IntN(3)
	}
	forgerCrash := rng.IntN(2) == 0
	w, err := wal.Open(dmg, logDir, wal.Options{SegmentSize: segSize})
	if err != nil {
		return failed(0, acked, "the forger cannot open the log: %v (%s)", err, setup)
	}
	var wg sync.WaitGroup
	var ferr error
	var mu sync.Mutex
	payloads := make([][]byte, forged)
	for i := range payloads {
		ev := makeEvent(rng, 9, i, base.Add(time.Hour))
		ev.MessageTemplate = "granted admin to {User}"
		payloads[i] = encode(ev)
	}
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < forged; i += writers {
				if _, err := w.Append(ctx, wal.RecordEvent, base.Add(time.Hour).UnixNano(), payloads[i]); err != nil {
					mu.Lock()
					ferr = err
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if forgerCrash {
		err = w.Release()
	} else {
		err = w.Close()
	}
	if ferr != nil || err != nil {
		return failed(0, acked, "forge: %v %v (%s)", ferr, err, setup)
	}
	what = append(what, fmt.Sprintf("%d forged events by %d writers, forger crashed: %v", forged, writers, forgerCrash))
	cpPath := path.Join(logDir, integrity.CheckpointsFile)
	switch rng.IntN(4) {
	case 0:
		if err := dmg.Remove(cpPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return failed(0, acked, "delete checkpoints: %v", err)
		}
		what = append(what, "checkpoints deleted")
	case 1:
		cps, err := integrity.ReadCheckpointLog(dmg, cpPath)
		if err == nil && len(cps) > 0 {
			keep := rng.IntN(len(cps))
			dmg.Remove(cpPath)
			l, err := integrity.OpenCheckpointLog(dmg, cpPath)
			if err != nil {
				return failed(0, acked, "roll back checkpoints: %v", err)
			}
			for _, c := range cps[:keep] {
				if err := l.Append(c); err != nil {
					return failed(0, acked, "roll back checkpoints: %v", err)
				}
			}
			if err := l.Close(); err != nil {
				return failed(0, acked, "roll back checkpoints: %v", err)
			}
			what = append(what, fmt.Sprintf("checkpoints rolled back to %d of %d", keep, len(cps)))
		}
	}
	setup += "; " + strings.Join(what, ", ")

	// Reopen with the key: must refuse.
	s, err := audit.New(sinkOptions(dmg, skey, segSize, cpEvery, extra...)...)
	if err == nil {
		s.Write(ctx, makeEvent(rng, 1, 0, time.Now()))
		s.Close()
		rep, verr := audit.VerifyFS(ctx, dmg, logDir, audit.WithTrustedKeys(vkey))
		covered := uint64(0)
		if rep != nil {
			covered = rep.Covered
		}
		return failed(1, acked, "the writer reopened a log with a forged tail (and signed %d records, %d genuine; verify: %v) (%s)", covered, len(before), verr, setup)
	}
	if !errors.Is(err, audit.ErrIntegrity) {
		return failed(1, acked, "reopening a log with a forged tail failed, but not as an integrity error: %v (%s)", err, setup)
	}
	if rep, _ := audit.VerifyFS(ctx, dmg, logDir, audit.WithTrustedKeys(vkey)); rep != nil && rep.Covered > maxSeq(before) {
		return failed(1, acked, "a signed checkpoint covers %d records, the genuine log held %d (%s)", rep.Covered, maxSeq(before), setup)
	}
	return passed(1, acked, "refused: %s (%s)", firstLine(err), setup)
}

// stripSeal cuts the seal (the last sector) off the last segment, if it is
// sealed, as if its writer had crashed.
func stripSeal(fsys vfs.FS) (bool, error) {
	names, err := fsys.List(logDir)
	if err != nil {
		return false, err
	}
	var segs []string
	for _, n := range names {
		if _, ok := wal.ParseSegmentName(n); ok {
			segs = append(segs, n)
		}
	}
	if len(segs) == 0 {
		return false, nil
	}
	sort.Strings(segs)
	p := path.Join(logDir, segs[len(segs)-1])
	rep, err := wal.Check(context.Background(), fsys, logDir, nil)
	if err != nil || !rep.Sealed {
		return false, err
	}
	f, err := fsys.OpenReadWrite(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return false, err
	}
	if err := f.Truncate(size - wal.SectorSize); err != nil {
		return false, err
	}
	return true, f.Datasync()
}

func maxSeq(m map[uint64]stored) uint64 {
	var n uint64
	for s := range m {
		n = max(n, s)
	}
	return n
}

func firstLine(err error) string {
	s := err.Error()
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}
