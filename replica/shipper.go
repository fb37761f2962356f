package replica

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/sony/gobreaker/v2"

	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/ledger"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// ShipperOptions configure NewShipper. Zero durations mean the defaults.
type ShipperOptions struct {
	// FS and Dir are the log's filesystem and directory. Required.
	FS  vfs.FS
	Dir string
	// Backends receive the copies; their names (Name) must differ.
	// Required.
	Backends []backends.Backend
	// Quorum is how many backends must hold an object before it counts
	// as off the box: 1 to len(Backends).
	Quorum int
	// Durable returns the sequence number of the last durable record of
	// the log (wal.WAL.DurableSeq): no seal after it is shipped. Required.
	Durable func() uint64
	// Alarm is how long fewer than Quorum backends may be reachable
	// before OnError is told with an error matching ErrNoQuorum (default
	// 5 minutes).
	Alarm time.Duration
	// OnError, if set, is told (on a shipper goroutine; it must not
	// block for long) when a backend starts failing (a *ShipError), and
	// when no quorum was reachable for Alarm (ErrNoQuorum).
	OnError func(error)
	// Check is how often each backend's listing is compared with what
	// the cursor claims it holds (default 10 minutes; the first check
	// runs at start).
	Check time.Duration
	// Timeout bounds one attempt to ship an object: put and read back
	// (default 1 minute).
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between failed attempts,
	// which grows exponentially with jitter (defaults 100ms and 30s).
	MinBackoff, MaxBackoff time.Duration
	// BreakerFailures consecutive failures open a backend's circuit
	// breaker, which then refuses attempts for BreakerOpen before letting
	// one through (defaults 5 and 30s).
	BreakerFailures uint32
	BreakerOpen     time.Duration
}

// Errors of shipping (errors.Is).
var (
	// ErrNoQuorum: fewer than Quorum backends were reachable for longer
	// than ShipperOptions.Alarm. Local writes go on.
	ErrNoQuorum = errors.New("replica: no quorum of backends reachable")
	// ErrReadBack: what a backend returned for an object after storing it
	// is not what was stored (missing, truncated, altered). The object
	// does not count for that backend.
	ErrReadBack = errors.New("replica: read-back mismatch")
	// ErrConflict: a backend holds another object under the key of the
	// object being shipped, whose name carries its hash. It cannot be
	// overwritten (objects are immutable): the backend is stuck until an
	// operator looks at it.
	ErrConflict = errors.New("replica: backend holds different content under the object's key")
	// ErrUnshipped: when Finish stopped the shipper, a backend still
	// lacked objects the log holds. The cursor keeps what it holds, so
	// the next shipper on the log ships the rest.
	ErrUnshipped = errors.New("replica: not shipped when shipping stopped")
)

// ShipError is a backend's failure to take an object.
type ShipError struct {
	Backend string // the backend's Name
	Key     string // the object's key ("" when no object was involved)
	Err     error
}

func (e *ShipError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("replica: ship to %s: %v", e.Backend, e.Err)
	}
	return fmt.Sprintf("replica: ship %s to %s: %v", e.Key, e.Backend, e.Err)
}

func (e *ShipError) Unwrap() error { return e.Err }

// Shipper copies every sealed segment and every signed checkpoint of a log
// to its backends (docs/replication.md). Each backend has a goroutine of its
// own that ships the objects it lacks in log order, with backoff and a
// circuit breaker, and confirms each object (read back, or the service's
// checksum) before the cursor records it. Nothing on the log's write path
// waits for it: it learns of new seals and checkpoints through NoteSeal and
// NoteCheckpoint, which never block, and reads the objects from the files.
// It holds at most one object per backend in memory.
//
// Its methods are safe for concurrent use.
type Shipper struct {
	opts    ShipperOptions
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	targets []*target

	wmu sync.Mutex   // serialises cursor writes (held across mu)
	cw  cursorWriter // the cursor file (under wmu)

	mu        sync.Mutex // guards what follows; never held during I/O
	cur       *Cursor
	seals     map[uint64]wal.Seal // known seals, by segment (the latest known)
	noSeal    map[uint64]bool     // segments scanned without a durable seal
	cps       [][]byte            // the checkpoints file's entries, from cpBase
	cpBase    uint64
	cpLoaded  bool
	cpPending [][]byte      // notified while the file was being loaded
	changed   chan struct{} // closed and replaced whenever a cursor moves
	noQuorum  time.Time     // since when fewer than Quorum are reachable
	alarmed   bool
	cursorErr error
	held      bool // attempts outlived stop: the cursor is not written any more
}

