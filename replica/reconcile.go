// Package replica owns the copies of a log: today the local mirrors that
// audit.WithRedundancy keeps, and their repair. Reconcile makes the copies
// agree on the verified log with the most records, repairing damage in one
// copy from another, and reports every change (docs/architecture.md,
// "Redundancy is a filesystem, and repair happens before open").
//
// Verification is passed in (Verifier), so that this package does not
// import the root package: nothing below audit imports audit.
package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/ledger"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// Copy is one copy of the log: a directory on a filesystem. The first copy
// given to Reconcile is the primary.
type Copy struct {
	vfs.Replica
	// Writable is set when the copy may be repaired; other copies are only
	// read (their LOCK is taken all the same).
	Writable bool
}

// Options configure Reconcile.
type Options struct {
	// Verify verifies a copy, or a version of the log pieced together from
	// the copies. Required.
	Verify Verifier
	// Owner is written into each copy's LOCK file while it is held ("":
	// this process, checking and repairing mirror copies).
	Owner string
	// Keyless is set when Verify checks no signature (no trusted key):
	// every version's records are then also compared with the roots of the
	// checkpoints stored in any copy (see Report.Keyless).
	Keyless bool
	// Thorough verifies every copy even when all are byte for byte
	// identical (opening the log checks the primary anyway, and identical
	// copies cannot repair each other).
	Thorough bool
	// CreateMissing creates a writable copy whose directory does not exist
	// even when another copy holds segments. Without it, such a copy is
	// created only for a new log: a missing directory beside a log with
	// records is more likely a disk that is not mounted than a new one, and
	// a copy must not be rebuilt on the wrong disk behind the operator's
	// back.
	CreateMissing bool
	// Quorum is how many copies, the primary included, every
	// acknowledgement needed while the log was written (the
	// WithRedundancyQuorum copies, or every copy without it); 0 when not
	// known. With 2 or more, a record that no copy holds in a batch that
	// verifies, and that the primary verifies without, may be dropped as
	// never acknowledged, and is listed in Report.Dropped (every
	// condition: docs/architecture.md, "Records a repair may leave out");
	// with 0 or 1 such a record makes Reconcile fail with ErrDiverged.
	Quorum int
}

// Verifier verifies the log in dir on fsys, as audit.VerifyFS does, and
// returns what a repair needs of the report (nil only when verification
// could not start) and the error (nil when the log verifies). When roots
// is not nil (a keyless repair) it also compares the records with the
// roots of the stored checkpoints, dir's own and extra (see RootChecker),
// and fills roots in.
type Verifier func(ctx context.Context, fsys vfs.FS, dir string, roots *Roots, extra [][]byte) (*Result, error)

// Result is what Reconcile uses of a verification.
type Result struct {
	LastSeq     uint64        // the last sequence number read
	Checkpoints int           // stored signed checkpoints that verified
	TornTail    *wal.TailInfo // set when the log ends in a torn tail
	Problem     *Problem      // the first problem found (nil when none)
}

// Problem is the first problem a verification found.
type Problem struct {
	Code    integrity.Code
	Index   uint64 // the first leaf index not proven good
	Segment uint64 // with Offset, where damaged bytes lie (CodeRecordCorrupt)
	Offset  int64
	Text    string // the problem, described for people
}

// Reconcile makes the copies agree on the verified log with the most
// records and returns what it found and changed. The verified log is built
// from the copies' files (a file damaged in one copy is taken from
// another; a segment damaged in two copies at different places is spliced),
// checked to hold every record that verifies in any copy (else
// ErrDiverged, nothing changed), and written into every writable copy that
// differs: each file to a temporary file, fsynced and renamed into place,
// then the directory is fsynced. Each copy's LOCK is held meanwhile.
func Reconcile(ctx context.Context, opts Options, copies ...Copy) (*Report, error) {
	if opts.Verify == nil || len(copies) == 0 {
		return nil, errors.New("audit: replica.Reconcile needs a Verifier and at least one copy")
	}
	owner := opts.Owner
	if owner == "" {
		owner = defaultOwner()
	}
	r := &reconciler{ctx: ctx, check: opts.Verify, owner: owner, keyless: opts.Keyless, quorum: opts.Quorum}
	for _, c := range copies {
		r.add(c.Replica, c.Writable)
	}
	rep, err := r.run(opts.Thorough, opts.CreateMissing)
	if rep != nil {
		rep.Keyless = opts.Keyless
	}
	return rep, err
}

// OpenMirror is the repair-on-open step of audit.New with WithRedundancy:
// it reconciles dir and its mirrors (all writable; a missing mirror
// directory is created only for a new log, see Options.CreateMissing) and
// returns the vfs.Mirror that writes to every copy, and the report when a
// copy was changed (nil when none was).
func OpenMirror(ctx context.Context, fsys vfs.FS, dir string, mirrors []string, opts Options) (*vfs.Mirror, *Report, error) {
	copies := []Copy{{Replica: vfs.Replica{FS: fsys, Dir: dir}, Writable: true}}
	for _, d := range mirrors {
		copies = append(copies, Copy{Replica: vfs.Replica{FS: fsys, Dir: d}, Writable: true})
	}
	m, err := vfs.NewMirror(fsys, dir, mirrors...)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: WithRedundancy: %w", err)
	}
	rep, err := Reconcile(ctx, opts, copies...)
	if err != nil {
		return nil, nil, err
	}
	if !rep.Repaired() {
		rep = nil
	}
	return m, rep, nil
}

// defaultOwner is written into each copy's LOCK file when Options.Owner
// is empty.
func defaultOwner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("pid %d on host %s since %s (checking and repairing mirror copies)", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
}

