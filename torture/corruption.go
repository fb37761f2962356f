package torture

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
	"github.com/willibrandon/mtlog/core"
)

// RandomCorruption damages a closed log (sealed segments, a final signed
// checkpoint covering every record) on a simulated disk: bit flips, zeroed
// 4 KiB blocks, truncation of a segment, garbage appended to a segment, or
// two of these at once, at positions drawn inside the written segment
// files.
//
// What must be detected. The acknowledged data of a closed log is every
// byte of every segment file as Close left it: segment headers, batches
// (headers, records, padding) and seals; Close seals the last segment, so
// nothing in it is an unacknowledged tail. Damage that changes any of these
// bytes, or removes any (truncation), must be detected: audit.VerifyFS with
// the public key reports a problem, or reopening the log fails (ErrCorrupt
// or ErrIntegrity). Truncating the last segment at a batch boundary looks
// exactly like a crash's torn tail to the bytes alone (docs/wal-format.md),
// so this relies on the signed checkpoint that covers the whole log: that
// is the point of checkpoints, and this scenario proves they close the gap.
// Bytes appended after a segment's end are not acknowledged data: no record
// is altered or lost by them. The log may report them or ignore them (zeros
// after the last seal read as a torn tail, which Open cuts off), but if it
// reports nothing then reading the log must return exactly the
// acknowledged records, byte for byte, and nothing else. In every case,
// success with any record altered, missing or added is a failure.
//
// What salvage must recover. wal.Salvage in aggressive mode must return
// only records identical to those written, and every record whose own
// bytes (28-byte header and payload) the damage did not touch, except
// where the format by design cannot tell damage from a crash or cannot
// read a segment at all: (1) in the last segment, records in batches after
// the last batch that is wholly intact, since with no intact batch after
// them the damage is indistinguishable from an unacknowledged torn tail,
// which salvage does not mine; (2) a segment whose header was damaged and
// that has no intact batch header left to recover its salt from.
//
// With Mirror set (All sets RedundancyCheck), one iteration in eight
// write the log with a mirror copy, damage only the primary, and require
// that the repair restores the log: after it, reopening succeeds, every
// acknowledged event is present and byte-identical, and the log verifies
// with every record covered.
type RandomCorruption struct {
	// Mirror, if set, adds the mirror criterion (see MirrorCheck).
	Mirror *MirrorCheck
}

// MirrorCheck is the hook for the mirror part of RandomCorruption, for
// redundancy (audit.WithRedundancy): the log is written with a mirror on
// the same simulated disk, the primary alone is damaged, and Repair must
// restore every acknowledged event.
//
// All registers RandomCorruption with RedundancyCheck, the check of
// audit.WithRedundancy; another redundancy mechanism (a cloud backend, say)
// plugs in here with its own MirrorCheck.
type MirrorCheck struct {
	// Options returns the Sink options that mirror the log to mirrorDir on
	// the same filesystem.
	Options func(mirrorDir string) []audit.Option
	// Repair repairs the damaged primary log in dir on fsys from its
	// mirror in mirrorDir. After it, the primary must hold every
	// acknowledged event, byte for byte, and verify with the key.
	Repair func(ctx context.Context, fsys vfs.FS, dir, mirrorDir, skey string) error
}

// RedundancyCheck returns the MirrorCheck of audit.WithRedundancy: the log
// is mirrored to a second directory, and reopening it with the same option
// repairs the damaged primary from the mirror.
func RedundancyCheck() *MirrorCheck {
	quiet := audit.WithFailureHandler(func(*core.LogEvent, error) {}) // repairs are reported there
	return &MirrorCheck{
		Options: func(mirror string) []audit.Option { return []audit.Option{audit.WithRedundancy(mirror), quiet} },
		Repair: func(ctx context.Context, fsys vfs.FS, dir, mirror, skey string) error {
			s, err := audit.New(append(sinkOptions(fsys, skey, 1<<20, 1<<20), audit.WithWAL(dir), audit.WithRedundancy(mirror), quiet)...)
			if err != nil {
				return err
			}
			return s.Close()
		},
	}
}

