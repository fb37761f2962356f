package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
	"golang.org/x/mod/sumdb/note"
)

// Errors of Restore (errors.Is).
var (
	// ErrNotEmpty: the directory to restore into holds files.
	ErrNotEmpty = errors.New("replica: the restore directory is not empty")
	// ErrNotVerified: the restored log does not verify, or is not
	// complete (a segment missing from every source, checkpoints beyond
	// the records found). The report says what is wrong.
	ErrNotVerified = errors.New("replica: the restored log does not verify")
)

// RestoreOptions configure Restore.
type RestoreOptions struct {
	// Verify verifies the restored log (required): the same Verifier that
	// Reconcile uses, with the trusted keys in it when Keys is not empty.
	Verify Verifier
	// Keys are the log's genesis public keys. With keys, a checkpoint
	// object whose signature does not verify is not taken; without, no
	// signature is checked and the records are compared with the roots of
	// the checkpoints found (a weaker check: see docs/replication.md).
	Keys []string
}

// RestoreReport is what Restore found and wrote.
type RestoreReport struct {
	Dir         string
	Sources     []string          // the backends' names, in the order given
	Segments    []RestoredSegment // the segment files written, ascending
	Checkpoints int               // signed checkpoints written
	Bad         []BadObject       // objects not taken, and why
	Unreachable []BadObject       // sources that could not be listed (Key is "")
	LastSeq     uint64            // the last sequence number of the restored log
	Verified    bool              // the restored log verified
	Problem     *Problem          // why it did not (nil when it did)
}

// RestoredSegment is one segment file written by Restore.
type RestoredSegment struct {
	Segment  uint64
	FirstSeq uint64 // as the object's name says
	LastSeq  uint64
	Size     int64
	Key      string   // the object's key
	Holders  []string // the backends holding exactly these bytes
	Versions int      // distinct versions found of this segment number
}

// version of one segment number: distinct bytes, and who holds them.
type segVersion struct {
	obj     SegmentObject
	size    int64
	holders []int             // source indexes
	support int               // sources whose versions are all prefixes of it or it of them
	agrees  map[[32]byte]bool // the versions that are prefixes of it, or it of them
}

// Restore rebuilds a log in dir on fsys from the objects of one or more
// backends (docs/replication.md, "Restore, compare and anchoring"). dir
// must not exist or be empty. Every object's bytes are checked against the
// hash its name carries; per segment number the version chosen is the one
// most sources agree with (their versions are prefixes of it, or it of
// theirs), the longest on a tie; a version with which the restored log does
// not verify is replaced by the next, whatever the vote. The checkpoints
// file is rebuilt from the checkpoint objects. Each file is written to a
// temporary file, synced and renamed, and the directory synced.
//
// The report lists the objects not taken and why. The error matches
// ErrNotVerified when the result does not verify or is not complete (the
// report's Problem says why); the files are then left in dir for
// inspection.
func Restore(ctx context.Context, fsys vfs.FS, dir string, opts RestoreOptions, sources ...backends.Backend) (*RestoreReport, error) {
	if opts.Verify == nil || len(sources) == 0 || dir == "" {
		return nil, errors.New("replica: Restore needs a Verifier, a directory and at least one backend")
	}
	trusted, err := genesisVerifiers(opts.Keys)
	if err != nil {
		return nil, err
	}
	if names, err := fsys.List(dir); err == nil && len(names) > 0 {
		return nil, fmt.Errorf("%w: %s holds %d file(s): restore into a new or empty directory", ErrNotEmpty, dir, len(names))
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("replica: restore: %w", err)
	}
	rep := &RestoreReport{Dir: dir}
	var lists []*remoteObjects
	for _, b := range sources {
		rep.Sources = append(rep.Sources, b.Name())
		ro, err := listRemote(ctx, b)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			rep.Unreachable = append(rep.Unreachable, BadObject{Backend: b.Name(), Reason: err.Error(), Err: err})
			ro = &remoteObjects{b: b}
		}
		rep.Bad = append(rep.Bad, ro.bad...)
		lists = append(lists, ro)
	}
	total := 0
	for _, ro := range lists {
		total += len(ro.segs) + len(ro.cps)
	}
	if total == 0 {
		return rep, fmt.Errorf("%w: %s: no object under %s or %s (check the URL's bucket and prefix, and that the sink ships to it)", ErrEmptyBackend, strings.Join(rep.Sources, ", "), SegmentsPrefix, CheckpointsPrefix)
	}
	if err := vfs.MkdirAllDurable(fsys, dir, 0o700); err != nil {
		return nil, fmt.Errorf("replica: restore: %w", err)
	}
	r := &restorer{ctx: ctx, fsys: fsys, dir: dir, lists: lists, rep: rep}
	if err := r.checkpoints(trusted); err != nil {
		return rep, err
	}
	cands, err := r.segments()
	if err != nil {
		return rep, err
	}
	if err := r.verify(opts, cands); err != nil {
		return rep, err
	}
	return rep, nil
}