// repairTemp is the temporary file a repair writes before renaming it into
// place. A leftover (a crash during a repair) is removed by the next one.
const repairTemp = "audit.repair.tmp"

// Owns reports whether a file name in a log directory is this package's
// own: the temporary file of a repair, and the shipper's cursor and its
// temporary file (see Cursor).
func Owns(name string) bool { return name == repairTemp || name == CursorFile || name == cursorTemp }

// AccessDir is the access log's subdirectory of a log directory (see
// audit.WithAccessLog): a log of its own, which is not copied to mirrors.
const AccessDir = "access"

// ManagedName reports whether a directory entry belongs to the log (and so
// is compared, copied and repaired): the files of every layer that keeps
// files in the log directory, each asked for its own names (wal.Owns,
// integrity.Owns, ledger.Owns, Owns). The lock file and anything foreign
// are left alone. The audit package also hands it to the WAL as
// wal.Options.Owned.
func ManagedName(name string) bool {
	if name == wal.LockName {
		return false
	}
	return wal.Owns(name) || integrity.Owns(name) || ledger.Owns(name) || Owns(name) || name == AccessDir
}

// A version is the contents of one file as a list of byte ranges, each read
// from one copy's file of the same name: usually a whole file of one copy,
// or a splice of two.
type version struct {
	size   int64
	pieces []piece // contiguous, covering [0, size)
}

type piece struct {
	off, n int64
	copy   int
}

func wholeVersion(c int, size int64) *version {
	if size == 0 {
		return &version{}
	}
	return &version{size: size, pieces: []piece{{0, size, c}}}
}

// splice returns v's bytes before x followed by d's bytes from x on.
func splice(v, d *version, x int64) *version {
	x = min(x, v.size)
	out := &version{size: max(x, d.size)}
	for _, p := range v.pieces {
		if p.off < x {
			out.pieces = append(out.pieces, piece{p.off, min(p.n, x-p.off), p.copy})
		}
	}
	for _, p := range d.pieces {
		if end := p.off + p.n; end > x {
			lo := max(p.off, x)
			out.pieces = append(out.pieces, piece{lo, end - lo, p.copy})
		}
	}
	// Merge neighbours from the same copy.
	merged := out.pieces[:0]
	for _, p := range out.pieces {
		if k := len(merged) - 1; k >= 0 && merged[k].copy == p.copy && merged[k].off+merged[k].n == p.off {
			merged[k].n += p.n
			continue
		}
		merged = append(merged, p)
	}
	out.pieces = merged
	return out
}

// only returns the copy that provides all of v, or -1.
func (v *version) only() int {
	if len(v.pieces) == 1 {
		return v.pieces[0].copy
	}
	if len(v.pieces) == 0 {
		return -2 // empty: any copy
	}
	return -1
}

// copyInfo is one copy of the log, as found.
type copyInfo struct {
	vfs.Replica
	writable bool
	files    map[string]int64 // managed, non-temporary files and their sizes
	temps    []string         // leftover temporary files
	segs     []uint64         // segment numbers, ascending
	state    CopyState
	verdict  verdict
}

// reconciler makes the copies of a log agree on the verified log with the
// most records, repairing damage from whichever copy has it intact.
type reconciler struct {
	ctx    context.Context
	check  Verifier
	owner  string
	copies []*copyInfo
	// keyless: no trusted key, so every view's records are also compared
	// with the roots of the stored checkpoints of every copy
	// (see Verifier), read once into storedCPs.
	keyless   bool
	storedCPs [][]byte
	// quorum is Options.Quorum; dropped collects the records the repaired
	// log leaves out as never acknowledged (see unacknowledged).
	quorum  int
	dropped []Dropped
	held    map[*copyInfo]map[uint64]bool // see salvageAfter
}

func (r *reconciler) add(rep vfs.Replica, writable bool) {
	rep.Dir = filepath.Clean(rep.Dir)
	r.copies = append(r.copies, &copyInfo{Replica: rep, writable: writable, state: CopyState{Dir: rep.Dir}})
}

// run reconciles the copies (see Options for thorough and createMissing).
func (r *reconciler) run(thorough, createMissing bool) (*Report, error) {
	var missing []*copyInfo
	var statErr error
	for _, c := range r.copies {
		fi, err := c.FS.Stat(c.Dir)
		switch {
		case err == nil && !fi.IsDir():
			return nil, fmt.Errorf("%w: %s is a regular file, not a directory", wal.ErrNotWAL, c.Dir)
		case err == nil:
		case errors.Is(err, fs.ErrNotExist) && c.writable:
			missing = append(missing, c)
			statErr = err
		default:
			return nil, fmt.Errorf("audit: cannot use %s as a copy of the log: %w", c.Dir, err)
		}
	}
	lock := func(c *copyInfo) (io.Closer, error) {
		l, err := c.FS.Lock(filepath.Join(c.Dir, wal.LockName), r.owner)
		if err != nil {
			if errors.Is(err, vfs.ErrLocked) {
				return nil, fmt.Errorf("audit: %s is already open by another Sink or process (%w); close that one first", c.Dir, err)
			}
			return nil, fmt.Errorf("audit: lock %s: %w", c.Dir, err)
		}
		return l, nil
	}
	hasLog := false
	for _, c := range r.copies {
		if slices.Contains(missing, c) {
			continue
		}
		l, err := lock(c)
		if err != nil {
			return nil, err
		}
		defer l.Close()
		if err := r.scan(c); err != nil {
			return nil, err
		}
		hasLog = hasLog || len(c.segs) > 0
	}
	if len(missing) > 0 && hasLog && !createMissing {
		var dirs []string
		for _, c := range missing {
			dirs = append(dirs, c.Dir)
		}
		return nil, fmt.Errorf("audit: copy directory %s does not exist, but another copy holds the log: if its disk is not mounted, mount it; if it is a new or replaced disk, create the directory (empty) and open the log again to fill it: %w", strings.Join(dirs, ", "), statErr)
	}
	for _, c := range missing {
		if err := vfs.MkdirAllDurable(c.FS, c.Dir, 0o750); err != nil {
			return nil, fmt.Errorf("audit: create directory %s: %w", c.Dir, err)
		}
		l, err := lock(c)
		if err != nil {
			return nil, err
		}
		defer l.Close()
		if err := r.scan(c); err != nil {
			return nil, err
		}
	}
	if !thorough {
		same, err := r.identical()
		if err != nil || same {
			return &Report{Copies: r.states()}, err
		}
	}
	return r.repair()
}

