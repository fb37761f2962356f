package audit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/monitoring"
	"github.com/willibrandon/mtlog-audit/replica"
	"github.com/willibrandon/mtlog-audit/wal"
)

// ErrShipping is matched (errors.Is) by the errors the failure handler is
// given, with a nil event, when shipping to a backend fails (the error is
// then also a *replica.ShipError naming the backend) or when no quorum of
// backends was reachable for the alarm time (ErrNoQuorum). Local writes go
// on in both cases.
var ErrShipping = errors.New("shipping")

// ErrNoQuorum is matched by the failure handler's error when fewer than the
// quorum of backends were reachable for longer than the alarm time
// (WithShippingAlarm).
var ErrNoQuorum = replica.ErrNoQuorum

// ShippingHealth is the state of shipping (see Sink.ShippingHealth).
type ShippingHealth = replica.Health

// shipping is what the shipping options configure.
type shipping struct {
	quorum     int                // the largest quorum a WithShipping gave
	setQuorum  int                // WithShippingQuorum's, 0 if not given
	set        []shipEntry        // in the order of the options
	backends   []backends.Backend // the set, opened, from hookShipping on
	opened     []backends.Backend // by the openers, closed with the Sink
	closed     sync.Once
	alarm      time.Duration
	minBackoff time.Duration
	maxBackoff time.Duration
	closeWait  time.Duration // WithShippingCloseTimeout's
	closeSet   bool
}

// shipEntry is a backend of the set: one of WithShipping's, or one that
// a WithShippingOpen opener opens at New.
type shipEntry struct {
	b    backends.Backend
	open BackendOpener
}

func (c *config) shipping() *shipping {
	if c.ship == nil {
		c.ship = &shipping{}
	}
	return c.ship
}

// BackendOpener opens a backend for WithShippingOpen, within ctx.
type BackendOpener func(ctx context.Context) (backends.Backend, error)

// shipOpenTimeout bounds what New waits for each BackendOpener.
const shipOpenTimeout = 30 * time.Second

// shipCloseTimeout is the default of WithShippingCloseTimeout.
const shipCloseTimeout = 10 * time.Second

// WithShipping copies every sealed segment and every signed checkpoint of
// the log to each of bs, as immutable objects (docs/replication.md), and
// counts an object as off the box once quorum of them confirmed it (read it
// back, or the service checked its checksum). Shipping runs in the
// background and never delays an acknowledgement: what is not yet off the
// box is at most the unsealed segment (bound it in time with
// WithSegmentMaxAge) plus the objects in flight. A backend that is down
// does not fail New; it shows in ShippingHealth and the failure handler
// (errors matching ErrShipping), and it is retried with exponential backoff
// behind a circuit breaker.
//
// Several WithShipping (and WithShippingOpen, and the shorthands of package
// cloud) form one set of backends under one quorum: the largest quorum any
// of them gives, unless WithShippingQuorum sets it. The backends stay the
// caller's: Close does not close them. New refuses a quorum outside
// 1..len(bs), a nil backend and two backends of the same Name in the set.
func WithShipping(quorum int, bs ...backends.Backend) Option {
	return func(c *config) {
		s := c.shipping()
		if len(bs) == 0 {
			c.optionError("WithShipping(%d): no backend; pass at least one, such as one from backends/fs.New", quorum)
			return
		}
		if quorum < 1 || quorum > len(bs) {
			c.optionError("WithShipping(%d, %d backends): the quorum must be 1 to %d", quorum, len(bs), len(bs))
		}
		for i, b := range bs {
			if b == nil {
				c.optionError("WithShipping: backend %d is nil", i)
				continue
			}
			s.set = append(s.set, shipEntry{b: b})
		}
		s.quorum = max(s.quorum, quorum)
	}
}

// WithShippingOpen adds to the set of WithShipping the backend open
// returns, with a quorum of 1 (see WithShipping for how the set's quorum is
// chosen). New calls open, with a context that ends after 30 seconds,
// before it opens the log, and fails with open's error (matching
// ErrShipping) if it fails: a missing bucket, refused credentials or a
// service that does not answer stop New, where WithShipping's backends,
// opened by the caller, are retried in the background. The backend is the
// Sink's: Close closes it. It is what the shorthands of package cloud
// (cloud.WithS3, cloud.WithAzure, cloud.WithGCS) are made of.
func WithShippingOpen(open BackendOpener) Option {
	return func(c *config) {
		s := c.shipping()
		if open == nil {
			c.optionError("WithShippingOpen(nil): pass a function that opens the backend")
			return
		}
		s.set = append(s.set, shipEntry{open: open})
		s.quorum = max(s.quorum, 1)
	}
}