type restorer struct {
	ctx   context.Context
	fsys  vfs.FS
	dir   string
	lists []*remoteObjects
	rep   *RestoreReport
}

func (r *restorer) bad(bo BadObject) { r.rep.Bad = append(r.rep.Bad, bo) }

// checkpoints writes the checkpoints file from every checkpoint object that
// is intact (and signed by a trusted key when trusted is not nil), each
// distinct note once, ordered by tree size.
func (r *restorer) checkpoints(trusted note.Verifiers) error {
	type cpNote struct {
		cp   integrity.Checkpoint
		data []byte
	}
	var notes []cpNote
	seen := map[[32]byte]bool{}
	for _, ro := range r.lists {
		for _, o := range ro.cps {
			data, bo := fetch(r.ctx, ro.b, o.Key(), o.SHA256)
			if bo != nil {
				r.bad(*bo)
				continue
			}
			if seen[o.SHA256] {
				continue
			}
			cp, err := checkNote(data, o, trusted)
			if err != nil {
				r.bad(BadObject{Backend: ro.b.Name(), Key: o.Key(), Reason: err.Error(), Err: err})
				continue
			}
			seen[o.SHA256] = true
			notes = append(notes, cpNote{cp, data})
		}
	}
	if err := r.ctx.Err(); err != nil {
		return err
	}
	slices.SortStableFunc(notes, func(a, b cpNote) int {
		if c := cmpU64(a.cp.Size, b.cp.Size); c != 0 {
			return c
		}
		return a.cp.Time.Compare(b.cp.Time)
	})
	if len(notes) == 0 {
		return nil
	}
	tmp := filepath.Join(r.dir, repairTemp)
	l, err := integrity.OpenCheckpointLog(r.fsys, tmp)
	if err != nil {
		return fmt.Errorf("replica: restore: %w", err)
	}
	for _, n := range notes {
		if err := l.Append(n.data); err != nil {
			l.Close()
			return fmt.Errorf("replica: restore: %w", err)
		}
	}
	if err := l.Close(); err != nil {
		return fmt.Errorf("replica: restore: %w", err)
	}
	if err := r.fsys.Rename(tmp, filepath.Join(r.dir, integrity.CheckpointsFile)); err != nil {
		return fmt.Errorf("replica: restore: %w", err)
	}
	if err := r.fsys.SyncDir(r.dir); err != nil {
		return fmt.Errorf("replica: restore: sync %s: %w", r.dir, err)
	}
	r.rep.Checkpoints = len(notes)
	return nil
}