// scan lists a copy's files and removes leftover temporary files (which the
// log and its key store would remove on open anyway, but only from the
// primary).
func (r *reconciler) scan(c *copyInfo) error {
	names, err := c.FS.List(c.Dir)
	if err != nil {
		return fmt.Errorf("audit: list %s: %w", c.Dir, err)
	}
	c.files = map[string]int64{}
	for _, name := range names {
		if !ManagedName(name) {
			continue
		}
		fi, err := c.FS.Stat(filepath.Join(c.Dir, name))
		if err != nil {
			return fmt.Errorf("audit: stat %s: %w", filepath.Join(c.Dir, name), err)
		}
		if fi.IsDir() {
			continue
		}
		if strings.HasSuffix(name, ".tmp") {
			c.temps = append(c.temps, name)
			continue
		}
		c.files[name] = fi.Size()
		if n, ok := wal.ParseSegmentName(name); ok {
			c.segs = append(c.segs, n)
		}
	}
	slices.Sort(c.segs)
	c.state.Empty = len(c.segs) == 0
	if !c.writable || len(c.temps) == 0 {
		return nil
	}
	for _, t := range c.temps {
		if err := c.FS.Remove(filepath.Join(c.Dir, t)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit: remove leftover %s: %w", filepath.Join(c.Dir, t), err)
		}
	}
	if err := c.FS.SyncDir(c.Dir); err != nil {
		return fmt.Errorf("audit: sync %s: %w", c.Dir, err)
	}
	return nil
}

func (r *reconciler) states() []CopyState {
	out := make([]CopyState, len(r.copies))
	for i, c := range r.copies {
		out[i] = c.state
	}
	return out
}

// identical reports whether every copy holds the same files with the same
// bytes.
func (r *reconciler) identical() (bool, error) {
	p := r.copies[0]
	for i, c := range r.copies[1:] {
		if len(c.files) != len(p.files) {
			return false, nil
		}
		for name, size := range p.files {
			if s, ok := c.files[name]; !ok || s != size {
				return false, nil
			}
		}
		for name, size := range p.files {
			same, err := r.sameBytes(name, wholeVersion(0, size), wholeVersion(i+1, size))
			if err != nil || !same {
				return false, err
			}
		}
	}
	return true, nil
}

// version returns copy c's whole file name, or nil if it has none.
func (r *reconciler) version(c int, name string) *version {
	size, ok := r.copies[c].files[name]
	if !ok {
		return nil
	}
	return wholeVersion(c, size)
}

// wholeView is the view of copy c as it is.
func (r *reconciler) wholeView(c int) *view {
	v := &view{r: r, dir: r.copies[c].Dir, files: map[string]*version{}}
	for name := range r.copies[c].files {
		v.files[name] = r.version(c, name)
	}
	return v
}

// verdict is the outcome of verifying a view.
type verdict struct {
	rep   *Result
	err   error
	ok    bool   // the records verify (soft: only the tree nodes are damaged)
	soft  bool   // ok, but the stored tree nodes are damaged
	fatal error  // a problem no repair may touch (a newer format, ctx)
	blame blame  // the file to blame for the first problem
	roots *Roots // the keyless check of stored roots (nil with a key)
}

// blame names the file (and offset in it) where verification failed.
type blame struct {
	name  string
	off   int64
	known bool
}

func (vd *verdict) lastSeq() uint64 {
	if vd.rep == nil {
		return 0
	}
	return vd.rep.LastSeq
}

func (vd *verdict) checkpoints() int {
	if vd.rep == nil {
		return 0
	}
	return vd.rep.Checkpoints
}

func (vd *verdict) problem() string {
	if vd.err == nil {
		return ""
	}
	if vd.rep != nil && vd.rep.Problem != nil {
		return vd.rep.Problem.Text
	}
	return vd.err.Error()
}

// verify verifies a view and judges the outcome.
func (r *reconciler) verify(v *view) verdict {
	var roots *Roots
	if r.keyless {
		roots = &Roots{}
	}
	rep, err := r.check(r.ctx, v.fs(), v.dir, roots, r.storedCPs)
	vd := verdict{rep: rep, err: err, roots: roots}
	if err == nil {
		vd.ok = true
		return vd
	}
	if r.ctx.Err() != nil {
		vd.fatal = r.ctx.Err()
		return vd
	}
	if errors.Is(err, wal.ErrUnknownVersion) {
		vd.fatal = err
		return vd
	}
	if rep != nil && rep.Problem != nil && rep.Problem.Code == integrity.CodeTreeNodeDamaged {
		vd.ok, vd.soft = true, true
	}
	vd.blame = v.blame(rep, err)
	return vd
}