// target is one backend and its goroutine's state.
type target struct {
	s    *Shipper
	b    backends.Backend
	name string
	cb   *gobreaker.CircuitBreaker[struct{}]
	kick chan struct{}

	// guarded by s.mu
	looked    bool  // its first check of the cursor's claims ran
	err       error // the last attempt's error (nil: it succeeded)
	rejecting bool  // a read-back failed since the last confirmed object
	failing   time.Time
	shipped   uint64
	rejected  uint64
}

// NewShipper checks opts and reads the cursor; Start starts shipping.
// NoteSeal and NoteCheckpoint may be called from the moment it returns, so
// that a seal between the two is not missed. A backend that is down does
// not fail it: it shows in Health and OnError.
func NewShipper(opts ShipperOptions) (*Shipper, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	cur, err := ReadCursor(opts.FS, opts.Dir)
	if err != nil && !errors.Is(err, ErrCursorDamaged) {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Shipper{opts: opts, ctx: ctx, cancel: cancel, cur: cur, cw: cursorWriter{fs: opts.FS, dir: opts.Dir}, seals: map[uint64]wal.Seal{}, noSeal: map[uint64]bool{}, changed: make(chan struct{})}
	if err != nil && opts.OnError != nil {
		opts.OnError(err) // a damaged cursor: everything is shipped again
	}
	for _, b := range opts.Backends {
		t := &target{s: s, b: b, name: b.Name(), kick: make(chan struct{}, 1)}
		t.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        t.name,
			MaxRequests: 1,
			Timeout:     opts.BreakerOpen,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= opts.BreakerFailures },
			IsSuccessful: func(err error) bool {
				return err == nil || errors.Is(err, context.Canceled) && ctx.Err() != nil
			},
		})
		s.targets = append(s.targets, t)
	}
	return s, nil
}

// Start starts a goroutine per backend and the alarm's. Call it once.
func (s *Shipper) Start() {
	for _, t := range s.targets {
		s.wg.Add(1)
		go t.run()
	}
	s.wg.Add(1)
	go s.watch()
}

func (o *ShipperOptions) fill() error {
	switch {
	case o.FS == nil || o.Dir == "" || o.Durable == nil:
		return errors.New("replica: NewShipper needs FS, Dir and Durable")
	case len(o.Backends) == 0:
		return errors.New("replica: NewShipper needs at least one backend")
	case o.Quorum < 1 || o.Quorum > len(o.Backends):
		return fmt.Errorf("replica: quorum %d out of range: use 1 to %d (the number of backends)", o.Quorum, len(o.Backends))
	}
	seen := map[string]bool{}
	for i, b := range o.Backends {
		if b == nil {
			return fmt.Errorf("replica: backend %d is nil", i)
		}
		if seen[b.Name()] {
			return fmt.Errorf("replica: two backends are named %s: give each its own bucket, prefix or directory", b.Name())
		}
		seen[b.Name()] = true
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Alarm, 5*time.Minute)
	def(&o.Check, 10*time.Minute)
	def(&o.Timeout, time.Minute)
	def(&o.MinBackoff, 100*time.Millisecond)
	def(&o.MaxBackoff, 30*time.Second)
	def(&o.BreakerOpen, 30*time.Second)
	if o.BreakerFailures == 0 {
		o.BreakerFailures = 5
	}
	return nil
}

// NoteSeal tells the shipper of a new durable seal (wal.Options.OnSeal). It
// never blocks.
func (s *Shipper) NoteSeal(seal wal.Seal) {
	s.mu.Lock()
	if old, ok := s.seals[seal.Segment]; !ok || old.LastSeq < seal.LastSeq {
		s.seals[seal.Segment] = seal
	}
	delete(s.noSeal, seal.Segment)
	s.mu.Unlock()
	s.kickAll()
}

// NoteCheckpoint tells the shipper of a signed checkpoint that is durable
// in the checkpoints file (ledger's OnCheckpoint). It never blocks.
func (s *Shipper) NoteCheckpoint(signed []byte) {
	s.mu.Lock()
	if s.cpLoaded {
		s.addCheckpoint(signed)
	} else {
		// The file is not loaded yet, or is being loaded: the load
		// decides whether what it read holds this one.
		s.cpPending = append(s.cpPending, bytes.Clone(signed))
	}
	s.mu.Unlock()
	s.kickAll()
}