// WithShippingQuorum sets the quorum of the set of backends that
// WithShipping, WithShippingOpen and package cloud's shorthands form: an
// object counts as off the box once k of them confirmed it. New refuses a
// k outside 1 to the number of backends.
func WithShippingQuorum(k int) Option {
	return func(c *config) {
		if k < 1 {
			c.optionError("WithShippingQuorum(%d): the quorum must be at least 1", k)
			return
		}
		c.shipping().setQuorum = k
	}
}

// WithShippingAlarm sets how long fewer than the quorum of WithShipping's
// backends may be reachable before the failure handler is told (an error
// matching ErrNoQuorum) and ShippingHealth reports the alarm (default 5
// minutes). New refuses a duration that is not positive.
func WithShippingAlarm(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.optionError("WithShippingAlarm(%v): pass a positive duration, such as 5*time.Minute", d)
			return
		}
		c.shipping().alarm = d
	}
}

// WithShippingRetry sets the bounds of the exponential backoff between
// failed attempts to ship to a backend (defaults 100ms and 30s); a backend
// whose circuit breaker opened is tried again after maxBackoff. New refuses
// bounds that are not positive or not in order.
func WithShippingRetry(minBackoff, maxBackoff time.Duration) Option {
	return func(c *config) {
		if minBackoff <= 0 || maxBackoff < minBackoff {
			c.optionError("WithShippingRetry(%v, %v): pass 0 < min ≤ max, such as 100ms and 30s", minBackoff, maxBackoff)
			return
		}
		s := c.shipping()
		s.minBackoff, s.maxBackoff = minBackoff, maxBackoff
	}
}

// WithShippingCloseTimeout bounds how long Close waits for the backends of
// WithShipping to take what is left: the segment Close seals, the final
// checkpoint and anything else not yet shipped (default 10 seconds). Close
// waits for every backend, so that each holds the whole closed log, except
// that once the quorum holds it, it does not wait for a backend whose last
// attempt failed. What is not shipped, by a backend that is down for
// instance, does not fail Close (the log on disk is complete): the failure
// handler is told, with a nil event and an error matching ErrShipping and
// replica.ErrUnshipped that names the backend and what it lacks, it stays
// in ShippingHealth, and the next New on the directory ships it. A
// backend that ignores cancellation can add up to replica.StopGrace. 0
// makes Close not wait, nor tell; New refuses a negative d.
func WithShippingCloseTimeout(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.optionError("WithShippingCloseTimeout(%v): pass 0 or a positive duration, such as 10*time.Second", d)
			return
		}
		s := c.shipping()
		s.closeWait, s.closeSet = d, true
	}
}

// WithSegmentMaxAge seals the active segment once the first record written
// to it is d old, so that an acknowledged event waits at most d (plus the
// time to ship) before it can be shipped: the recovery point of a lost
// machine (docs/replication.md, "Recovery point"). Without it, segments are
// sealed when full (WithSegmentSize) and on Close. Sealing costs one fsync
// and a small seal record per segment: a d below a second makes many small
// segments. New refuses a d that is not positive.
func WithSegmentMaxAge(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.optionError("WithSegmentMaxAge(%v): pass a positive age, such as time.Minute; omit the option to seal segments by size only", d)
			return
		}
		c.wal.SegmentMaxAge = d
	}
}

// shipHooks forwards the WAL's seals and the ledger's checkpoints to the
// shipper, which starts after both are open.
type shipHooks struct {
	p atomic.Pointer[replica.Shipper]
}

// hookShipping checks the set of backends, opens the WithShippingOpen
// ones and wires the seal and checkpoint notifications (before the WAL and
// ledger open). It returns nil without shipping options.
func hookShipping(c *config) (*shipHooks, error) {
	s := c.ship
	if s == nil || len(s.set) == 0 {
		if s != nil && s.setQuorum > 0 {
			return nil, fmt.Errorf("audit: %w: WithShippingQuorum(%d) without a backend: add WithShipping or a shorthand of package cloud", ErrInvalidOption, s.setQuorum)
		}
		return nil, nil
	}
	n := len(s.set)
	if s.setQuorum > n {
		return nil, fmt.Errorf("audit: %w: WithShippingQuorum(%d): there are %d backends; the quorum must be 1 to %d", ErrInvalidOption, s.setQuorum, n, n)
	}
	seen := map[string]bool{}
	for i, e := range s.set {
		b := e.b
		if e.open != nil {
			ctx, cancel := context.WithTimeout(context.Background(), shipOpenTimeout)
			var err error
			b, err = e.open(ctx)
			cancel()
			if err == nil && b == nil {
				err = fmt.Errorf("WithShippingOpen: backend %d: the opener returned neither a backend nor an error", i)
			}
			if err != nil {
				s.close()
				return nil, fmt.Errorf("audit: %w: open a backend: %w", ErrShipping, err)
			}
			s.opened = append(s.opened, b)
		}
		if seen[b.Name()] {
			s.close()
			return nil, fmt.Errorf("audit: %w: WithShipping: two backends are %s; give each its own bucket, prefix or directory", ErrInvalidOption, b.Name())
		}
		seen[b.Name()] = true
		s.backends = append(s.backends, b)
	}
	if s.setQuorum > 0 {
		s.quorum = s.setQuorum
	}
	if !s.closeSet {
		s.closeWait = shipCloseTimeout
	}
	h := &shipHooks{}
	c.wal.OnSeal = func(seal wal.Seal) {
		if sh := h.p.Load(); sh != nil {
			sh.NoteSeal(seal)
		}
	}
	c.ledger.OnCheckpoint = func(signed []byte) {
		if sh := h.p.Load(); sh != nil {
			sh.NoteCheckpoint(signed)
		}
	}
	return h, nil
}