// repair assesses every copy, builds the best verified log, checks that it
// drops no record any copy holds intact, and writes it into every writable
// copy.
func (r *reconciler) repair() (*Report, error) {
	if r.keyless {
		for _, c := range r.copies {
			// A damaged checkpoints file contributes nothing here; the
			// view holding it fails verification and is repaired.
			if cps, err := integrity.ReadCheckpointLog(c.FS, filepath.Join(c.Dir, integrity.CheckpointsFile)); err == nil {
				r.storedCPs = append(r.storedCPs, cps...)
			}
		}
	}
	nonEmpty := 0
	for i, c := range r.copies {
		if c.state.Empty {
			continue
		}
		nonEmpty++
		c.verdict = r.verify(r.wholeView(i))
		if c.verdict.fatal != nil {
			return nil, fmt.Errorf("audit: verify %s: %w", c.Dir, c.verdict.fatal)
		}
		c.state.Verified = c.verdict.ok
		c.state.LastSeq = c.verdict.lastSeq()
		c.state.Problem = c.verdict.problem()
		if !c.verdict.ok {
			c.state.LastSeq = 0
		}
	}
	report := &Report{Copies: r.states()}
	var best *candidate
	if nonEmpty == 0 {
		// No copy holds a segment: the log is new (or every segment was
		// lost, which no copy can help with). Make the copies agree on the
		// primary's other files, if any, so that opening works alike.
		best = &candidate{base: 0, v: r.wholeView(0)}
	} else {
		for i, c := range r.copies {
			if c.state.Empty {
				continue
			}
			cand, err := r.build(i)
			if err != nil {
				return nil, err
			}
			if cand != nil && (best == nil || cand.better(best)) {
				best = cand
			}
		}
		if best == nil {
			return nil, r.noCopyVerifies()
		}
		report.LastSeq = best.vd.lastSeq()
		if rr := best.vd.roots; rr != nil {
			report.RootsChecked, report.RootsSize = rr.Checked, rr.Size
			switch {
			case rr.Checked > 0:
			case rr.Stored == 0 && rr.Unreadable == 0:
				report.Unchecked = "no copy stores a checkpoint, so the records were compared only between the copies; give the public key (--key) of a signed log"
			default:
				report.Unchecked = fmt.Sprintf("none of the %d stored checkpoint(s) could be compared with the records (%d cannot be parsed); the records were compared only between the copies", rr.Stored+rr.Unreadable, rr.Unreadable)
			}
		}
		if err := r.checkNoRecordDropped(best); err != nil {
			return nil, err
		}
	}
	plan, err := r.plan(best)
	if err != nil {
		return nil, err
	}
	report.Actions = plan.actions
	report.Dropped = r.dropped
	if err := r.apply(plan); err != nil {
		return report, err
	}
	return report, nil
}

// noCopyVerifies builds New's error when no verified log can be made: the
// primary's damage exactly as opening it reports it (segment, file and
// offset), and what was wrong with each other copy.
func (r *reconciler) noCopyVerifies() error {
	var others []string
	var first error
	for _, c := range r.copies {
		if c.state.Empty {
			others = append(others, fmt.Sprintf("%s is empty", c.Dir))
			continue
		}
		err := c.verdict.err
		if _, cerr := wal.Check(r.ctx, c.FS, c.Dir, nil); cerr != nil {
			err = cerr // the log-level damage, as Open reports it
		}
		if first == nil {
			first = err
		}
		others = append(others, fmt.Sprintf("%s: %v", c.Dir, c.verdict.problem()))
	}
	hint := ""
	if r.keyless {
		for _, c := range r.copies {
			if p := c.verdict.rep; p != nil && p.Problem != nil && (p.Problem.Code == integrity.CodeRecordsAltered || p.Problem.Code == integrity.CodeTruncated) {
				hint = "; could not verify which records are authentic: without a key only the stored checkpoints' roots can be checked (not their signatures), and no copy reproduces them: give the log's public key (--key) to check the signatures"
				break
			}
		}
	}
	return fmt.Errorf("audit: no copy of the log verifies and none can be pieced together from the others (%s)%s: %w", strings.Join(others, "; "), hint, first)
}

// candidate is a verified log made from the copies.
type candidate struct {
	base int
	v    *view
	vd   verdict
}

// better orders candidates: more records first, then more verified signed
// checkpoints (a damaged last checkpoint looks like a torn one), then
// undamaged tree nodes, then fewer bytes taken from other copies, then the
// primary.
func (c *candidate) better(o *candidate) bool {
	if a, b := c.vd.lastSeq(), o.vd.lastSeq(); a != b {
		return a > b
	}
	if a, b := c.vd.checkpoints(), o.vd.checkpoints(); a != b {
		return a > b
	}
	if c.vd.soft != o.vd.soft {
		return !c.vd.soft
	}
	if a, b := c.v.foreign(c.base), o.v.foreign(o.base); a != b {
		return a < b
	}
	return c.base < o.base
}

// build starts from copy b's files and, while verification fails, replaces
// the file it blames with another copy's version of it (or, for a segment,
// with this version up to the damage followed by another copy's from there
// on), keeping each change only if verification then gets further. It
// returns nil when no verified log can be made from b.
func (r *reconciler) build(b int) (*candidate, error) {
	v := r.wholeView(b)
	filled := false
	// A segment missing inside b's range is taken from a copy that has it.
	if segs := r.copies[b].segs; len(segs) > 0 {
		for k := uint64(1); k < segs[len(segs)-1]; k++ {
			name := wal.SegmentName(k)
			if _, ok := v.files[name]; ok {
				continue
			}
			for d := range r.copies {
				if ver := r.version(d, name); ver != nil {
					v.files[name], filled = ver, true
					break
				}
			}
		}
	}
	seen := map[blame]bool{}
	vd := r.copies[b].verdict // b's own files, verified by repair
	if filled {
		vd = r.verify(v)
	}
	for range 8 * (len(v.files) + len(r.copies)) {
		if vd.fatal != nil {
			return nil, fmt.Errorf("audit: verify %s: %w", r.copies[b].Dir, vd.fatal)
		}
		if (vd.ok && !vd.soft) || !vd.blame.known {
			break
		}
		seen[vd.blame] = true
		next, nvd, err := r.improve(v, vd, seen)
		if err != nil {
			return nil, err
		}
		if next == nil {
			break
		}
		v, vd = next, nvd
	}
	if vd.fatal != nil {
		return nil, fmt.Errorf("audit: verify %s: %w", r.copies[b].Dir, vd.fatal)
	}
	if !vd.ok {
		return nil, nil
	}
	return &candidate{base: b, v: v, vd: vd}, nil
}