// segments fetches every version of every segment number, checks it
// against its name, and returns per segment number the candidates in order
// of preference (see Restore).
func (r *restorer) segments() (map[uint64][]*segVersion, error) {
	type held struct {
		src int
		obj SegmentObject
	}
	bySeg := map[uint64][]held{}
	for i, ro := range r.lists {
		for _, o := range ro.segs {
			bySeg[o.Segment] = append(bySeg[o.Segment], held{src: i, obj: o})
		}
	}
	out := map[uint64][]*segVersion{}
	for num, hs := range bySeg {
		var vs []*segVersion
		byHash := map[[32]byte]*segVersion{}
		data := map[[32]byte][]byte{}
		perSrc := map[int][][32]byte{}
		for _, h := range hs {
			b := r.lists[h.src].b
			d, bo := fetch(r.ctx, b, h.obj.Key(), h.obj.SHA256)
			if bo != nil {
				r.bad(*bo)
				continue
			}
			v := byHash[h.obj.SHA256]
			if v == nil {
				v = &segVersion{obj: h.obj, size: int64(len(d))}
				byHash[h.obj.SHA256] = v
				data[h.obj.SHA256] = d
				vs = append(vs, v)
			}
			if !slices.Contains(v.holders, h.src) {
				v.holders = append(v.holders, h.src)
				perSrc[h.src] = append(perSrc[h.src], h.obj.SHA256)
			}
		}
		if err := r.ctx.Err(); err != nil {
			return nil, err
		}
		consistent := func(a, b [32]byte) bool {
			x, y := data[a], data[b]
			if len(x) > len(y) {
				x, y = y, x
			}
			return bytes.HasPrefix(y, x)
		}
		for _, v := range vs {
			v.agrees = map[[32]byte]bool{}
			for _, w := range vs {
				if consistent(v.obj.SHA256, w.obj.SHA256) {
					v.agrees[w.obj.SHA256] = true
				}
			}
			for _, sums := range perSrc {
				ok := true
				for _, s := range sums {
					ok = ok && consistent(s, v.obj.SHA256)
				}
				if ok {
					v.support++
				}
			}
		}
		slices.SortStableFunc(vs, func(a, b *segVersion) int {
			if a.support != b.support {
				return b.support - a.support
			}
			if a.size != b.size {
				return cmpU64(uint64(b.size), uint64(a.size))
			}
			return bytes.Compare(a.obj.SHA256[:], b.obj.SHA256[:])
		})
		if len(vs) > 0 {
			out[num] = vs
		}
	}
	return out, nil
}

// install writes version v of a segment into the directory: fetched again
// from a holder (and checked against its hash again), written to a
// temporary file, synced, renamed into place and the directory synced.
func (r *restorer) install(v *segVersion) error {
	var data []byte
	for _, src := range v.holders {
		d, bo := fetch(r.ctx, r.lists[src].b, v.obj.Key(), v.obj.SHA256)
		if bo == nil {
			data = d
			break
		}
		r.bad(*bo)
	}
	if data == nil {
		return fmt.Errorf("%w: %s: no backend returns its bytes any more", ErrBadObject, v.obj.Key())
	}
	return writeDurable(r.fsys, r.dir, wal.SegmentName(v.obj.Segment), data)
}

