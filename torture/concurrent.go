package torture

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// ConcurrentCorruption damages a sealed segment on the disk, under a
// running Sink, while writers keep writing: bit flips, a zeroed block or a
// truncation of a segment that has a successor.
//
// Pass: the writers are unaffected (no Write fails, and acknowledgements
// continue after the damage), Close succeeds, and afterwards the damage is
// detected: audit.VerifyFS with the key reports a problem, and reopening
// the log fails with an error matching audit.ErrCorrupt or
// audit.ErrIntegrity (never a silent truncation), or, for damage inside the
// batches of the sealed segment (which Open does not read), reopens without
// changing that segment, and Sink.Replay of the reopened log fails with
// ErrCorrupt.
type ConcurrentCorruption struct{}

// Name returns "ConcurrentCorruption".
func (ConcurrentCorruption) Name() string { return "ConcurrentCorruption" }

// Doc describes the scenario and its pass criteria.
func (ConcurrentCorruption) Doc() string {
	return "A sealed segment is damaged on disk (bit flips, a zeroed block, truncation) under a running Sink while 2-4 goroutines write. " +
		"Pass: no Write fails and acknowledgements continue after the damage, Close succeeds, audit.VerifyFS with the key then reports a " +
		"problem, and reopening fails with ErrCorrupt or ErrIntegrity, or (damage inside a sealed segment's batches, which Open does not read) " +
		"reopens without changing the segment and Sink.Replay fails with ErrCorrupt."
}

// Run runs one iteration.
func (ConcurrentCorruption) Run(ctx context.Context, it Iteration) Outcome {
	rng := it.Rand()
	skey, vkey := keyPair(it.Seed)
	writers := 2 + rng.IntN(3)
	segSize := 2048 + 512*rng.Int64N(2)
	cpEvery := 1 + rng.IntN(4)
	minSegs := 2 + rng.IntN(4)/3   // mostly 2
	more := int64(2 + rng.IntN(4)) // acknowledgements required after the damage
	kind := rng.IntN(3)
	dmgSeed := rng.Uint64()
	const limit = 2000 // events per writer, a guard against a run that never gets there
	base := time.Unix(1_700_000_000, 0).UTC()
	setup := fmt.Sprintf("%d writers, segment size %d, checkpoint every %d, damage once %d segments exist, then %d more acks",
		writers, segSize, cpEvery, minSegs, more)

	fsys := vfs.NewCrashFS()
	sink, err := audit.New(sinkOptions(fsys, skey, segSize, cpEvery)...)
	if err != nil {
		return failed(0, 0, "open a new log: %v (%s)", err, setup)
	}
	defer sink.Close()
	acked := newAcks()
	var (
		count     atomic.Int64
		stop      atomic.Bool
		damagedAt atomic.Int64 // acknowledgements when the damage was done, +1 (0: not yet)
		what      string
		victim    string // the damaged segment's path
		dmgErr    error
		mu        sync.Mutex
		werr      error
	)
	// After each acknowledgement a writer checks, unless another is at it,
	// whether the damage is due (enough segments) or the run is done (enough
	// acknowledgements after it); the other writers keep writing meanwhile.
	var turn sync.Mutex
	drng := newRand(dmgSeed)
	check := func() {
		if !turn.TryLock() {
			return
		}
		defer turn.Unlock()
		if d := damagedAt.Load(); d != 0 {
			if count.Load() >= d-1+more {
				stop.Store(true)
			}
			return
		}
		names, err := fsys.List(logDir)
		if err != nil {
			dmgErr = err
			stop.Store(true)
			return
		}
		var segs []string
		for _, n := range names {
			if _, ok := wal.ParseSegmentName(n); ok {
				segs = append(segs, n)
			}
		}
		slices.Sort(segs)
		if len(segs) < minSegs {
			return
		}
		n := count.Load()
		victim = path.Join(logDir, segs[drng.IntN(len(segs)-1)]) // sealed: it has a successor
		if what, err = damageFile(fsys, victim, kind, drng); err != nil {
			dmgErr = err
			stop.Store(true)
			return
		}
		damagedAt.Store(n + 1)
	}
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wrng := newRand(uint64(it.Seed) + uint64(g)*0x9e3779b97f4a7c15)
			for i := 0; i < limit && !stop.Load() && ctx.Err() == nil; i++ {
				ev := makeEvent(wrng, g, i, base.Add(time.Duration(g*100000+i)*time.Millisecond))
				r, err := sink.Write(ctx, ev)
				if err != nil {
					mu.Lock()
					if werr == nil {
						werr = fmt.Errorf("writer %d event %d (after %d acknowledgements, damage done at %d): %w", g, i, count.Load(), damagedAt.Load()-1, err)
					}
					mu.Unlock()
					stop.Store(true)
					break
				}
				acked.add(r.Seq, encode(ev))
				count.Add(1)
				check()
			}
		}()
	}
	wg.Wait()
	stop.Store(true)
	turn.Lock() // what, dmgErr
	defer turn.Unlock()
	all := acked.snapshot()
	if ctx.Err() != nil {
		return skipped("cancelled")
	}
	switch {
	case dmgErr != nil:
		return failed(0, len(all), "damage the segment: %v (%s)", dmgErr, setup)
	case werr != nil:
		return failed(1, len(all), "a writer was affected by damage to a sealed segment: %v (damage: %s; %s)", werr, what, setup)
	case damagedAt.Load() == 0:
		return failed(0, len(all), "the log never had %d segments after %d events (%s)", minSegs, len(all), setup)
	case count.Load() < damagedAt.Load()-1+more:
		return failed(1, len(all), "only %d acknowledgements after the damage (%s; %s)", count.Load()-damagedAt.Load()+1, what, setup)
	}
	setup += "; damage: " + what
	if err := sink.Close(); err != nil {
		return failed(1, len(all), "close after the damage: %v (%s)", err, setup)
	}
	rep, err := audit.VerifyFS(ctx, fsys, logDir, audit.WithTrustedKeys(vkey))
	if err == nil && rep != nil && rep.OK {
		return failed(1, len(all), "the damage was not detected: audit.VerifyFS reported the log OK (%s)", setup)
	}
	damaged, err := vfs.ReadFile(fsys, victim)
	if err != nil {
		return failed(0, len(all), "read the damaged segment: %v (%s)", err, setup)
	}
	s, err := audit.New(sinkOptions(fsys, skey, segSize, cpEvery)...)
	if err == nil {
		// Open checks a sealed segment by its header and seal only, so
		// damage inside its batches may reopen: then the open must have
		// left the segment as it was, and a reader must fail at the
		// damage rather than serve it.
		var rerr error
		for _, err := range s.Replay(ctx, time.Time{}, time.Time{}) {
			if err != nil {
				rerr = err
				break
			}
		}
		cerr := s.Close()
		after, err := vfs.ReadFile(fsys, victim)
		switch {
		case err != nil:
			return failed(0, len(all), "read the damaged segment after reopening: %v (%s)", err, setup)
		case !bytes.Equal(after, damaged):
			return failed(1, len(all), "reopening the damaged log changed the damaged sealed segment %s (%s)", path.Base(victim), setup)
		case !isErr(rerr, audit.ErrCorrupt):
			return failed(1, len(all), "the damaged log reopened and Replay did not fail with ErrCorrupt: %v (%s)", rerr, setup)
		case cerr != nil:
			return failed(1, len(all), "close the reopened damaged log: %v (%s)", cerr, setup)
		}
		return passed(1, len(all), "detected by Replay after a reopen that does not read sealed batches (%s)", setup)
	}
	if !isErr(err, audit.ErrCorrupt, audit.ErrIntegrity) {
		return failed(1, len(all), "reopening the damaged log failed, but not with ErrCorrupt or ErrIntegrity: %v (%s)", err, setup)
	}
	return passed(1, len(all), "detected (%s)", setup)
}