// improve tries the other versions of the blamed file and returns the first
// view that verifies further (and its verdict), or nil.
func (r *reconciler) improve(v *view, vd verdict, seen map[blame]bool) (*view, verdict, error) {
	name := vd.blame.name
	cur := v.files[name]
	_, isSeg := wal.ParseSegmentName(name)
	for d := range r.copies {
		dv := r.version(d, name)
		if dv == nil {
			continue
		}
		tries := []*version{dv}
		if isSeg && cur != nil && vd.blame.off > 0 {
			tries = append(tries, splice(cur, dv, vd.blame.off))
		}
		for _, try := range tries {
			if cur != nil {
				same, err := r.sameBytes(name, cur, try)
				if err != nil {
					return nil, verdict{}, err
				}
				if same {
					continue
				}
			}
			next := v.with(name, try)
			nvd := r.verify(next)
			if nvd.fatal != nil {
				return nil, verdict{}, fmt.Errorf("audit: verify: %w", nvd.fatal)
			}
			if progressed(vd, nvd, seen) {
				return next, nvd, nil
			}
		}
	}
	return nil, verdict{}, nil
}

// progressed reports whether verification got further from old to new.
func progressed(old, new verdict, seen map[blame]bool) bool {
	switch {
	case new.ok && !new.soft:
		return true
	case old.ok && !new.ok:
		return false // the records verified before: never trade that away
	case new.ok && !old.ok:
		return true
	case !new.blame.known || seen[new.blame]:
		return false
	case new.blame.name == old.blame.name:
		return new.blame.off > old.blame.off
	}
	return true
}

// checkNoRecordDropped makes sure the chosen log holds every record that
// verifies in any copy, with the same contents: the repair may add records,
// never drop or change one. Each copy is read with wal.Salvage in aggressive
// mode, so records after damage count too.
func (r *reconciler) checkNoRecordDropped(best *candidate) error {
	for i, c := range r.copies {
		if c.state.Empty {
			continue
		}
		same := true
		for name := range c.files {
			w, ok := best.v.files[name]
			if !ok || w.only() != i && w.only() != -2 {
				same = false
				break
			}
		}
		if same {
			continue // the chosen log is this copy's files (and maybe more)
		}
		if err := r.compareRecords(c, best); err != nil {
			return err
		}
	}
	return nil
}

// compareRecords checks every record that verifies in c against the same
// record of the chosen log. A record after the chosen log's end is
// accepted only as never acknowledged (unacknowledged), and then listed in
// r.dropped.
func (r *reconciler) compareRecords(c *copyInfo, best *candidate) error {
	next, stop := iter.Pull2(wal.NewReader(best.v.fs(), best.v.dir).Records(r.ctx, 1))
	defer stop()
	var cur wal.Record
	have := false
	var conflict error
	_, err := wal.Salvage(r.ctx, c.FS, c.Dir, wal.SalvageAggressive, func(rec wal.Record) error {
		for !have || cur.Seq < rec.Seq {
			got, err, ok := next()
			if !ok {
				why, err := r.unacknowledged(c, rec, best)
				if err != nil {
					return err
				}
				if why == "" {
					conflict = fmt.Errorf("%w: %s holds record %d (segment %d, offset %d), which verifies, but the repaired log would end before it", ErrDiverged, c.Dir, rec.Seq, rec.Segment, rec.Offset)
					return conflict
				}
				r.dropped = append(r.dropped, Dropped{Dir: c.Dir, Seq: rec.Seq, Segment: rec.Segment, Offset: rec.Offset, Reason: why})
				return nil
			}
			if err != nil {
				return err
			}
			cur, have = got, true
		}
		if cur.Seq != rec.Seq || cur.Type != rec.Type || cur.Time != rec.Time || !bytes.Equal(cur.Payload, rec.Payload) {
			conflict = fmt.Errorf("%w: record %d in %s (segment %d, offset %d) verifies but differs from record %d of the repaired log; the copies were written by different histories: keep both directories and decide by hand which one is the audit trail", ErrDiverged, rec.Seq, c.Dir, rec.Segment, rec.Offset, cur.Seq)
			return conflict
		}
		return nil
	}, nil)
	if conflict != nil {
		return conflict
	}
	if err != nil && !errors.Is(err, wal.ErrNotWAL) {
		return fmt.Errorf("audit: read %s to compare it with the repaired log: %w", c.Dir, err)
	}
	return nil
}

// plan is the list of changes to make, per copy.
type plan struct {
	actions []Action
	steps   []step
}

type step struct {
	copy int
	name string
	ver  *version // nil: remove
}

