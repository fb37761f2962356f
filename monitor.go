package audit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/willibrandon/mtlog-audit/monitoring"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// Status is a snapshot of a Sink's health (see Sink.Status).
type Status = monitoring.Status

// HealthOptions configure HealthHandler; the zero value means the defaults.
type HealthOptions = monitoring.HandlerOptions

// WithMetrics makes the Sink export Prometheus metrics (named and defined in
// docs/monitoring.md) through reg, and only reg: nothing is registered
// globally. Without it no metric code runs on the write path. New fails if
// reg refuses the metrics, for instance because another open Sink
// registered them there (wrap reg with prometheus.WrapRegistererWith and a
// label to tell two sinks apart); the metrics of a closed Sink are
// replaced, so a log closed and opened again can reuse reg. After Close the
// metrics stay registered, with the state gauge at "closed". New refuses a
// nil reg.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(c *config) {
		if reg == nil {
			c.optionError("WithMetrics(nil): pass a prometheus.Registerer, such as prometheus.NewRegistry(); omit the option for no metrics")
			return
		}
		c.metrics = reg
	}
}

// HealthHandler serves the Sink's /metrics, /healthz and /readyz (see
// monitoring.Handler for what each checks and answers). /metrics serves
// opts.Gatherer, or else the registerer given to WithMetrics when it is
// also a prometheus.Gatherer (a *prometheus.Registry is). The handler only
// reads; it never writes to the log.
func HealthHandler(s *Sink, opts HealthOptions) http.Handler {
	if opts.Gatherer == nil {
		if g, ok := s.cfg.metrics.(prometheus.Gatherer); ok {
			opts.Gatherer = g
		}
	}
	return monitoring.Handler(s, opts)
}

// startMetrics makes the metrics of WithMetrics before the log opens, so
// that the log's commit hook can feed them.
func (c *config) startMetrics(s **Sink) *monitoring.Metrics {
	if c.metrics == nil {
		return nil
	}
	m := monitoring.New(monitoring.SourceFunc(func() Status { return (*s).Status() }), c.now())
	c.wal.OnBatch = m.ObserveBatch
	return m
}

// now returns the Sink's clock (WithClock, or time.Now).
func (c *config) now() func() time.Time {
	if c.wal.Now != nil {
		return c.wal.Now
	}
	return time.Now
}

// registerMetrics counts what New found and registers the metrics.
func (s *Sink) registerMetrics() error {
	if s.mon == nil {
		return nil
	}
	if s.repair != nil {
		n := 0
		for _, c := range s.repair.Copies {
			if !c.Verified && !c.Empty {
				n++
			}
		}
		s.mon.Corruption(monitoring.CorruptionMirrorRepair, n)
	}
	return s.mon.Register(s.cfg.metrics)
}

// timedWrite is Write with its duration and outcome counted.
func (s *Sink) timedWrite(ctx context.Context, ev *Event) (Receipt, error) {
	start := s.mon.WriteStart()
	r, err := s.write(ctx, ev)
	o := monitoring.OutcomeOK
	switch {
	case err == nil:
	case errors.Is(err, ErrUnwritable):
		o = monitoring.OutcomeUnwritable
	default:
		o = monitoring.OutcomeError
	}
	s.mon.WriteDone(start, o)
	return r, err
}

// dropped counts an event that an Emit gave up on with err.
func (s *Sink) dropped(ctx context.Context, err error) {
	if s.mon == nil || err == nil {
		return
	}
	r := monitoring.DropError
	switch {
	case errors.Is(err, ErrUnwritable):
		r = monitoring.DropUnwritable
	case errors.Is(err, ErrSinkClosed):
		r = monitoring.DropClosed
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		r = monitoring.DropTimeout
	case errors.Is(err, ErrFailed):
		r = monitoring.DropFailed
	}
	s.mon.Dropped(r)
}

// verified counts the corruption that VerifyIntegrity found.
func (s *Sink) verified(err error) {
	switch {
	case s.mon == nil || err == nil:
	case errors.Is(err, ErrCorrupt):
		s.mon.Corruption(monitoring.CorruptionVerifyDamage, 1)
	case errors.Is(err, ErrIntegrity):
		s.mon.Corruption(monitoring.CorruptionVerifyIntegrity, 1)
	}
}

// Status reports the Sink's health now: its state, the log's size, free
// space, the newest signed checkpoint, the mirrors and (with WithMetrics)
// the writes in flight. It reads the log directory and never writes; it is
// safe for concurrent use, also after Close. The metrics of WithMetrics and
// HealthHandler are computed from it.
func (s *Sink) Status() Status {
	st := Status{Now: s.cfg.now()(), Opened: s.opened, State: monitoring.StateOK, Flagged: s.life.flagged.Load()}
	if s.closed.Load() {
		st.State = monitoring.StateClosed
	} else if err := s.w.Err(); err != nil {
		st.State, st.Cause = monitoring.StateFailed, err
		if s.cfg.policy == policyFailOpen {
			st.State = monitoring.StateFailOpen
		}
	}
	newest := ""
	sizes := map[uint64]int64{} // segment number → bytes, for the backends' lag
	if names, err := s.cfg.fs.List(s.cfg.dir); err == nil {
		var last uint64
		for _, n := range names {
			num, ok := wal.ParseSegmentName(n)
			if !ok {
				continue
			}
			if fi, err := s.cfg.fs.Stat(filepath.Join(s.cfg.dir, n)); err == nil {
				st.WALBytes += fi.Size()
				st.Segments++
				sizes[num] = fi.Size()
			}
			if newest == "" || num > last {
				newest, last = n, num
			}
		}
	}
	st.DiskFree, st.DiskErr = s.diskFree()
	st.Signed = s.led.Signed()
	if st.Signed {
		st.Checkpoint, _ = s.led.NewestCheckpoint()
		st.CheckpointEvery = s.cfg.ledger.Heartbeat
	}
	if m, ok := s.cfg.fs.(*vfs.Mirror); ok {
		states := m.Status() // WithRedundancyQuorum: a stale copy is down
		for i, r := range m.Replicas()[1:] {
			ms := monitoring.MirrorStatus{Dir: r.Dir, Up: true}
			if i < len(states) && states[i].State == vfs.MirrorStale {
				ms.Up, ms.Err = false, states[i].Err
			} else if newest != "" {
				if _, err := r.FS.Stat(filepath.Join(r.Dir, newest)); err != nil {
					ms.Up, ms.Err = false, err
				}
			}
			st.Mirrors = append(st.Mirrors, ms)
		}
	}
	if s.shipper != nil {
		st.Backends, st.Quorum = s.shippingStatus(sizes)
		st.HasQuorum = true
	}
	if s.mon != nil {
		s.mon.Track(&st)
	}
	return st
}

// diskFree is the free-space ratio of the log's filesystem, known only
// when the log is on the operating system's filesystem.
func (s *Sink) diskFree() (float64, error) {
	fsys := s.cfg.fs
	if m, ok := fsys.(*vfs.Mirror); ok {
		fsys = m.Replicas()[0].FS
	}
	if _, ok := fsys.(vfs.OSFS); !ok {
		return 0, fmt.Errorf("the log is not on the operating system's filesystem (WithFileSystem)")
	}
	return monitoring.DiskFree(s.cfg.dir)
}