// mirrorDir is where the mirror of the log lives when a MirrorCheck is set.
const mirrorDir = "/mirror"

// Name returns "RandomCorruption".
func (RandomCorruption) Name() string { return "RandomCorruption" }

// Doc describes the scenario and its pass criteria.
func (RandomCorruption) Doc() string {
	return "Damage to a closed, fully checkpointed log: bit flips, zeroed 4 KiB blocks, truncation, garbage appended, or two at once, " +
		"inside the segment files. Pass: any change to acknowledged bytes (every byte of every segment as Close left it) is detected " +
		"(audit.VerifyFS with the key reports a problem, or reopening fails); appended garbage is either detected or harmless (the log " +
		"reads back exactly as written); never success with a record altered, missing or added. wal.Salvage (aggressive) returns only " +
		"records identical to those written, and every record whose bytes were not touched, except records after the last intact batch " +
		"of the last segment (indistinguishable from a torn tail) and segments left with no readable header or batch header (salt lost). " +
		"With a mirror configured (hook for audit.WithRedundancy), repair restores every acknowledged event."
}

// recSpan locates one record in the log.
type recSpan struct {
	seq        uint64
	seg        uint64
	batch      int // index into the segment's batches
	start, end int64
}

// segLayout is one segment file of the log.
type segLayout struct {
	num     uint64
	path    string
	data    []byte     // contents before the damage
	batches [][2]int64 // [offset, end) of each batch
	recs    []recSpan  // its records
	touched []bool     // per byte of data: changed or removed by the damage
	after   []byte     // contents after the damage
	damage  []string   // what was done to this file
}