// close closes the backends the WithShippingOpen openers opened, once.
func (s *shipping) close() {
	if s == nil {
		return
	}
	s.closed.Do(func() {
		for _, b := range s.opened {
			_ = b.Close() // nothing of the log depends on it
		}
	})
}

// start starts the shipper of the open log w.
func (h *shipHooks) start(c *config, w *wal.WAL) (*replica.Shipper, error) {
	if h == nil {
		return nil, nil
	}
	s := c.ship
	sh, err := replica.NewShipper(replica.ShipperOptions{
		FS: c.fs, Dir: c.dir, Backends: s.backends, Quorum: s.quorum, Durable: w.DurableSeq,
		Alarm: s.alarm, MinBackoff: s.minBackoff, MaxBackoff: s.maxBackoff, BreakerOpen: s.maxBackoff,
		OnError: func(err error) { c.onFailure(nil, fmt.Errorf("audit: %w: %w", ErrShipping, err)) },
	})
	if err != nil {
		return nil, fmt.Errorf("audit: start shipping: %w", err)
	}
	h.p.Store(sh) // before it starts: no seal is missed in between
	sh.Start()
	return sh, nil
}

// ShippingHealth reports the state of shipping (WithShipping): per
// backend, what it holds, its last error and its circuit breaker, and
// whether a quorum is reachable. ok is false without WithShipping.
func (s *Sink) ShippingHealth() (h ShippingHealth, ok bool) {
	if s.shipper == nil {
		return ShippingHealth{}, false
	}
	return s.shipper.Health(), true
}

// WaitShipped waits until the quorum of WithShipping's backends hold every
// segment sealed and every checkpoint signed when it is called, or ctx
// ends. Close then ships the segment it seals and the final checkpoint
// (WithShippingCloseTimeout). Without WithShipping it returns nil at once.
func (s *Sink) WaitShipped(ctx context.Context) error {
	if s.shipper == nil {
		return nil
	}
	return s.shipper.WaitHeld(ctx, s.cfg.ship.quorum)
}

// finishShipping ships, at Close, what the closed log holds and the
// backends lack, for at most the close timeout, while the log still holds
// its directory lock (the Sink releases it after this), so that no other
// process ships or writes the cursor meanwhile. A backend left short is
// told to the failure handler; Close's error does not carry it.
func (s *Sink) finishShipping() {
	if s.shipper == nil {
		return
	}
	sh := s.cfg.ship
	ctx, cancel := context.WithTimeout(context.Background(), sh.closeWait)
	defer cancel()
	err := s.shipper.Finish(ctx, sh.quorum)
	if err == nil || sh.closeWait == 0 {
		return
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		s.cfg.onFailure(nil, fmt.Errorf("audit: %w: %w", ErrShipping, e))
	}
}

// shippingStatus is the shipper's report for the metrics and /readyz, given
// the sizes of the log's segments: each backend is up when its last attempt
// succeeded, and behind by the sealed segments (and their bytes) after the
// last one its cursor says it holds; the active segment, not yet eligible,
// is not counted.
func (s *Sink) shippingStatus(sizes map[uint64]int64) ([]monitoring.BackendStatus, bool) {
	h := s.shipper.Health()
	segs := slices.Sorted(maps.Keys(sizes))
	if len(segs) > 0 {
		segs = segs[:len(segs)-1] // the active segment
	}
	out := make([]monitoring.BackendStatus, 0, len(h.Backends))
	for _, b := range h.Backends {
		bs := monitoring.BackendStatus{Name: b.Name, Up: b.Err == nil}
		for _, n := range segs {
			if n > b.Held.Segment {
				bs.LagSegments++
				bs.LagBytes += sizes[n]
			}
		}
		out = append(out, bs)
	}
	return out, h.Reachable >= h.Quorum
}