// addCheckpoint appends a notified checkpoint to those in memory, unless
// it is one of the last ones there: a checkpoint stored while the file was
// being read is both in what was read and notified. s.mu is held.
func (s *Shipper) addCheckpoint(signed []byte) {
	tail := s.cps[max(0, len(s.cps)-16):]
	if !slices.ContainsFunc(tail, func(e []byte) bool { return bytes.Equal(e, signed) }) {
		s.cps = append(s.cps, bytes.Clone(signed))
	}
}

func (s *Shipper) kickAll() {
	for _, t := range s.targets {
		select {
		case t.kick <- struct{}{}:
		default:
		}
	}
}

// Close stops shipping: attempts in flight are abandoned (and shipped again
// by the next shipper, which finds what landed). It returns the last error
// writing the cursor, if any (OnError was told of it when it happened).
// It returns
// once the goroutines ended or, when an attempt does not end on
// cancellation (a backend stuck in a system call), after StopGrace; such
// an attempt can then never move the cursor.
func (s *Shipper) Close() error {
	s.stop()
	cerr := s.closeCursor()
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.cursorErr, cerr)
}

// StopGrace is how long Close and Finish wait for the attempts in flight
// to end once they are cancelled.
const StopGrace = time.Second

// stop cancels the goroutines and waits for them, at most StopGrace; the
// cursor is held if they do not all end, so that a late confirmation is
// never written.
func (s *Shipper) stop() {
	s.cancel()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(StopGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.wmu.Lock()
		s.mu.Lock()
		s.held = true
		s.mu.Unlock()
		s.wmu.Unlock()
	}
}

// Finish ships what is left and stops: it waits until every backend holds every segment sealed and every checkpoint
// stored when it is called, or at least n do and each of the others is
// failing (its last attempt failed, or it gave back other bytes), or ctx
// ends, and then stops as Close does. Each backend that still lacks something then gets, as its health
// error and in the error returned (joined), a *ShipError matching
// ErrUnshipped that says what it lacks; OnError is not told (the caller
// decides). Call it once, instead of Close, with the log's files complete
// (after the log closed).
func (s *Shipper) Finish(ctx context.Context, n int) error {
	all := len(s.targets)
	werr := s.waitHeld(ctx, func(held, failing int) bool { return held == all || held >= n && held+failing == all })
	s.stop()
	if err := s.closeCursor(); err != nil {
		s.mu.Lock()
		s.cursorErr = errors.Join(s.cursorErr, err)
		s.mu.Unlock()
	}
	if werr != nil && ctx.Err() == nil {
		return werr // the log's files could not be read
	}
	s.mu.Lock()
	cursorErr := s.cursorErr
	s.mu.Unlock()
	want, cps, err := s.wanted()
	if err != nil {
		return errors.Join(err, cursorErr)
	}
	var errs []error
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.targets {
		if t.holds(want, cps) {
			continue
		}
		bc := s.cur.Backends[t.name]
		var lacks []string
		switch {
		case bc.holdsSeal(want):
		case bc.SegmentLast > 0:
			lacks = append(lacks, fmt.Sprintf("the sealed records after %d through %d (segment %d)", bc.SegmentLast, want.LastSeq, want.Segment))
		default:
			lacks = append(lacks, fmt.Sprintf("segments %d through %d (record %d)", max(bc.Segment, 1), want.Segment, want.LastSeq))
		}
		if bc.Checkpoints < cps {
			lacks = append(lacks, fmt.Sprintf("%d of %d checkpoints", cps-bc.Checkpoints, cps))
		}
		why := "was not reached in time"
		if t.err != nil {
			why = t.err.Error()
		}
		err := &ShipError{Backend: t.name, Err: fmt.Errorf("%w: it lacks %s (%s); the next shipper on %s ships them",
			ErrUnshipped, strings.Join(lacks, " and "), why, s.opts.Dir)}
		if t.failing.IsZero() {
			t.failing = time.Now()
		}
		t.err = err
		errs = append(errs, err)
	}
	return errors.Join(append(errs, cursorErr)...)
}

// closeCursor closes the cursor file (an attempt that did not end within
// StopGrace finds the cursor held and writes nothing more).
func (s *Shipper) closeCursor() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.cw.close()
}