// Run runs one iteration.
func (rc RandomCorruption) Run(ctx context.Context, it Iteration) Outcome {
	rng := it.Rand()
	skey, vkey := keyPair(it.Seed)
	writers := 1 + rng.IntN(2)
	perWriter := 2 + rng.IntN(8)
	segSize := 2048 + 512*rng.Int64N(6)
	cpEvery := 1 + rng.IntN(4)
	base := time.Unix(1_700_000_000, 0).UTC()
	mirrored := rc.Mirror != nil && rng.IntN(8) == 0 // one iteration in eight
	setup := fmt.Sprintf("%d writers × %d events, segment size %d, checkpoint every %d, mirrored: %v", writers, perWriter, segSize, cpEvery, mirrored)

	// Write and close the log.
	fsys := vfs.NewCrashFS()
	var extra []audit.Option
	if mirrored {
		extra = rc.Mirror.Options(mirrorDir)
	}
	sink, err := audit.New(sinkOptions(fsys, skey, segSize, cpEvery, extra...)...)
	if err != nil {
		return failed(0, 0, "open a new log: %v (%s)", err, setup)
	}
	acked := newAcks()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	evs := make([][]*audit.Event, writers)
	for g := range evs {
		for i := range perWriter {
			evs[g] = append(evs[g], makeEvent(rng, g, i, base.Add(time.Duration(g*1000+i)*time.Millisecond)))
		}
	}
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, ev := range evs[g] {
				r, err := sink.Write(ctx, ev)
				if err != nil {
					errs <- err
					return
				}
				acked.add(r.Seq, encode(ev))
			}
		}()
	}
	wg.Wait()
	if err := sink.Close(); err != nil {
		return failed(0, 0, "close: %v (%s)", err, setup)
	}
	close(errs)
	if err := <-errs; err != nil {
		return failed(0, 0, "write on a healthy disk: %v (%s)", err, setup)
	}
	all := acked.snapshot()
	orig, _, err := readLog(ctx, fsys, logDir)
	if err != nil {
		return failed(0, len(all), "read the intact log: %v (%s)", err, setup)
	}
	if err := checkAcked(orig, all); err != nil {
		return failed(0, len(all), "the intact log: %v (%s)", err, setup)
	}
	segs, err := layout(fsys, orig)
	if err != nil {
		return failed(0, len(all), "%v (%s)", err, setup)
	}

	// Damage a copy of it: redraw until the damage changes something.
	var dmg *vfs.CrashFS
	var what string
	for try := 0; ; try++ {
		for _, s := range segs {
			s.after, s.touched, s.damage = slices.Clone(s.data), make([]bool, len(s.data)), nil
		}
		n := 1
		if rng.IntN(5) == 0 {
			n = 2
		}
		for range n {
			damageOnce(rng, segs)
		}
		changed, appended := false, false
		var parts []string
		for _, s := range segs {
			markTouched(s)
			changed = changed || slices.Contains(s.touched, true)
			appended = appended || len(s.after) > len(s.data)
			for _, d := range s.damage {
				parts = append(parts, fmt.Sprintf("segment %d: %s", s.num, d))
			}
		}
		what = strings.Join(parts, "; ")
		if changed || appended {
			dmg = fsys.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
			for _, s := range segs {
				if !bytes.Equal(s.after, s.data) {
					if err := rewrite(dmg, s.path, s.after); err != nil {
						return failed(0, len(all), "apply damage: %v", err)
					}
				}
			}
			break
		}
		if try == 20 {
			return failed(0, len(all), "could not draw damage that changes anything (%s)", setup)
		}
	}
	ackChanged := false
	for _, s := range segs {
		ackChanged = ackChanged || slices.Contains(s.touched, true)
	}
	setup += "; damage: " + what
	faults := 1
	if strings.Contains(what, ";") {
		faults = 2
	}

	// Detection.
	detected, how := detect(ctx, dmg, skey, vkey)
	if !detected {
		got, _, rerr := readLog(ctx, dmg, logDir)
		identical := rerr == nil && sameRecords(got, orig) == ""
		switch {
		case ackChanged:
			return failed(faults, len(all), "damage to acknowledged bytes was not detected: audit.VerifyFS reported the log OK and it reopened (%s)", setup)
		case !identical:
			why := sameRecords(got, orig)
			if rerr != nil {
				why = rerr.Error()
			}
			return failed(faults, len(all), "appended garbage went undetected and changed what the log reads back: %s (%s)", why, setup)
		}
		how = "not reported; the log reads back exactly as written"
	}

	// Salvage.
	if msg := checkSalvage(ctx, dmg, segs, orig); msg != "" {
		return failed(faults, len(all), "salvage: %s (detected: %s; %s)", msg, how, setup)
	}

	// Mirror repair.
	if mirrored {
		if err := rc.Mirror.Repair(ctx, dmg, logDir, mirrorDir, skey); err != nil {
			return failed(faults, len(all), "repair from the mirror: %v (%s)", err, setup)
		}
		if _, err := reopenCheck(ctx, dmg, skey, vkey, all, nil, extra...); err != nil {
			return failed(faults, len(all), "after repair from the mirror: %v (%s)", err, setup)
		}
	}
	return passed(faults, len(all), "detected: %s (%s)", how, setup)
}

// detect reports whether the damage is reported: by audit.VerifyFS with the
// key, or by a refusal to reopen the log (on a copy, since reopening may cut
// a torn tail).
func detect(ctx context.Context, dmg *vfs.CrashFS, skey, vkey string) (bool, string) {
	rep, err := audit.VerifyFS(ctx, dmg, logDir, audit.WithTrustedKeys(vkey))
	switch {
	case err != nil:
		return true, "verify: " + err.Error()
	case rep == nil || !rep.OK:
		return true, fmt.Sprintf("verify: not OK: %+v", rep)
	}
	cp := dmg.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
	s, err := audit.New(sinkOptions(cp, skey, 1<<20, 1<<20)...)
	if err != nil {
		return true, "reopen: " + err.Error()
	}
	s.Close()
	return false, ""
}