// damageFile damages the file name in place: kind 0 flips bits, 1 zeroes a
// block, 2 truncates it. The damage always changes the file.
func damageFile(fsys vfs.FS, name string, kind int, rng *rand.Rand) (string, error) {
	data, err := vfs.ReadFile(fsys, name)
	if err != nil {
		return "", err
	}
	size := int64(len(data))
	if size == 0 {
		return "", fmt.Errorf("%s is empty", name)
	}
	f, err := fsys.OpenReadWrite(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	switch kind {
	case 0:
		p := rng.Int64N(size)
		b := []byte{data[p] ^ byte(1<<rng.IntN(8))}
		if _, err := f.WriteAt(b, p); err != nil {
			return "", err
		}
		return fmt.Sprintf("bit flip in %s at offset %d", path.Base(name), p), nil
	case 1:
		lo := rng.Int64N(size) / 512 * 512
		hi := min(lo+512*(1+rng.Int64N(8)), size)
		if bytes.Count(data[lo:hi], []byte{0}) == int(hi-lo) {
			lo, hi = 0, min(512, size) // the header is never all zero
		}
		if _, err := f.WriteAt(make([]byte, hi-lo), lo); err != nil {
			return "", err
		}
		return fmt.Sprintf("zeroed %s [%d, %d)", path.Base(name), lo, hi), nil
	default:
		n := rng.Int64N(size)
		if err := f.Truncate(n); err != nil {
			return "", err
		}
		return fmt.Sprintf("truncated %s to %d of %d bytes", path.Base(name), n, size), nil
	}
}