// plan decides, for every writable copy, which files to add, replace and
// remove so that it holds the chosen log.
func (r *reconciler) plan(best *candidate) (*plan, error) {
	p := &plan{}
	names := slices.Sorted(maps.Keys(best.v.files))
	for i, c := range r.copies {
		if !c.writable {
			continue
		}
		for _, name := range names {
			w := best.v.files[name]
			have := r.version(i, name)
			op := Added
			if have != nil {
				same, err := r.sameBytes(name, have, w)
				if err != nil {
					return nil, err
				}
				if same {
					continue
				}
				eq, err := r.sameIntactTail(i, name, have, best)
				if err != nil {
					return nil, err
				}
				if eq {
					continue // differs only in a torn tail: Open truncates it in every copy
				}
				op = Replaced
			}
			p.steps = append(p.steps, step{copy: i, name: name, ver: w})
			p.actions = append(p.actions, Action{Dir: c.Dir, File: name, Op: op, From: r.describe(w), Bytes: w.size, Reason: r.reason(i, name, op, best)})
		}
		for _, name := range slices.Sorted(maps.Keys(c.files)) {
			if _, ok := best.v.files[name]; ok {
				continue
			}
			p.steps = append(p.steps, step{copy: i, name: name})
			p.actions = append(p.actions, Action{Dir: c.Dir, File: name, Op: Removed, Reason: "not part of the verified log (it holds no record the repaired log lacks)"})
		}
	}
	return p, nil
}

// sameIntactTail reports whether copy i's version of the chosen log's last
// segment differs from the chosen one only after the end of the records
// that verify in both (a torn, never acknowledged tail, or zeros filled
// ahead, which opening the log truncates in every copy alike).
func (r *reconciler) sameIntactTail(i int, name string, have *version, best *candidate) (bool, error) {
	c := r.copies[i]
	num, ok := wal.ParseSegmentName(name)
	if !ok || !c.verdict.ok || len(c.segs) == 0 || c.segs[len(c.segs)-1] != num {
		return false, nil
	}
	if last := lastSeg(best.v.files); last != num {
		return false, nil
	}
	// Where a version stops holding anything: at its torn tail, or after
	// its last non-zero sector (the zeros filled ahead of the records,
	// which a crash can leave in one copy and not yet in the other, are
	// not content, and opening the log cuts them in every copy).
	end := func(rep *Result, v *version) (int64, error) {
		if rep != nil && rep.TornTail != nil && rep.TornTail.Segment == num {
			return rep.TornTail.Offset, nil
		}
		f := r.open(name, v)
		defer f.Close()
		nz, err := wal.NonZeroEnd(f, 0, v.size)
		if err != nil {
			return 0, err
		}
		return min(v.size, (nz+wal.SectorSize-1)/wal.SectorSize*wal.SectorSize), nil
	}
	w := best.v.files[name]
	e1, err := end(c.verdict.rep, have)
	if err != nil {
		return false, err
	}
	e2, err := end(best.vd.rep, w)
	if err != nil || e1 != e2 {
		return false, err
	}
	return r.sameBytes(name, &version{size: e1, pieces: clip(have.pieces, e1)}, &version{size: e1, pieces: clip(w.pieces, e1)})
}

func clip(ps []piece, end int64) []piece {
	var out []piece
	for _, p := range ps {
		if p.off < end {
			out = append(out, piece{p.off, min(p.n, end-p.off), p.copy})
		}
	}
	return out
}

func lastSeg(files map[string]*version) uint64 {
	var last uint64
	for name := range files {
		if n, ok := wal.ParseSegmentName(name); ok && n > last {
			last = n
		}
	}
	return last
}

// describe names the copies (and ranges) a version comes from.
func (r *reconciler) describe(v *version) string {
	switch c := v.only(); {
	case c >= 0:
		return r.copies[c].Dir
	case c == -2:
		return "(empty file)"
	}
	parts := make([]string, len(v.pieces))
	for i, p := range v.pieces {
		parts[i] = fmt.Sprintf("%s [%d, %d)", r.copies[p.copy].Dir, p.off, p.off+p.n)
	}
	return strings.Join(parts, " + ")
}

// reason explains why copy i's file is added or replaced.
func (r *reconciler) reason(i int, name string, op Op, best *candidate) string {
	c := r.copies[i]
	switch {
	case c.state.Empty && len(c.files) == 0:
		return "the copy was empty (a new mirror, or one whose files were lost)"
	case !c.verdict.ok && c.verdict.blame.known && c.verdict.blame.name == name:
		return "damaged: " + c.verdict.problem()
	case op == Added:
		return "missing from this copy"
	case c.state.Empty:
		return "the copy held no segment"
	case !c.verdict.ok:
		return "differs from the verified version (the copy does not verify: " + c.verdict.problem() + ")"
	case c.verdict.soft && name == integrity.NodesFile:
		return "damaged: " + c.verdict.problem()
	case c.state.LastSeq < best.vd.lastSeq():
		return fmt.Sprintf("out of date: the copy verifies through sequence %d, the log through %d (a crash between the writes to the copies, or a copy that was offline)", c.state.LastSeq, best.vd.lastSeq())
	}
	return "differs from the verified version (left so by a crash between the writes to the copies)"
}