// sameRecords describes the first difference between two logs' records,
// or returns "".
func sameRecords(got, want map[uint64]stored) string {
	for seq, w := range want {
		g, ok := got[seq]
		if !ok {
			return fmt.Sprintf("record %d is missing", seq)
		}
		if g.Type != w.Type || g.Time != w.Time || !bytes.Equal(g.Payload, w.Payload) {
			return fmt.Sprintf("record %d differs", seq)
		}
	}
	for seq := range got {
		if _, ok := want[seq]; !ok {
			return fmt.Sprintf("record %d was never written", seq)
		}
	}
	return ""
}

// layout reads the segment files and places every record and batch in
// them. Record.Offset is the offset of the record's batch; records of one
// batch come in order, packed after the 48-byte batch header, each a 28-byte
// header and its payload, then (in a tagged batch) the 36-byte tag trailer;
// a batch is padded to a 512-byte boundary.
func layout(fsys vfs.FS, recs map[uint64]stored) ([]*segLayout, error) {
	names, err := fsys.List(logDir)
	if err != nil {
		return nil, err
	}
	var segs []*segLayout
	byNum := map[uint64]*segLayout{}
	for _, name := range names {
		num, ok := wal.ParseSegmentName(name)
		if !ok {
			continue
		}
		p := path.Join(logDir, name)
		data, err := vfs.ReadFile(fsys, p)
		if err != nil {
			return nil, err
		}
		s := &segLayout{num: num, path: p, data: data}
		segs = append(segs, s)
		byNum[num] = s
	}
	slices.SortFunc(segs, func(a, b *segLayout) int { return cmpU64(a.num, b.num) })
	seqs := make([]uint64, 0, len(recs))
	for seq := range recs {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	var cur *segLayout
	var batchOff, pos int64 = -1, 0
	for _, seq := range seqs {
		r := recs[seq]
		s := byNum[r.Segment]
		if s == nil {
			return nil, fmt.Errorf("layout: record %d in segment %d, which has no file", seq, r.Segment)
		}
		if s != cur || r.Offset != batchOff {
			cur, batchOff, pos = s, r.Offset, r.Offset+48
			s.batches = append(s.batches, [2]int64{r.Offset, 0})
		}
		end := pos + 28 + int64(len(r.Payload))
		s.recs = append(s.recs, recSpan{seq: seq, seg: s.num, batch: len(s.batches) - 1, start: pos, end: end})
		stop := end
		if r.Tagged {
			stop += 36
		}
		s.batches[len(s.batches)-1][1] = (stop + 511) / 512 * 512
		pos = end
	}
	for _, s := range segs {
		if len(s.batches) > 0 && s.batches[len(s.batches)-1][1] != int64(len(s.data)) {
			return nil, fmt.Errorf("layout: segment %d is %d bytes but its last batch ends at %d", s.num, len(s.data), s.batches[len(s.batches)-1][1])
		}
	}
	return segs, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// rewrite replaces the contents of name.
func rewrite(fsys vfs.FS, name string, data []byte) error {
	f, err := fsys.OpenReadWrite(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(int64(len(data))); err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		return err
	}
	return f.Sync()
}

// damageOnce applies one random kind of damage to the after bytes of a
// random segment.
func damageOnce(rng *rand.Rand, segs []*segLayout) {
	var total int64
	for _, s := range segs {
		total += int64(len(s.after))
	}
	pick := func() (*segLayout, int64) { // a uniformly random byte of the log
		p := rng.Int64N(max(total, 1))
		for _, s := range segs {
			if p < int64(len(s.after)) {
				return s, p
			}
			p -= int64(len(s.after))
		}
		return segs[len(segs)-1], 0
	}
	switch k := rng.IntN(8); {
	case k < 3: // bit flips
		s, p := pick()
		if len(s.after) == 0 {
			return
		}
		bits := 1 + rng.IntN(3)
		for range bits {
			q := min(p+rng.Int64N(8), int64(len(s.after))-1)
			s.after[q] ^= 1 << rng.IntN(8)
		}
		s.damage = append(s.damage, fmt.Sprintf("%d bit flip(s) near offset %d", bits, p))
	case k < 5: // a zeroed 4 KiB block
		s, p := pick()
		lo := p / 4096 * 4096
		if rng.IntN(3) == 0 {
			lo = p / 512 * 512 // an unaligned (sector-aligned) block
		}
		hi := min(lo+4096, int64(len(s.after)))
		clear(s.after[lo:hi])
		s.damage = append(s.damage, fmt.Sprintf("zeroed [%d, %d)", lo, hi))
	case k < 7: // truncation
		s, p := pick()
		if rng.IntN(3) == 0 {
			p = p / 512 * 512 // at a sector (often a batch) boundary
		}
		s.after = s.after[:p]
		s.damage = append(s.damage, fmt.Sprintf("truncated to %d bytes", p))
	default: // garbage appended
		s := segs[rng.IntN(len(segs))]
		if rng.IntN(2) == 0 {
			s = segs[len(segs)-1]
		}
		n := 1 + rng.IntN(1500)
		g := make([]byte, n)
		switch rng.IntN(3) {
		case 0: // zeros: looks like a torn tail
		case 1: // a copy of earlier bytes of the log: plausible-looking
			src := segs[rng.IntN(len(segs))].data
			if len(src) > 0 {
				off := rng.IntN(len(src))
				copy(g, src[off:])
			}
		default:
			for i := range g {
				g[i] = byte(rng.Uint32())
			}
		}
		s.after = append(s.after, g...)
		s.damage = append(s.damage, fmt.Sprintf("%d bytes of garbage appended", n))
	}
}

// markTouched marks the bytes of the original contents that the damage
// changed or removed.
func markTouched(s *segLayout) {
	for i := range s.data {
		s.touched[i] = i >= len(s.after) || s.after[i] != s.data[i]
	}
}

// checkSalvage runs wal.Salvage (aggressive) on the damaged log and checks
// what it returns against the records that were written.
func checkSalvage(ctx context.Context, dmg vfs.FS, segs []*segLayout, orig map[uint64]stored) string {
	got := map[uint64]stored{}
	var bad string
	_, err := wal.Salvage(ctx, dmg, logDir, wal.SalvageAggressive, func(r wal.Record) error {
		w, ok := orig[r.Seq]
		switch {
		case !ok:
			bad = fmt.Sprintf("returned record %d, which was never written", r.Seq)
		case w.Type != r.Type || w.Time != r.Time || !bytes.Equal(w.Payload, r.Payload):
			bad = fmt.Sprintf("returned record %d altered", r.Seq)
		}
		got[r.Seq] = stored{Type: r.Type}
		return nil
	}, nil)
	if err != nil {
		return fmt.Sprintf("failed: %v", err)
	}
	if bad != "" {
		return bad
	}
	last := segs[len(segs)-1]
	for _, s := range segs {
		excuse := len(s.batches) // records in batches with index > excuse are excused
		if s == last {
			excuse = -1
			for i := len(s.batches) - 1; i >= 0; i-- {
				if !anyTrue(s.touched, s.batches[i][0], s.batches[i][1]) {
					excuse = i
					break
				}
			}
		}
		if anyTrue(s.touched, 0, 512) {
			saltKnown := false
			for _, b := range s.batches {
				if !anyTrue(s.touched, b[0], b[0]+48) {
					saltKnown = true
					break
				}
			}
			if !saltKnown {
				continue
			}
		}
		for _, r := range s.recs {
			if r.batch > excuse || anyTrue(s.touched, r.start, r.end) {
				continue
			}
			if _, ok := got[r.seq]; !ok {
				return fmt.Sprintf("record %d (segment %d, bytes [%d, %d), untouched by the damage) was not salvaged", r.seq, s.num, r.start, r.end)
			}
		}
	}
	return ""
}

func anyTrue(b []bool, from, to int64) bool {
	from, to = max(from, 0), min(to, int64(len(b)))
	return from < to && slices.Contains(b[from:to], true)
}