// run is a target's goroutine.
func (t *target) run() {
	s := t.s
	defer s.wg.Done()
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = s.opts.MinBackoff, s.opts.MaxBackoff
	check := time.NewTicker(s.opts.Check)
	defer check.Stop()
	checkNow := true
	for {
		var cerr error
		if checkNow {
			cerr = t.check()
			checkNow = cerr != nil // a failed check is tried again next round
			s.mu.Lock()
			if !t.looked && s.ctx.Err() == nil {
				t.looked = true
				close(s.changed)
				s.changed = make(chan struct{})
			}
			s.mu.Unlock()
		}
		// Shipping goes on when the listing fails (a backend may refuse
		// List and take Put): its error is reported all the same.
		err := t.catchUp()
		if err == nil {
			err = cerr
		}
		if s.ctx.Err() != nil {
			return
		}
		t.report(err)
		var retry <-chan time.Time
		var timer *time.Timer
		if err != nil {
			timer = time.NewTimer(bo.NextBackOff())
			retry = timer.C
		} else {
			bo.Reset()
		}
		select {
		case <-s.ctx.Done():
		case <-t.kick:
		case <-retry:
		case <-check.C:
			checkNow = true
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// report records the outcome of a round and tells OnError when the backend
// starts failing.
func (t *target) report(err error) {
	s := t.s
	s.mu.Lock()
	// A rejection was told when it happened (see ship).
	tell := err != nil && t.err == nil && !errors.Is(err, ErrReadBack)
	switch {
	case err == nil:
		t.failing = time.Time{}
	case t.failing.IsZero():
		t.failing = time.Now()
	}
	if (err == nil) != (t.err == nil) {
		close(s.changed) // Finish waits for it
		s.changed = make(chan struct{})
	}
	t.err = err
	s.mu.Unlock()
	if tell && s.opts.OnError != nil {
		var se *ShipError
		if !errors.As(err, &se) {
			err = &ShipError{Backend: t.name, Err: err}
		}
		s.opts.OnError(err)
	}
}

// object is one object to ship.
type object struct {
	key  string
	body io.ReaderAt // read in pieces by the driver, never held whole
	size int64
	sum  [32]byte
	file vfs.File // the segment file body reads, closed by release
	// what the cursor records once it is confirmed
	seal wal.Seal // a segment (Segment > 0)
	cp   uint64   // or the checkpoint of this index in the checkpoints file
}

// release closes the file obj reads from, if any.
func (obj *object) release() {
	if obj.file != nil {
		_ = obj.file.Close() // opened read-only: nothing to lose
	}
}

// catchUp ships every object the backend lacks, in order.
func (t *target) catchUp() error {
	for t.s.ctx.Err() == nil {
		obj, ok, err := t.s.next(t.name)
		if err != nil || !ok {
			return err
		}
		err = t.ship(obj)
		if err == nil {
			err = t.s.confirm(t, obj)
		}
		obj.release()
		if err != nil {
			return err
		}
	}
	return nil
}

// ship puts obj and confirms it, through the circuit breaker.
func (t *target) ship(obj *object) error {
	_, err := t.cb.Execute(func() (struct{}, error) {
		ctx, cancel := context.WithTimeout(t.s.ctx, t.s.opts.Timeout)
		defer cancel()
		err := t.b.Put(ctx, obj.key, obj.body, obj.size, backends.PutOptions{SHA256: obj.sum})
		exists := errors.Is(err, backends.ErrExists)
		if err != nil && !exists {
			return struct{}{}, err
		}
		if err := t.confirmed(ctx, obj); err != nil {
			if exists && !errors.Is(err, ErrReadBack) {
				return struct{}{}, err
			}
			if exists {
				err = fmt.Errorf("%w (%w)", ErrConflict, err)
			}
			t.s.mu.Lock()
			t.rejected++
			first := !t.rejecting
			t.rejecting = true
			t.s.mu.Unlock()
			if first && t.s.opts.OnError != nil {
				// The backend's integrity is in doubt: say so at once,
				// whatever it did before (once until it next confirms).
				t.s.opts.OnError(&ShipError{Backend: t.name, Key: obj.key, Err: err})
			}
			return struct{}{}, err
		}
		return struct{}{}, nil
	})
	if err != nil {
		return &ShipError{Backend: t.name, Key: obj.key, Err: err}
	}
	return nil
}

// confirmed reports whether the backend holds obj: the service's own
// SHA-256 of it when it checks checksums and reports one, else the bytes
// read back.
func (t *target) confirmed(ctx context.Context, obj *object) error {
	if t.b.Capabilities().ServerChecksum {
		info, err := t.b.Stat(ctx, obj.key)
		if err == nil && info.Size == obj.size && bytes.Equal(info.SHA256, obj.sum[:]) {
			return nil
		}
	}
	got, err := t.b.Get(ctx, obj.key)
	switch {
	case errors.Is(err, backends.ErrNotFound):
		return fmt.Errorf("%w: the object is not there after it was stored", ErrReadBack)
	case err != nil:
		return err
	case int64(len(got)) != obj.size:
		return fmt.Errorf("%w: %d bytes read back, %d stored", ErrReadBack, len(got), obj.size)
	case backends.SHA256(got) != obj.sum:
		return fmt.Errorf("%w: the bytes read back differ from those stored", ErrReadBack)
	}
	return nil
}

// next returns the next object the backend name lacks: a checkpoint if
// one is pending, else the next sealed segment.
func (s *Shipper) next(name string) (*object, bool, error) {
	if err := s.loadCheckpoints(); err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	bc := s.cur.Backends[name]
	s.mu.Unlock()
	signed, err := s.checkpointAt(bc.Checkpoints)
	if err != nil {
		return nil, false, err
	}
	if signed != nil {
		cp, err := ledger.ParseStored(signed)
		if err != nil {
			return nil, false, fmt.Errorf("replica: checkpoint %d of %s does not parse: %w", bc.Checkpoints, filepath.Join(s.opts.Dir, integrity.CheckpointsFile), err)
		}
		sum := sha256.Sum256(signed)
		return &object{key: CheckpointObject{Size: cp.Size, SHA256: sum}.Key(), body: backends.ReaderAt(signed), size: int64(len(signed)), sum: sum, cp: bc.Checkpoints}, true, nil
	}
	seal, ok, err := s.nextSeal(bc)
	if err != nil || !ok {
		return nil, false, err
	}
	// The segment is streamed from its file, which stays open until the
	// object is shipped: hashed here, read again by the driver.
	path := filepath.Join(s.opts.Dir, wal.SegmentName(seal.Segment))
	if seal.End < 0 {
		return nil, false, fmt.Errorf("replica: %s: seal at offset %d", path, seal.End)
	}
	f, err := s.opts.FS.Open(path)
	if err != nil {
		return nil, false, fmt.Errorf("replica: %w", err)
	}
	sum, err := backends.SHA256At(f, seal.End)
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("replica: %s: %w", path, err)
	}
	key := SegmentObject{Segment: seal.Segment, FirstSeq: seal.FirstSeq, LastSeq: seal.LastSeq, SHA256: sum}.Key()
	return &object{key: key, body: f, size: seal.End, sum: sum, file: f, seal: seal}, true, nil
}

// nextSeal returns the first seal beyond what bc holds.
func (s *Shipper) nextSeal(bc BackendCursor) (wal.Seal, bool, error) {
	nums, err := s.segments()
	if err != nil {
		return wal.Seal{}, false, err
	}
	for i, n := range nums {
		if n < bc.Segment {
			continue
		}
		seal, ok, err := s.sealOf(n)
		if err != nil {
			return wal.Seal{}, false, err
		}
		if !ok {
			if i == len(nums)-1 {
				return wal.Seal{}, false, nil // the active segment
			}
			return wal.Seal{}, false, fmt.Errorf("replica: segment %d has no seal but segment %d follows it: run `mtlog-audit verify` on %s", n, nums[i+1], s.opts.Dir)
		}
		if n == bc.Segment && seal.LastSeq <= bc.SegmentLast {
			continue
		}
		return seal, true, nil
	}
	return wal.Seal{}, false, nil
}

// segments lists the log's segment numbers in order.
func (s *Shipper) segments() ([]uint64, error) {
	names, err := s.opts.FS.List(s.opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("replica: list %s: %w", s.opts.Dir, err)
	}
	var nums []uint64
	for _, name := range names {
		if n, ok := wal.ParseSegmentName(name); ok {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	return nums, nil
}

// sealOf returns the last durable seal of segment n, from what NoteSeal
// told or, failing that, from the file. A segment found without a seal is
// remembered as such until NoteSeal, a check or WaitHeld learns otherwise,
// so that the active segment is not scanned on every round.
func (s *Shipper) sealOf(n uint64) (wal.Seal, bool, error) {
	s.mu.Lock()
	seal, ok := s.seals[n]
	none := s.noSeal[n]
	s.mu.Unlock()
	if ok || none {
		return seal, ok, nil
	}
	return s.readSeal(n)
}

// readSeal reads the last durable seal of segment n from its file, and
// records what it found.
func (s *Shipper) readSeal(n uint64) (wal.Seal, bool, error) {
	seal, ok, err := wal.ReadSeal(s.opts.FS, filepath.Join(s.opts.Dir, wal.SegmentName(n)), s.opts.Durable())
	if err != nil {
		return wal.Seal{}, false, fmt.Errorf("replica: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		if old, known := s.seals[n]; !known || old.LastSeq < seal.LastSeq {
			s.seals[n] = seal
		}
		delete(s.noSeal, n)
		return s.seals[n], true, nil
	}
	if old, known := s.seals[n]; known {
		return old, true, nil
	}
	s.noSeal[n] = true // NoteSeal, a check or WaitHeld clears it
	return wal.Seal{}, false, nil
}

// loadCheckpoints reads the checkpoints file once; NoteCheckpoint keeps
// the entries up to date after.
func (s *Shipper) loadCheckpoints() error {
	s.mu.Lock()
	loaded := s.cpLoaded
	s.mu.Unlock()
	if loaded {
		return nil
	}
	entries, err := s.readCheckpoints()
	if err != nil {
		return err
	}
	s.mu.Lock()
	if !s.cpLoaded {
		s.cps, s.cpBase, s.cpLoaded = entries, 0, true
		for _, signed := range s.cpPending {
			s.addCheckpoint(signed)
		}
		s.cpPending = nil
	}
	s.mu.Unlock()
	return nil
}

// readCheckpoints reads every entry of the checkpoints file (none if there
// is no file yet).
func (s *Shipper) readCheckpoints() ([][]byte, error) {
	entries, err := integrity.ReadCheckpointLog(s.opts.FS, filepath.Join(s.opts.Dir, integrity.CheckpointsFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("replica: %w", err)
	}
	return entries, nil
}

// refreshCheckpoints adds to memory the entries of the checkpoints file
// beyond those it holds, and returns how many entries there are: a
// checkpoint whose notification was missed is shipped all the same.
func (s *Shipper) refreshCheckpoints() (uint64, error) {
	if err := s.loadCheckpoints(); err != nil {
		return 0, err
	}
	entries, err := s.readCheckpoints()
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if have := s.cpBase + uint64(len(s.cps)); uint64(len(entries)) > have {
		s.cps = append(s.cps, entries[have:]...)
	}
	return s.cpBase + uint64(len(s.cps)), nil
}

// checkpointAt returns entry i of the checkpoints file (nil if there is
// none yet), from memory or, for an entry trimmed from memory (a backend
// far behind, or a check), from the file.
func (s *Shipper) checkpointAt(i uint64) ([]byte, error) {
	s.mu.Lock()
	base, n := s.cpBase, uint64(len(s.cps))
	var signed []byte
	if i >= base && i < base+n {
		signed = s.cps[i-base]
	}
	s.mu.Unlock()
	if i >= base {
		return signed, nil
	}
	entries, err := s.readCheckpoints()
	if err != nil {
		return nil, err
	}
	if i < uint64(len(entries)) {
		return entries[i], nil
	}
	return nil, nil
}

// keepCheckpoints is how many checkpoints held by every backend stay in
// memory before they are dropped (and read from the file if needed).
const keepCheckpoints = 1024

// trimCheckpoints drops from memory the checkpoints every backend holds.
// s.mu is held.
func (s *Shipper) trimCheckpoints() {
	if len(s.cps) < 2*keepCheckpoints {
		return
	}
	low := uint64(math.MaxUint64)
	for _, t := range s.targets {
		low = min(low, s.cur.Backends[t.name].Checkpoints)
	}
	if low > s.cpBase+keepCheckpoints {
		drop := low - keepCheckpoints - s.cpBase
		s.cps = slices.Clone(s.cps[drop:])
		s.cpBase += drop
	}
}

// confirm records in the cursor that the backend of t holds obj.
func (s *Shipper) confirm(t *target, obj *object) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	bc := s.cur.Backends[t.name]
	if obj.seal.Segment > 0 {
		bc.Segment, bc.SegmentLast, bc.SegmentKey = obj.seal.Segment, obj.seal.LastSeq, obj.key
	} else {
		bc.Checkpoints, bc.CheckpointKey = obj.cp+1, obj.key
	}
	s.cur.Backends[t.name] = bc
	t.shipped++
	t.rejecting = false
	s.trimCheckpoints()
	if s.held {
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
		return nil
	}
	snap := s.cur.clone()
	s.mu.Unlock()
	err := s.cw.write(snap)
	s.mu.Lock()
	s.cursorErr = err
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return err
}

// check compares the backend's listing with what the cursor claims it
// holds, and moves the cursor back to the first object it lacks.
func (t *target) check() error {
	s := t.s
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.Timeout)
	defer cancel()
	// Keys are matched exactly, not by segment number alone, so that an
	// object listed by a lying service does not pass for the real one.
	listed := map[string]bool{}
	segs := map[[3]uint64]bool{}
	for _, prefix := range []string{SegmentsPrefix, CheckpointsPrefix} {
		infos, err := t.b.List(ctx, prefix)
		if err != nil {
			return &ShipError{Backend: t.name, Err: fmt.Errorf("list: %w", err)}
		}
		for _, info := range infos {
			listed[info.Key] = true
			if o, err := ParseSegmentKey(info.Key); err == nil {
				segs[[3]uint64{o.Segment, o.FirstSeq, o.LastSeq}] = true
			}
		}
	}
	nums, err := s.segments()
	if err != nil {
		return err
	}
	s.mu.Lock()
	claimedSeg := s.cur.Backends[t.name].Segment
	s.mu.Unlock()
	missing := uint64(math.MaxUint64) // the first segment before claimedSeg the backend lacks
	for _, n := range nums {
		if n >= claimedSeg {
			break
		}
		seal, ok, err := s.sealOf(n)
		if err != nil {
			return err
		}
		if !ok || !segs[[3]uint64{n, seal.FirstSeq, seal.LastSeq}] {
			missing = n
			break
		}
	}
	// The first checkpoint the backend lacks, of those the cursor claims.
	s.mu.Lock()
	claimed := s.cur.Backends[t.name].Checkpoints
	s.mu.Unlock()
	firstMissing := claimed
	if claimed > 0 {
		entries, err := s.readCheckpoints()
		if err != nil {
			return err
		}
		firstMissing = min(claimed, uint64(len(entries)))
		for i, signed := range entries[:firstMissing] {
			cp, err := ledger.ParseStored(signed)
			if err != nil || !listed[CheckpointObject{Size: cp.Size, SHA256: sha256.Sum256(signed)}.Key()] {
				firstMissing = uint64(i)
				break
			}
		}
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	clear(s.noSeal) // a seal whose notification was missed is found now
	bc, old := s.cur.Backends[t.name], s.cur.Backends[t.name]
	if bc.SegmentKey != "" && !listed[bc.SegmentKey] {
		bc.SegmentLast, bc.SegmentKey = 0, "" // ship segment bc.Segment again
	}
	if bc.Segment == claimedSeg && missing < bc.Segment {
		bc.Segment, bc.SegmentLast, bc.SegmentKey = missing, 0, ""
	}
	if bc.Checkpoints == claimed && firstMissing < claimed {
		bc.Checkpoints, bc.CheckpointKey = firstMissing, ""
	}
	if bc == old {
		s.mu.Unlock()
		return nil
	}
	s.cur.Backends[t.name] = bc
	if s.held {
		s.mu.Unlock()
		return nil
	}
	snap := s.cur.clone()
	s.mu.Unlock()
	return s.cw.write(snap)
}

// watch is the goroutine that raises the no-quorum alarm.
func (s *Shipper) watch() {
	defer s.wg.Done()
	tick := time.NewTicker(min(max(s.opts.Alarm/4, time.Millisecond), time.Second))
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		s.mu.Lock()
		up := 0
		for _, t := range s.targets {
			if t.err == nil {
				up++
			}
		}
		var tell error
		switch {
		case up >= s.opts.Quorum:
			s.noQuorum, s.alarmed = time.Time{}, false
		case s.noQuorum.IsZero():
			s.noQuorum = time.Now()
		case !s.alarmed && time.Since(s.noQuorum) >= s.opts.Alarm:
			s.alarmed = true
			tell = fmt.Errorf("%w: %d of %d backends reachable, %d needed, for %v (local writes go on; see Health)", ErrNoQuorum, up, len(s.targets), s.opts.Quorum, time.Since(s.noQuorum).Round(time.Millisecond))
		}
		s.mu.Unlock()
		if tell != nil && s.opts.OnError != nil {
			s.opts.OnError(tell)
		}
	}
}

// WaitHeld waits until at least n backends hold every segment sealed, and
// every checkpoint stored, when it was called (or ctx ends).
func (s *Shipper) WaitHeld(ctx context.Context, n int) error {
	return s.waitHeld(ctx, func(held, _ int) bool { return held >= n })
}

// waitHeld waits until done, given how many backends hold every segment
// sealed and every checkpoint stored when it was called and how many of
// the others are failing (their last attempt failed, or they gave back
// other bytes), says so, or ctx ends.
func (s *Shipper) waitHeld(ctx context.Context, done func(held, failing int) bool) error {
	want, cps, err := s.wanted()
	if err != nil {
		return err
	}
	s.kickAll()
	for {
		s.mu.Lock()
		held, failing := 0, 0
		for _, t := range s.targets {
			switch {
			case t.holds(want, cps):
				held++
			case t.err != nil || t.rejecting:
				failing++
			}
		}
		ch := s.changed
		s.mu.Unlock()
		if done(held, failing) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// wanted returns the last durable seal of the log and the number of
// checkpoints stored. They are read from the files, not from what the
// targets remember: a segment they took for unsealed may have a seal now
// whose notification they missed (which this corrects for them).
func (s *Shipper) wanted() (wal.Seal, uint64, error) {
	cps, err := s.refreshCheckpoints()
	if err != nil {
		return wal.Seal{}, 0, err
	}
	nums, err := s.segments()
	if err != nil {
		return wal.Seal{}, 0, err
	}
	for i := len(nums) - 1; i >= 0; i-- {
		seal, ok, err := s.readSeal(nums[i])
		if err != nil {
			return wal.Seal{}, 0, err
		}
		if ok {
			return seal, cps, nil
		}
	}
	return wal.Seal{}, cps, nil
}

// holds reports whether the backend of t holds every segment through seal
// and the first cps checkpoints, as far as the cursor says and its first
// check (which moves the cursor back to what the listing lacks) ran: a
// cursor read from the file is not taken at its word before. A check that
// failed (a backend that refuses List) leaves the cursor as it was. s.mu is
// held.
func (t *target) holds(seal wal.Seal, cps uint64) bool {
	return t.looked && t.s.cur.Backends[t.name].holds(seal, cps)
}

// holdsSeal reports whether the backend holds every segment through seal.
func (bc BackendCursor) holdsSeal(seal wal.Seal) bool {
	return bc.Segment > seal.Segment || bc.Segment == seal.Segment && bc.SegmentLast >= seal.LastSeq
}

// holds reports whether the backend holds every segment through seal and
// the first cps checkpoints.
func (bc BackendCursor) holds(seal wal.Seal, cps uint64) bool {
	return bc.holdsSeal(seal) && bc.Checkpoints >= cps
}

// Health is the state of shipping.
type Health struct {
	// Quorum is how many backends must hold an object.
	Quorum int
	// Reachable counts the backends whose last attempt succeeded.
	Reachable int
	// NoQuorumSince is when fewer than Quorum backends became reachable
	// (zero while a quorum is).
	NoQuorumSince time.Time
	// Alarm is set once NoQuorumSince is older than the alarm time.
	Alarm bool
	// Backends is the state of each backend, in the order given.
	Backends []BackendHealth
}

// BackendHealth is the state of one backend.
type BackendHealth struct {
	Name string
	// Err is the last attempt's error (nil: it succeeded or none was
	// made), and FailingSince when the failures began.
	Err          error
	FailingSince time.Time
	// Breaker is the circuit breaker's state: "closed", "half-open",
	// "open".
	Breaker string
	// Held is what the cursor says the backend holds.
	Held BackendCursor
	// Shipped counts objects confirmed since start; Rejected counts
	// objects the backend took but did not give back intact.
	Shipped, Rejected uint64
}

// Health reports the state of shipping.
func (s *Shipper) Health() Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := Health{Quorum: s.opts.Quorum, NoQuorumSince: s.noQuorum, Alarm: s.alarmed}
	for _, t := range s.targets {
		if t.err == nil {
			h.Reachable++
		}
		h.Backends = append(h.Backends, BackendHealth{Name: t.name, Err: t.err, FailingSince: t.failing, Breaker: t.cb.State().String(),
			Held: s.cur.Backends[t.name], Shipped: t.shipped, Rejected: t.rejected})
	}
	return h
}