// apply makes the planned changes: each new file is written to a temporary
// file, fsynced and renamed into place; then removals; then the directory
// is fsynced. If a change fails, the error lists the changes already made,
// so that even an interrupted repair is not silent.
func (r *reconciler) apply(p *plan) error {
	var done []string
	fail := func(err error) error {
		if len(done) == 0 {
			return err
		}
		return fmt.Errorf("%w (the repair was interrupted after these changes: %s)", err, strings.Join(done, "; "))
	}
	touched := map[int]bool{}
	for i, s := range p.steps {
		if s.ver != nil {
			if err := r.install(s.copy, s.name, s.ver); err != nil {
				return fail(err)
			}
			touched[s.copy] = true
			done = append(done, p.actions[i].String())
		}
	}
	for i, s := range p.steps {
		if s.ver == nil {
			c := r.copies[s.copy]
			if err := c.FS.Remove(filepath.Join(c.Dir, s.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fail(fmt.Errorf("audit: repair: remove %s: %w", filepath.Join(c.Dir, s.name), err))
			}
			touched[s.copy] = true
			done = append(done, p.actions[i].String())
		}
	}
	for i := range r.copies {
		if touched[i] {
			if err := r.copies[i].FS.SyncDir(r.copies[i].Dir); err != nil {
				return fail(fmt.Errorf("audit: repair: sync %s: %w", r.copies[i].Dir, err))
			}
		}
	}
	return nil
}

// install writes version ver of name into copy i, atomically.
func (r *reconciler) install(i int, name string, ver *version) (err error) {
	c := r.copies[i]
	tmp := filepath.Join(c.Dir, repairTemp)
	dst := filepath.Join(c.Dir, name)
	if err := c.FS.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("audit: repair: remove %s: %w", tmp, err)
	}
	create := c.FS.Create
	if integrity.Private(name) || ledger.Private(name) { // key material: owner only
		create = func(n string) (vfs.File, error) { return vfs.CreatePrivate(c.FS, n) }
	}
	f, err := create(tmp)
	if err != nil {
		return fmt.Errorf("audit: repair: create %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			c.FS.Remove(tmp)
		}
	}()
	src := r.open(name, ver)
	defer src.Close()
	buf := make([]byte, min(1<<20, max(ver.size, 1)))
	for off := int64(0); off < ver.size; {
		n := int(min(int64(len(buf)), ver.size-off))
		if _, err := src.ReadAt(buf[:n], off); err != nil && !(errors.Is(err, io.EOF) && off+int64(n) == ver.size) {
			return fmt.Errorf("audit: repair: read %s: %w", name, err)
		}
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			return fmt.Errorf("audit: repair: write %s: %w", tmp, err)
		}
		off += int64(n)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("audit: repair: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("audit: repair: close %s: %w", tmp, err)
	}
	if err := c.FS.Rename(tmp, dst); err != nil {
		c.FS.Remove(tmp)
		return fmt.Errorf("audit: repair: rename %s to %s: %w", tmp, dst, err)
	}
	return nil
}

