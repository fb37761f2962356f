package vfs

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MirrorPolicy says how long a Mirror waits for its mirrors and how many
// copies an operation needs. The zero MirrorPolicy is the default: every
// copy, with no time limit (see Mirror).
//
// With Quorum set, each mutation, sync and CheckLinked is applied to the
// primary as without a policy (the primary is always required and has no
// time limit) and to every current mirror concurrently, each given Timeout
// from the start of the operation. A mirror that fails or misses the
// deadline is marked stale: it is reported once to OnStale, and no later
// operation of the Mirror touches it (its files are closed in the
// background), so every mirror still current has applied every operation
// that succeeded. The operation succeeds when the primary's part succeeded
// and at least Quorum copies, the primary included, are still current;
// otherwise it fails with an error matching ErrMirrorQuorum (and the cause
// of each stale mirror). A stale mirror stays stale for the life of the
// Mirror: the repair before the log is next opened (audit.New) brings it
// back.
//
// The call on a mirror that missed its deadline is not cancelled (a write
// blocked in the kernel, such as on an unresponsive NFS server, cannot be):
// its goroutine stays blocked until the call returns, and what it finally
// does to the stale copy is discarded by the next repair. A write's bytes
// are copied for the mirrors, so the caller may reuse its buffer at once.
type MirrorPolicy struct {
	// Quorum is how many copies, the primary included, must complete an
	// operation for it to succeed: 1 to the number of copies. 0 means
	// every copy with no time limit (the default; Timeout and OnStale are
	// then unused).
	Quorum int
	// Timeout is how long each mirror has for one operation (required
	// with Quorum).
	Timeout time.Duration
	// OnStale, if set, is called once for each mirror that becomes stale,
	// on the goroutine of the operation that found it, after the mirror
	// was marked stale. It must not call back into the Mirror.
	OnStale func(MirrorStatus)
	// Now reads the clock for MirrorStatus.Since (nil: time.Now).
	Now func() time.Time
}

// MirrorState says whether a mirror copy is still written.
type MirrorState int

// The states of a mirror copy.
const (
	// MirrorCurrent: the copy has applied every operation that succeeded.
	MirrorCurrent MirrorState = iota
	// MirrorStale: the copy failed or missed a deadline (MirrorPolicy) and
	// is no longer written; it lacks later writes until it is repaired.
	MirrorStale
)

// String returns "current" or "stale".
func (s MirrorState) String() string {
	switch s {
	case MirrorCurrent:
		return "current"
	case MirrorStale:
		return "stale"
	}
	return fmt.Sprintf("MirrorState(%d)", int(s))
}

// MirrorStatus is the state of one mirror copy.
type MirrorStatus struct {
	Dir   string      // the copy's directory
	State MirrorState // current or stale
	Since time.Time   // when the Mirror was made (current) or the copy went stale
	Err   error       // why the copy is stale (nil while current); names the copy
	// Blocked counts the calls on the copy that missed their deadline and
	// have not returned yet: while it is above 0 the copy still hangs,
	// and a call may still land in it.
	Blocked int
}

var (
	// ErrMirrorTimeout is matched by the error that makes a mirror stale
	// when it did not complete an operation within MirrorPolicy.Timeout.
	ErrMirrorTimeout = errors.New("vfs: mirror copy did not answer in time")
	// ErrMirrorQuorum is matched by the error of an operation that left
	// fewer current copies than MirrorPolicy.Quorum.
	ErrMirrorQuorum = errors.New("vfs: too few current mirror copies")
)

// copyState is the state of one mirror copy under a quorum policy.
type copyState struct {
	stale   atomic.Bool  // set once, under mu, never cleared
	blocked atomic.Int64 // calls abandoned that have not returned
	mu      sync.Mutex
	since   time.Time
	err     error
}