// writeDurable writes data as dir/name: a temporary file, synced, renamed
// into place, and the directory synced.
func writeDurable(fsys vfs.FS, dir, name string, data []byte) error {
	if err := vfs.ReplaceFile(fsys, filepath.Join(dir, name), filepath.Join(dir, repairTemp), data, false); err != nil {
		return fmt.Errorf("replica: restore: write %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

// verify installs each segment's first candidate and verifies the log;
// while it fails in a segment that has another candidate, the next is
// installed in its place. The versions replaced are reported bad once a
// later one gets the verification past that segment; when none does (the
// fault lies elsewhere, say a segment missing from every source), the
// first is put back and nothing is blamed on them.
func (r *restorer) verify(opts RestoreOptions, cands map[uint64][]*segVersion) error {
	nums := slices.Sorted(maps.Keys(cands))
	chosen := map[uint64]int{}
	for _, n := range nums {
		if err := r.installNext(cands, chosen, n); err != nil {
			return err
		}
	}
	type trial struct {
		n     uint64
		first int
		prob  *Problem
		bad   []BadObject
	}
	var pending *trial
	for {
		var roots *Roots
		if len(opts.Keys) == 0 {
			roots = new(Roots)
		}
		res, err := opts.Verify(r.ctx, r.fsys, r.dir, roots, nil)
		if ctxErr := r.ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		verified := res != nil && res.Problem == nil && err == nil
		n, ok := r.blame(res, cands, chosen)
		if pending != nil && (verified || !ok || n != pending.n) {
			r.rep.Bad = append(r.rep.Bad, pending.bad...) // the swap got past pending.n
			pending = nil
		}
		if verified {
			r.rep.Verified, r.rep.LastSeq = true, res.LastSeq
			r.report(cands, chosen)
			r.conflicts(cands, chosen)
			return nil
		}
		prob := problemOf(res, err)
		if ok && chosen[n]+1 >= len(cands[n]) && pending != nil {
			// No version of n gets past it: put the first back.
			chosen[n], prob = pending.first, pending.prob
			if err := r.installNext(cands, chosen, n); err != nil {
				return err
			}
		}
		if !ok || chosen[n]+1 >= len(cands[n]) || pending != nil && chosen[n] == pending.first {
			r.rep.Problem = prob
			if res != nil {
				r.rep.LastSeq = res.LastSeq
			}
			r.report(cands, chosen)
			return fmt.Errorf("%w: %s", ErrNotVerified, prob.Text)
		}
		if pending == nil {
			pending = &trial{n: n, first: chosen[n], prob: prob}
		}
		v := cands[n][chosen[n]]
		for _, src := range v.holders {
			reason := "the restored log does not verify with this version: " + prob.Text
			pending.bad = append(pending.bad, BadObject{Backend: r.lists[src].b.Name(), Key: v.obj.Key(), Reason: reason, Err: fmt.Errorf("%w: %s", ErrBadObject, reason)})
		}
		chosen[n]++
		if err := r.installNext(cands, chosen, n); err != nil {
			return err
		}
	}
}

func (r *restorer) installNext(cands map[uint64][]*segVersion, chosen map[uint64]int, n uint64) error {
	for chosen[n] < len(cands[n]) {
		err := r.install(cands[n][chosen[n]])
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrBadObject) {
			return err
		}
		chosen[n]++
	}
	return fmt.Errorf("%w: segment %d: no version can be read", ErrNotVerified, n)
}

// blame returns the segment number a failed verification points at.
func (r *restorer) blame(res *Result, cands map[uint64][]*segVersion, chosen map[uint64]int) (uint64, bool) {
	if res == nil || res.Problem == nil {
		return 0, false
	}
	p := res.Problem
	if p.Code == integrity.CodeRecordCorrupt && p.Segment > 0 {
		_, ok := cands[p.Segment]
		return p.Segment, ok
	}
	nums := slices.Sorted(maps.Keys(cands))
	if len(nums) == 0 {
		return 0, false
	}
	if p.Code == integrity.CodeTruncated {
		return nums[len(nums)-1], true
	}
	seq := p.Index + 1
	pick := nums[0]
	for _, n := range nums {
		if cands[n][chosen[n]].obj.FirstSeq <= seq {
			pick = n
		}
	}
	return pick, true
}

func (r *restorer) report(cands map[uint64][]*segVersion, chosen map[uint64]int) {
	for _, n := range slices.Sorted(maps.Keys(cands)) {
		v := cands[n][chosen[n]]
		rs := RestoredSegment{Segment: n, FirstSeq: v.obj.FirstSeq, LastSeq: v.obj.LastSeq, Size: v.size, Key: v.obj.Key(), Versions: len(cands[n])}
		for _, src := range v.holders {
			rs.Holders = append(rs.Holders, r.lists[src].b.Name())
		}
		r.rep.Segments = append(r.rep.Segments, rs)
	}
}

// conflicts names the versions not taken that the version taken (with
// which the log verified) does not extend, and that no earlier step named.
func (r *restorer) conflicts(cands map[uint64][]*segVersion, chosen map[uint64]int) {
	for _, n := range slices.Sorted(maps.Keys(cands)) {
		v := cands[n][chosen[n]]
		for _, w := range cands[n][chosen[n]+1:] {
			if v.agrees[w.obj.SHA256] {
				continue
			}
			for _, src := range w.holders {
				reason := fmt.Sprintf("differs from the version taken (%s, with which the log verifies): altered, or of another log", v.obj.Key())
				r.bad(BadObject{Backend: r.lists[src].b.Name(), Key: w.obj.Key(), Reason: reason, Err: fmt.Errorf("%w: %s", ErrBadObject, reason)})
			}
		}
	}
}

func problemOf(res *Result, err error) *Problem {
	if res != nil && res.Problem != nil {
		return res.Problem
	}
	if err != nil {
		return &Problem{Text: err.Error()}
	}
	return &Problem{Text: "the log ends in a torn tail"}
}