// sameBytes reports whether two versions of a file have the same contents.
func (r *reconciler) sameBytes(name string, a, b *version) (bool, error) {
	if a.size != b.size {
		return false, nil
	}
	if slices.Equal(a.pieces, b.pieces) {
		return true, nil
	}
	fa, fb := r.open(name, a), r.open(name, b)
	defer fa.Close()
	defer fb.Close()
	const chunk = 1 << 20
	bufLen := min(chunk, max(a.size, 1)) // small files need small buffers
	ba, bb := make([]byte, bufLen), make([]byte, bufLen)
	for off := int64(0); off < a.size; off += bufLen {
		n := int(min(bufLen, a.size-off))
		if _, err := fa.ReadAt(ba[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return false, fmt.Errorf("audit: compare %s: %w", name, err)
		}
		if _, err := fb.ReadAt(bb[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return false, fmt.Errorf("audit: compare %s: %w", name, err)
		}
		if !bytes.Equal(ba[:n], bb[:n]) {
			return false, nil
		}
		if err := r.ctx.Err(); err != nil {
			return false, err
		}
	}
	return true, nil
}

// open returns a reader of a version of name.
func (r *reconciler) open(name string, v *version) *viewFile {
	return &viewFile{r: r, name: name, path: name, ver: v}
}

// view is a read-only directory whose files are versions pieced from the
// copies; verification and readers run on it through viewFS.
type view struct {
	r     *reconciler
	dir   string
	files map[string]*version
}

// with returns a copy of v with name's version replaced.
func (v *view) with(name string, ver *version) *view {
	n := &view{r: v.r, dir: v.dir, files: make(map[string]*version, len(v.files)+1)}
	for k, x := range v.files {
		n.files[k] = x
	}
	n.files[name] = ver
	return n
}

// foreign counts the bytes of v not taken from copy base.
func (v *view) foreign(base int) int64 {
	var n int64
	for _, ver := range v.files {
		for _, p := range ver.pieces {
			if p.copy != base {
				n += p.n
			}
		}
	}
	return n
}

func (v *view) fs() vfs.FS { return viewFS{v} }

// blame names the file to blame for a failed verification.
func (v *view) blame(rep *Result, err error) blame {
	if rep != nil && rep.Problem != nil {
		p := rep.Problem
		switch p.Code {
		case integrity.CodeRecordCorrupt:
			if p.Segment > 0 {
				return blame{name: wal.SegmentName(p.Segment), off: p.Offset, known: true}
			}
			return v.segmentOf(p.Index + 1)
		case integrity.CodeTreeNodeDamaged:
			return blame{name: integrity.NodesFile, known: true}
		case integrity.CodeCheckpointSignature, integrity.CodeCheckpointOrder:
			return blame{name: integrity.CheckpointsFile, known: true}
		case integrity.CodeTruncated:
			if last := lastSeg(v.files); last > 0 {
				return blame{name: wal.SegmentName(last), known: true}
			}
		default: // records altered, key rotation, anchor
			return v.segmentOf(p.Index + 1)
		}
	}
	var cle *integrity.CheckpointLogCorruptError
	if errors.As(err, &cle) {
		return blame{name: integrity.CheckpointsFile, off: cle.Offset, known: true}
	}
	if errors.Is(err, integrity.ErrCheckpointLogCorrupt) {
		return blame{name: integrity.CheckpointsFile, known: true}
	}
	var ce *wal.CorruptError
	if errors.As(err, &ce) {
		return blame{name: wal.SegmentName(ce.Segment), off: ce.Offset, known: true}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		if name := filepath.Base(pe.Path); ManagedName(name) {
			return blame{name: name, known: true}
		}
	}
	return blame{}
}

// segmentOf blames the segment holding sequence number seq: the last one
// whose header's first sequence number is ≤ seq (the first segment if none
// says so).
func (v *view) segmentOf(seq uint64) blame {
	var nums []uint64
	for name := range v.files {
		if n, ok := wal.ParseSegmentName(name); ok {
			nums = append(nums, n)
		}
	}
	if len(nums) == 0 {
		return blame{}
	}
	slices.Sort(nums)
	pick := nums[0]
	for _, n := range nums {
		hdr, err := wal.ReadSegmentHeader(v.fs(), filepath.Join(v.dir, wal.SegmentName(n)))
		if err != nil {
			continue
		}
		if hdr.FirstSeq <= seq {
			pick = n
		}
	}
	return blame{name: wal.SegmentName(pick), known: true}
}

// viewFS is a read-only vfs.FS over a view: its directory is view.dir.
type viewFS struct{ v *view }

func (f viewFS) file(name string) (string, *version, bool) {
	c := filepath.Clean(name)
	if filepath.Dir(c) != f.v.dir {
		return "", nil, false
	}
	base := filepath.Base(c)
	ver, ok := f.v.files[base]
	return base, ver, ok
}

func roErr(op, name string) error { return &fs.PathError{Op: op, Path: name, Err: syscall.EROFS} }

func (f viewFS) Create(name string) (vfs.File, error)        { return nil, roErr("open", name) }
func (f viewFS) OpenReadWrite(name string) (vfs.File, error) { return nil, roErr("open", name) }
func (f viewFS) Remove(name string) error                    { return roErr("remove", name) }
func (f viewFS) Rename(o, n string) error                    { return roErr("rename", o) }
func (f viewFS) MkdirAll(d string, _ fs.FileMode) error      { return roErr("mkdir", d) }
func (f viewFS) SyncDir(d string) error                      { return roErr("sync", d) }
func (f viewFS) Lock(n, _ string) (io.Closer, error)         { return nil, roErr("open", n) }

func (f viewFS) Open(name string) (vfs.File, error) {
	base, ver, ok := f.file(name)
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &viewFile{r: f.v.r, name: base, path: name, ver: ver}, nil
}

func (f viewFS) List(dir string) ([]string, error) {
	if filepath.Clean(dir) != f.v.dir {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: fs.ErrNotExist}
	}
	return slices.Sorted(maps.Keys(f.v.files)), nil
}

func (f viewFS) Stat(name string) (fs.FileInfo, error) {
	if filepath.Clean(name) == f.v.dir {
		return viewInfo{name: filepath.Base(f.v.dir), dir: true}, nil
	}
	base, ver, ok := f.file(name)
	if !ok {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return viewInfo{name: base, size: ver.size}, nil
}

type viewInfo struct {
	name string
	size int64
	dir  bool
}

func (i viewInfo) Name() string { return i.name }
func (i viewInfo) Size() int64  { return i.size }
func (i viewInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o750
	}
	return 0o640
}
func (i viewInfo) ModTime() time.Time { return time.Time{} }
func (i viewInfo) IsDir() bool        { return i.dir }
func (i viewInfo) Sys() any           { return nil }

// viewFile reads a version, opening each copy's file on first use.
type viewFile struct {
	r     *reconciler
	name  string // base name
	path  string // as opened
	ver   *version
	files map[int]vfs.File
}

func (f *viewFile) handle(c int) (vfs.File, error) {
	if h, ok := f.files[c]; ok {
		return h, nil
	}
	cp := f.r.copies[c]
	h, err := cp.FS.Open(filepath.Join(cp.Dir, f.name))
	if err != nil {
		return nil, err
	}
	if f.files == nil {
		f.files = map[int]vfs.File{}
	}
	f.files[c] = h
	return h, nil
}

func (f *viewFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.path, Err: syscall.EINVAL}
	}
	if off >= f.ver.size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), f.ver.size)
	for _, pc := range f.ver.pieces {
		lo, hi := max(off, pc.off), min(end, pc.off+pc.n)
		if lo >= hi {
			continue
		}
		h, err := f.handle(pc.copy)
		if err != nil {
			return 0, err
		}
		n, err := h.ReadAt(p[lo-off:hi-off], lo)
		if int64(n) < hi-lo {
			if err == nil || errors.Is(err, io.EOF) {
				err = &fs.PathError{Op: "read", Path: h.Name(), Err: io.ErrUnexpectedEOF}
			}
			return int(lo - off + int64(n)), err
		}
	}
	if n := int(end - off); n < len(p) {
		return n, io.EOF
	}
	return len(p), nil
}

func (f *viewFile) Close() error {
	var errs []error
	for _, h := range f.files {
		errs = append(errs, h.Close())
	}
	f.files = nil
	return errors.Join(errs...)
}

func (f *viewFile) WriteAt([]byte, int64) (int, error) { return 0, roErr("write", f.path) }
func (f *viewFile) Sync() error                        { return roErr("sync", f.path) }
func (f *viewFile) Datasync() error                    { return roErr("sync", f.path) }
func (f *viewFile) Truncate(int64) error               { return roErr("truncate", f.path) }
func (f *viewFile) Size() (int64, error)               { return f.ver.size, nil }
func (f *viewFile) CheckLinked() error                 { return roErr("stat", f.path) }
func (f *viewFile) Name() string                       { return f.path }