// WithPolicy returns a Mirror of the same copies that applies p. The copies
// all start current. It fails when p's Quorum is outside 0 to the number of
// copies, or when Quorum is set without a positive Timeout.
func (m *Mirror) WithPolicy(p MirrorPolicy) (*Mirror, error) {
	switch {
	case p.Quorum < 0 || p.Quorum > len(m.reps):
		return nil, fmt.Errorf("vfs: mirror: quorum %d: use 1 to %d (the number of copies, the primary included), or 0 for every copy", p.Quorum, len(m.reps))
	case p.Quorum > 0 && p.Timeout <= 0:
		return nil, fmt.Errorf("vfs: mirror: quorum %d needs a positive timeout per copy, not %v", p.Quorum, p.Timeout)
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	q := &Mirror{reps: m.reps, policy: p, since: p.Now(), state: make([]*copyState, len(m.reps))}
	for i := range q.state {
		q.state[i] = &copyState{}
	}
	return q, nil
}

// Status returns the state of each mirror copy (the primary is not
// listed: it is always required). Without a quorum policy every copy is
// current, since an error of any copy is an error of the operation.
func (m *Mirror) Status() []MirrorStatus {
	out := make([]MirrorStatus, 0, len(m.reps)-1)
	for i := 1; i < len(m.reps); i++ {
		st := MirrorStatus{Dir: m.reps[i].Dir, State: MirrorCurrent, Since: m.since}
		if m.quorum() {
			s := m.state[i]
			s.mu.Lock()
			if s.stale.Load() {
				st.State, st.Since, st.Err = MirrorStale, s.since, s.err
			}
			s.mu.Unlock()
			st.Blocked = int(s.blocked.Load())
		}
		out = append(out, st)
	}
	return out
}

// quorum reports whether a quorum policy applies.
func (m *Mirror) quorum() bool { return m.policy.Quorum > 0 }

// isStale reports whether mirror i is stale (never under the default
// policy).
func (m *Mirror) isStale(i int) bool { return m.quorum() && m.state[i].stale.Load() }

// markStale marks mirror i stale for err (the first reason is kept) and
// tells OnStale, once.
func (m *Mirror) markStale(i int, err error) {
	s := m.state[i]
	s.mu.Lock()
	if s.stale.Load() {
		s.mu.Unlock()
		return
	}
	s.since, s.err = m.policy.Now(), err
	s.stale.Store(true)
	st := MirrorStatus{Dir: m.reps[i].Dir, State: MirrorStale, Since: s.since, Err: err}
	s.mu.Unlock()
	if m.policy.OnStale != nil {
		m.policy.OnStale(st)
	}
}

// quorumErr returns nil while at least Quorum copies are current, else an
// error matching ErrMirrorQuorum and the stale copies' causes.
func (m *Mirror) quorumErr() error {
	current := 1
	var causes []error
	var stale []string
	for i := 1; i < len(m.reps); i++ {
		if !m.isStale(i) {
			current++
			continue
		}
		s := m.state[i]
		s.mu.Lock()
		causes = append(causes, s.err)
		s.mu.Unlock()
		stale = append(stale, m.reps[i].Dir)
	}
	if current >= m.policy.Quorum {
		return nil
	}
	return fmt.Errorf("%w: %d of %d copies are current and the policy needs %d (stale: %s; they are repaired when the log is next opened): %w",
		ErrMirrorQuorum, current, len(m.reps), m.policy.Quorum, strings.Join(stale, ", "), errors.Join(causes...))
}

// mirrorCall is one operation on one mirror, run on its own goroutine.
type mirrorCall struct {
	err   error
	state atomic.Int32 // callPending, then callDone (set by the call) or callAbandoned (by the waiter)
	done  chan struct{}
}

// What became of an operation's call on one mirror (see startMirrors).
const (
	callSkipped   int32 = iota // not started: the mirror was stale
	callPending                // running
	callDone                   // returned before the deadline (err may be set)
	callAbandoned              // missed the deadline; may still be running
)

// startMirrors starts fn on every current mirror, each on its own
// goroutine, under a quorum policy. The returned wait gives each mirror
// until Timeout from now, marks stale each that failed or missed it
// (op and name describe the operation in the error), and returns what
// became of each mirror's call (indexed by copy; callSkipped for the
// primary) and quorumErr. When a call returns after the waiter gave up on
// it, late (if not nil) is called with its index on the call's goroutine,
// to release what it made (such as an open file).
func (m *Mirror) startMirrors(op, name string, fn func(i int) error, late func(i int)) (wait func() ([]int32, error)) {
	calls := make([]*mirrorCall, len(m.reps))
	for i := 1; i < len(m.reps); i++ {
		if m.isStale(i) {
			continue
		}
		c := &mirrorCall{done: make(chan struct{})}
		c.state.Store(callPending)
		calls[i] = c
		go func() {
			c.err = fn(i)
			if !c.state.CompareAndSwap(callPending, callDone) {
				if late != nil {
					late(i)
				}
				m.state[i].blocked.Add(-1)
			}
			close(c.done)
		}()
	}
	timer := time.NewTimer(m.policy.Timeout)
	return func() ([]int32, error) {
		defer timer.Stop()
		outcome := make([]int32, len(m.reps))
		expired := false
		for i, c := range calls {
			if c == nil {
				continue
			}
			if !expired {
				select {
				case <-c.done:
				case <-timer.C:
					expired = true
				}
			}
			if expired && m.abandon(i, c) {
				outcome[i] = callAbandoned
				m.markStale(i, m.mirrorErr(i, fmt.Errorf("%s %s: %w (%v)", op, name, ErrMirrorTimeout, m.policy.Timeout)))
				continue
			}
			<-c.done // returned (at once, when the deadline had passed)
			outcome[i] = callDone
			if c.err != nil {
				m.markStale(i, m.mirrorErr(i, c.err))
			}
		}
		return outcome, m.quorumErr()
	}
}

// abandon gives up on c, mirror i's call, unless it has returned. The call
// is counted in the copy's Blocked before it can see that it was
// abandoned (it then uncounts itself), so that the count is never below 0.
func (m *Mirror) abandon(i int, c *mirrorCall) bool {
	m.state[i].blocked.Add(1)
	if c.state.CompareAndSwap(callPending, callAbandoned) {
		return true
	}
	m.state[i].blocked.Add(-1)
	return false
}

// onMirrors runs fn on every current mirror under a quorum policy and
// waits (see startMirrors).
func (m *Mirror) onMirrors(op, name string, fn func(i int) error) error {
	_, err := m.startMirrors(op, name, fn, nil)()
	return err
}

// errNoFile is the error of an operation on a mirror that has no file: it
// was stale when the file was opened (it is stale already and not called).
var errNoFile = errors.New("vfs: mirror copy has no file: it was stale when the file was opened")

// call runs fn on copy i's file.
func (f *mirrorFile) call(i int, fn func(File) error) error {
	if g := f.files[i]; g != nil {
		return fn(g)
	}
	return errNoFile
}

// openQuorum opens (create: creates) name in every current mirror under a
// quorum policy, f0 being the primary's file, with open. If the quorum is
// lost, every file is closed again (and, if create, removed) and the
// error returned.
func (m *Mirror) openQuorum(f0 File, op, name, rel string, open func(FS, string) (File, error), create bool) (File, error) {
	got := make([]File, len(m.reps))
	closeLate := func(i int) {
		if got[i] != nil {
			got[i].Close()
		}
	}
	outcome, err := m.startMirrors(op, name, func(i int) error {
		g, err := open(m.reps[i].FS, m.at(i, rel))
		got[i] = g
		return err
	}, closeLate)()
	mf := &mirrorFile{m: m, files: make([]File, len(m.reps))}
	mf.files[0] = f0
	for i := 1; i < len(m.reps); i++ {
		if outcome[i] != callDone || got[i] == nil {
			continue
		}
		if m.isStale(i) || err != nil {
			go func() {
				closeLate(i)
				if create && err != nil {
					m.reps[i].FS.Remove(m.at(i, rel))
				}
			}()
			continue
		}
		mf.files[i] = got[i]
	}
	if err != nil {
		f0.Close()
		if create {
			m.reps[0].FS.Remove(name)
		}
		return nil, err
	}
	return mf, nil
}

// writeQuorum writes p at off in every current mirror under a quorum
// policy (the primary was written). The mirrors write a copy of p: a call
// that misses its deadline may still write after WriteAt returned.
func (f *mirrorFile) writeQuorum(p []byte, off int64) error {
	buf := append([]byte(nil), p...)
	return f.m.onMirrors("write", f.Name(), func(i int) error {
		return f.call(i, func(g File) error {
			k, err := g.WriteAt(buf, off)
			if err == nil && k < len(buf) {
				err = io.ErrShortWrite
			}
			return err
		})
	})
}

// closeQuorum closes every copy's file under a quorum policy: the
// primary's and the current mirrors' (each within the deadline), and
// those of stale mirrors in the background. It returns the primary's
// error, else quorumErr.
func (f *mirrorFile) closeQuorum() error {
	err0 := f.files[0].Close()
	outcome, errM := f.m.startMirrors("close", f.Name(), func(i int) error { return f.call(i, File.Close) }, nil)()
	for i := 1; i < len(f.files); i++ {
		if outcome[i] == callSkipped {
			closeInBackground(f.files[i])
		}
	}
	if err0 != nil {
		return err0
	}
	return errM
}

// closeInBackground closes f (if not nil) on a goroutine of its own: f is
// a stale mirror's file, on which a call may still be blocked, and its
// Close may block as well.
func closeInBackground(f File) {
	if f != nil {
		go f.Close()
	}
}
