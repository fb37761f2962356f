package monitor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/export"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// WALOptions configure a WAL watcher. The zero value of every field but
// Dir means its default.
type WALOptions struct {
	// Dir is the log's directory.
	Dir string
	// FS is the filesystem the log is read through; only its read
	// methods (Open, List, Stat) are called. Default vfs.OS().
	FS vfs.FS
	// Poll is how often the watcher looks for new records once it has
	// read everything. Default 200ms.
	Poll time.Duration
	// Window is the span events/s is averaged over. Default 10s.
	Window time.Duration
	// Lock, if set, reports whether a process holds the log's lock, and
	// who. It must not create or modify anything.
	Lock func(dir string) (held bool, owner string, err error)
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// rootsKept is how many recent tree roots (one per batch) the watcher
// remembers, to check a checkpoint stored after the watcher read past its
// tree size.
const rootsKept = 4096

// WAL watches a log directory, read-only, while another process may write
// it. Run tails it; Snapshot may be called at any time from any goroutine.
type WAL struct {
	opts     WALOptions
	caughtUp chan struct{} // closed when Run first reached the end
	done     chan struct{} // closed when Run returned

	mu sync.Mutex
	s  walState
}

// walState is what Run has read, guarded by WAL.mu.
type walState struct {
	records, events, lastSeq uint64
	levels                   map[string]uint64
	last                     *EventInfo
	undecodable              uint64
	firstUndecodable         string

	caught      bool
	caughtAt    uint64   // records read when the end was first reached
	samples     []sample // (time, events) at each idle after catching up
	chain       *integrity.Builder
	unavailable string // why no root can be rebuilt, "" if one can

	roots    map[uint64]integrity.Hash // tree size -> root, at batch ends
	rootFIFO []uint64
	cpFile   int64          // size of the checkpoints file when last read
	cpRead   int            // stored checkpoints taken in
	cpNewest []byte         // the newest stored checkpoint, as stored
	pending  []pendingCheck // stored checkpoints beyond what was read
	matched  int
	skipped  int
	covered  uint64
	altered  string // the first checkpoint the records do not reproduce
	cpErr    string // the checkpoints file cannot be read

	err error // what ended Run, nil while it runs or when ctx ended it
}

type sample struct {
	t      time.Time
	events uint64
}

type pendingCheck struct {
	size uint64
	root integrity.Hash
}

// NewWAL returns a watcher of the log in opts.Dir; Run starts it.
func NewWAL(opts WALOptions) *WAL {
	if opts.Poll <= 0 {
		opts.Poll = 200 * time.Millisecond
	}
	if opts.Window <= 0 {
		opts.Window = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.FS == nil {
		opts.FS = vfs.OS()
	}
	return &WAL{
		opts:     opts,
		caughtUp: make(chan struct{}),
		done:     make(chan struct{}),
		s: walState{
			levels: map[string]uint64{},
			chain:  integrity.NewBuilder(),
			roots:  map[uint64]integrity.Hash{},
			cpFile: -1,
		},
	}
}

// CaughtUp is closed once Run has read every record that was in the log
// when it started (or has ended without getting there).
func (w *WAL) CaughtUp() <-chan struct{} { return w.caughtUp }

// Done is closed when Run has returned.
func (w *WAL) Done() <-chan struct{} { return w.done }

// Err returns what ended Run: nil while it runs, or when ctx ended it.
// Damage matches wal.ErrCorrupt; a directory that is not a log,
// wal.ErrNotWAL.
func (w *WAL) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.s.err
}

// Run tails the log from its first record until ctx is done (it then
// returns nil) or the log cannot be read on (it returns why: damage
// matches wal.ErrCorrupt). Call it once.
func (w *WAL) Run(ctx context.Context) error {
	defer close(w.done)
	r := wal.NewReader(w.opts.FS, w.opts.Dir)
	opts := wal.FollowOptions{Poll: w.opts.Poll, Idle: w.idle}
	var err error
	for rec, rerr := range r.Follow(ctx, 0, opts) {
		if rerr != nil {
			err = rerr
			break
		}
		w.add(rec)
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		err = nil
	}
	w.mu.Lock()
	w.s.err = err
	w.mu.Unlock()
	w.markCaughtUp()
	return err
}

func (w *WAL) markCaughtUp() {
	select {
	case <-w.caughtUp:
	default:
		close(w.caughtUp)
	}
}

// add takes in one record.
func (w *WAL) add(rec wal.Record) {
	var ev *event.Event
	var decErr error
	if rec.Type == wal.RecordEvent {
		ev, decErr = event.Decode(rec.Payload)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	s := &w.s
	s.records++
	s.lastSeq = rec.Seq
	switch {
	case rec.Type != wal.RecordEvent:
	case decErr != nil:
		s.undecodable++
		if s.firstUndecodable == "" {
			s.firstUndecodable = fmt.Sprintf("event %d (segment %d, offset %d) cannot be decoded: %v", rec.Seq, rec.Segment, rec.Offset, decErr)
		}
	default:
		s.events++
		s.levels[strings.ToLower(ev.Level.String())]++
		s.last = &EventInfo{Seq: rec.Seq, Time: ev.Timestamp, Level: ev.Level.String(), Message: export.Render(ev)}
	}
	if s.unavailable != "" {
		return
	}
	if rec.Seq != s.chain.Size()+1 {
		s.unavailable = fmt.Sprintf("the log starts at sequence number %d, not 1: the records' Merkle roots cannot be rebuilt, so checkpoints are not checked (batch checksums still are)", rec.Seq)
		return
	}
	s.chain.Append(rec.Time, uint8(rec.Type), integrity.PayloadHash(rec.Payload))
	if rec.BatchEnd {
		s.remember(s.chain.Size(), s.chain.Root())
	}
}

// remember keeps the root of the tree of size n and checks the stored
// checkpoints waiting for it.
func (s *walState) remember(n uint64, root integrity.Hash) {
	s.roots[n] = root
	s.rootFIFO = append(s.rootFIFO, n)
	if len(s.rootFIFO) > rootsKept {
		delete(s.roots, s.rootFIFO[0])
		s.rootFIFO = s.rootFIFO[1:]
	}
	for len(s.pending) > 0 && s.pending[0].size <= n {
		s.check(s.pending[0])
		s.pending = s.pending[1:]
	}
}

// check compares a stored checkpoint with the root the records produce at
// its size, when it is known.
func (s *walState) check(p pendingCheck) {
	root, ok := s.roots[p.size]
	switch {
	case p.size == 0:
		root, ok = integrity.NewBuilder().Root(), true
	case !ok:
		s.skipped++
		return
	}
	if root != p.root {
		if s.altered == "" {
			s.altered = fmt.Sprintf("the records do not reproduce the root of the stored checkpoint of tree size %d: records were altered, or the checkpoint was not written by this log's sink", p.size)
		}
		return
	}
	s.matched++
	s.covered = max(s.covered, p.size)
}

// idle is called by Follow each time it has read everything: it marks the
// watcher caught up, samples the event count for the rate, and takes in
// checkpoints stored since the last call.
func (w *WAL) idle() error {
	w.mu.Lock()
	if !w.s.caught {
		w.s.caught, w.s.caughtAt = true, w.s.records
	}
	w.mu.Unlock()
	w.refresh()
	w.markCaughtUp()
	return nil
}

// refresh samples the event count for the rate (once caught up) and
// takes in the checkpoints stored since the last call. Follow calls it
// (through idle) when it has read everything, Snapshot at every call: a
// log written faster than it is read never lets Follow idle.
func (w *WAL) refresh() {
	now := w.opts.Now()
	cps, size, cpErr := w.readCheckpoints()
	w.mu.Lock()
	defer w.mu.Unlock()
	s := &w.s
	if s.caught && s.err == nil {
		s.samples = append(s.samples, sample{now, s.events})
		// Keep the newest sample at or before the window's start, as
		// the base of the rate, and the ones after it.
		cut := now.Add(-w.opts.Window)
		i := 0
		for i+1 < len(s.samples) && !s.samples[i+1].t.After(cut) {
			i++
		}
		s.samples = slices.Delete(s.samples, 0, i)
	}
	s.cpErr = ""
	if cpErr != nil {
		s.cpErr = cpErr.Error()
	} else if cps != nil {
		s.cpFile = size
		s.takeCheckpoints(cps)
	}
}

// readCheckpoints reads the stored checkpoints when the file changed size
// since the last read (nil otherwise).
func (w *WAL) readCheckpoints() ([][]byte, int64, error) {
	path := filepath.Join(w.opts.Dir, integrity.CheckpointsFile)
	st, err := w.opts.FS.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	w.mu.Lock()
	same := st.Size() == w.s.cpFile
	w.mu.Unlock()
	if same {
		return nil, 0, nil
	}
	cps, err := integrity.ReadCheckpointLog(w.opts.FS, path)
	if err != nil {
		return nil, 0, err
	}
	return cps, st.Size(), nil
}

// takeCheckpoints checks the stored checkpoints not seen before.
func (s *walState) takeCheckpoints(cps [][]byte) {
	if len(cps) < s.cpRead {
		s.cpRead = 0 // the file was replaced: check it again
	}
	for _, raw := range cps[s.cpRead:] {
		s.cpNewest = raw
		cp, err := parseCheckpoint(raw)
		if err != nil {
			s.skipped++
			continue
		}
		p := pendingCheck{cp.Size, cp.Root}
		if s.unavailable != "" {
			s.skipped++
			continue
		}
		if cp.Size > s.chain.Size() {
			i, _ := slices.BinarySearchFunc(s.pending, p.size, func(a pendingCheck, n uint64) int { return cmp.Compare(a.size, n) })
			s.pending = slices.Insert(s.pending, i, p)
			continue
		}
		s.check(p)
	}
	s.cpRead = len(cps)
}

// parseCheckpoint parses the body of a signed checkpoint without checking
// its signatures.
func parseCheckpoint(raw []byte) (integrity.Checkpoint, error) {
	n, err := note.Open(raw, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if errors.As(err, &unverified) {
		n, err = unverified.Note, nil
	}
	if err != nil {
		return integrity.Checkpoint{}, err
	}
	return integrity.ParseCheckpointBody(n.Text)
}

// signers returns the name+keyID of every signature line of a signed note,
// unverified: who claims to have signed it.
func signers(raw []byte) []string {
	ids := []string{}
	_, err := note.Open(raw, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if errors.As(err, &unverified) {
		for _, sig := range unverified.Note.UnverifiedSigs {
			ids = append(ids, fmt.Sprintf("%s+%08x", sig.Name, sig.Hash))
		}
	}
	return ids
}

// Snapshot returns what the watcher has seen so far, with the segment
// files, the free disk space and the lock as they are now.
func (w *WAL) Snapshot() Snapshot {
	w.refresh()
	now := w.opts.Now()
	dir := w.opts.Dir
	st := &WALStatus{Levels: map[string]uint64{}, RateWindowSeconds: w.opts.Window.Seconds()}
	snap := Snapshot{Source: "wal", Target: dir, Time: now.UTC(), Status: StatusOK, WAL: st}
	problem := func(status Status, format string, a ...any) {
		snap.Problems = append(snap.Problems, fmt.Sprintf(format, a...))
		if rank(status) > rank(snap.Status) {
			snap.Status = status
		}
	}
	if w.opts.Lock != nil {
		held, owner, err := w.opts.Lock(dir)
		if err != nil {
			problem(StatusWarning, "cannot check the log's lock: %v", err)
		}
		st.Live, st.LockOwner = held, owner
	}
	segs, bytes, err := segmentFiles(w.opts.FS, dir)
	if err != nil {
		problem(StatusError, "cannot list %s: %v", dir, err)
	}
	st.Segments, st.Bytes = segs, bytes
	if d, err := diskFree(dir); err == nil {
		st.Disk = d
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	s := &w.s
	st.Records, st.Events, st.LastSeq = s.records, s.events, s.lastSeq
	for k, v := range s.levels {
		st.Levels[k] = v
	}
	if s.last != nil {
		ev := *s.last
		st.LastEvent = &ev
	}
	if n := len(s.samples); n > 1 && s.err == nil {
		first, last := s.samples[0], s.samples[n-1]
		if dt := last.t.Sub(first.t).Seconds(); dt > 0 {
			st.EventsPerSecond = float64(last.events-first.events) / dt
		}
	}
	if s.cpNewest != nil {
		ci := &CheckpointInfo{SignerKeyIDs: signers(s.cpNewest), Stored: s.cpRead}
		if cp, err := parseCheckpoint(s.cpNewest); err == nil {
			ci.TreeSize = cp.Size
			if !cp.Time.IsZero() {
				ci.Time = cp.Time.UTC()
				ci.AgeSeconds = now.Sub(cp.Time).Seconds()
			}
		}
		st.Checkpoint = ci
	}
	v := &st.Verification
	v.Records, v.CheckpointsMatched, v.CheckpointsUnchecked, v.Covered = s.records, s.matched, s.skipped, s.covered
	if s.caught {
		v.NewRecords = s.records - s.caughtAt
	}
	v.State = "ok"
	if !s.caught {
		v.State = "catching-up"
		if rank(StatusStarting) > rank(snap.Status) {
			snap.Status = StatusStarting
		}
	}
	if s.unavailable != "" {
		v.State, v.Detail = "unavailable", s.unavailable
	}
	if s.cpErr != "" {
		problem(StatusWarning, "cannot read the stored checkpoints: %s", s.cpErr)
	}
	if s.undecodable > 0 {
		problem(StatusWarning, "%d event(s) cannot be decoded; the first: %s", s.undecodable, s.firstUndecodable)
	}
	if s.altered != "" {
		v.State, v.Detail = "damaged", s.altered
		problem(StatusDamaged, "LOG ALTERED: %s; run 'mtlog-audit verify --wal %s --key KEY'", s.altered, dir)
	}
	switch err := s.err; {
	case err == nil:
	case errors.Is(err, wal.ErrCorrupt):
		v.State, v.Detail = "damaged", err.Error()
		problem(StatusDamaged, "LOG DAMAGED: %v; monitoring stopped at the damage: run 'mtlog-audit verify --wal %s' for details, 'mtlog-audit recover' to salvage what is readable", err, dir)
	case errors.Is(err, wal.ErrNotWAL):
		problem(StatusError, "%v: is --wal the log's directory (the one that holds the NNNN.wal segments)?", err)
	default:
		problem(StatusError, "reading the log stopped: %v", err)
	}
	return snap
}

// rank orders statuses from good to bad.
func rank(s Status) int {
	return slices.Index([]Status{StatusOK, StatusStarting, StatusWarning, StatusError, StatusDamaged}, s)
}

// segmentFiles counts the segment files of dir and their total size.
func segmentFiles(fsys vfs.FS, dir string) (int, int64, error) {
	names, err := fsys.List(dir)
	if err != nil {
		return 0, 0, err
	}
	var n int
	var total int64
	for _, name := range names {
		if _, ok := wal.ParseSegmentName(name); !ok {
			continue
		}
		if info, err := fsys.Stat(filepath.Join(dir, name)); err == nil {
			n++
			total += info.Size()
		}
	}
	return n, total, nil
}
