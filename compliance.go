package audit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/willibrandon/mtlog-audit/compliance"
)

// ErrComplianceUnmet is matched (errors.Is) by the error of New when the
// configuration does not meet the WithCompliance profile; the error is a
// *compliance.UnmetError listing every unmet requirement, the clause it
// comes from and the option that meets it.
var ErrComplianceUnmet = compliance.ErrUnmet

// ErrMissingFields is matched by the error of Write, and reported by Emit,
// for an event that lacks a field the compliance profile requires when the
// profile rejects such events (PCI DSS 10.2.2, NIST SP 800-53 AU-3); the
// error names the missing fields. It matches ErrUnwritable.
var ErrMissingFields = fmt.Errorf("%w: missing required fields", ErrUnwritable)

// ErrReservedProperty is matched by the error of Write for an event that
// carries LifecycleProperty or MissingFieldsProperty: only the Sink writes
// those, so that nobody forges a lifecycle event. It matches ErrUnwritable.
var ErrReservedProperty = fmt.Errorf("%w: reserved property", ErrUnwritable)

// MissingFieldsProperty is the reserved property of an event stored
// although required fields were missing (a profile that flags rather than
// rejects): its value lists the missing fields. Status.Flagged counts such
// events.
const MissingFieldsProperty = compliance.MissingFieldsProperty

// complianceConfig is what WithCompliance and WithLifecycleEvents set
// (config.comp).
type complianceConfig struct {
	name      string // the profile name given; "" without WithCompliance
	calls     int
	opts      []compliance.Option
	profile   *compliance.Profile // built by checkCompliance
	waivers   map[compliance.Requirement]string
	lifecycle bool // lifecycle events are written
}

// WithCompliance applies the compliance profile name: "HIPAA", "PCI-DSS",
// "SOX", "GDPR" or "NIST-800-53-HIGH" (letter case does not matter; see
// package compliance for each profile's requirements and the clauses they
// cite). A profile:
//   - turns on what needs nothing from you: the log's own lifecycle events
//     (see LifecycleProperty), access logging (WithAccessLog), and the
//     check of required fields on every event (compliance.Fields), which
//     rejects an event that lacks one (Write returns an error matching
//     ErrMissingFields) or flags it (MissingFieldsProperty), as the
//     profile says;
//   - checks the rest of the configuration in New: signing, encryption,
//     an off-box copy, retention and the failure policy. New fails with
//     one error matching ErrComplianceUnmet that lists every unmet
//     requirement and the option that meets it.
//
// opts adjust the profile: compliance.Waive(requirement, reason) exempts
// one requirement (the waiver and its reason are written to the log as a
// configuration event), compliance.RequireFields and
// compliance.OnMissingFields change the required fields. New refuses an
// unknown name, naming the known ones, and a second WithCompliance.
func WithCompliance(name string, opts ...compliance.Option) Option {
	return func(c *config) {
		c.comp.calls++
		c.comp.name = name
		c.comp.opts = opts
	}
}

// WithLifecycleEvents makes the Sink write its own lifecycle events (see
// LifecycleProperty) without a compliance profile, which turns them on by
// itself: start, stop, configuration, recovery of a torn tail, key
// rotation and the switches of WithFailOpen. Without either, the log holds
// only the events written to it, and the first one has sequence number 1.
func WithLifecycleEvents() Option {
	return func(c *config) { c.comp.lifecycle = true }
}

// checkCompliance applies the profile and records every requirement the
// configuration does not meet (called by check).
func (c *config) checkCompliance() {
	cc := &c.comp
	if cc.calls == 0 {
		return
	}
	if cc.calls > 1 {
		c.optionError("WithCompliance given %d times: pass one profile", cc.calls)
		return
	}
	p, set, err := compliance.Apply(cc.name, cc.opts...)
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("audit: %w: WithCompliance(%q): %w", ErrInvalidOption, cc.name, err))
		return
	}
	cc.profile, cc.waivers = &p, set.Waivers
	if c.retentionPolicy == (compliance.RetentionPolicy{}) {
		// The profile's bounds govern deletion (Sink.ApplyRetention), not
		// only New's check: a retention shorter than the minimum deletes
		// nothing, and data past the maximum is reported overdue.
		c.retentionPolicy = compliance.RetentionPolicy{Name: p.Name, Min: p.MinRetention, Max: p.MaxRetention}
		if _, waived := set.Waivers[compliance.ReqRetentionMin]; waived {
			c.retentionPolicy.Min = 0
		}
		if _, waived := set.Waivers[compliance.ReqRetentionMax]; waived {
			c.retentionPolicy.Max = 0
		}
	}
	if _, waived := set.Waivers[compliance.ReqLifecycle]; p.Lifecycle && !waived {
		cc.lifecycle = true
	}
	if _, waived := set.Waivers[compliance.ReqAccessLog]; p.AccessLog && !waived {
		c.accessLog = true
	}
	if _, waived := set.Waivers[compliance.ReqFields]; waived {
		p.Fields = nil
		cc.profile = &p
	}
	if unmet := p.Check(c.complianceState(), set.Waivers); len(unmet) > 0 {
		c.errs = append(c.errs, fmt.Errorf("audit: %w", &compliance.UnmetError{Profile: p.Name, Unmet: unmet}))
	}
}

// complianceState is what a profile checks of c.
func (c *config) complianceState() compliance.Config {
	st := compliance.Config{
		Retention:  c.retention,
		Encryption: c.keys != nil && c.keys.enc != nil,
		Signing:    c.ledger.SigningKey != "" || c.ledger.EpochEvery > 0,
		Mirrors:    len(c.mirrors),
		FailOpen:   c.policy == policyFailOpen,
		AccessLog:  c.accessLog,
		Lifecycle:  c.comp.lifecycle,
	}
	if c.ship != nil {
		// The set as the options give it: New opens the backends
		// (WithShippingOpen, the cloud shorthands) only after this check.
		st.Backends = len(c.ship.set)
	}
	return st
}

// CheckConfig applies opts and returns every problem New would report
// before it opens the log: bad options and, with WithCompliance, every
// unmet requirement (the error then matches ErrComplianceUnmet). It opens
// nothing (WithSigningKeyFile reads its key file); WithWAL may be omitted.
// `mtlog-audit compliance check` uses it.
func CheckConfig(opts ...Option) error {
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	return cfg.check()
}

// copyKey marks the context of WriteCopy.
type copyKey struct{}

// WriteCopy is Write for an event read from another log, as `mtlog-audit
// recover` copies a salvaged log into a new one: the event is written as
// it is, with its reserved properties (LifecycleProperty,
// MissingFieldsProperty), and the profile's required fields are not
// checked (the original log checked them). Everything else is as for
// Write. Applications write with Write, Emit or EmitEvent.
func (s *Sink) WriteCopy(ctx context.Context, ev *Event) (Receipt, error) {
	return s.Write(context.WithValue(ctx, copyKey{}, true), ev)
}

// admit refuses an event with a reserved property and applies the required
// fields of the profile: it returns ev, or a flagged copy of it.
func (s *Sink) admit(ctx context.Context, ev *Event) (*Event, error) {
	if ctx.Value(copyKey{}) != nil {
		return ev, nil
	}
	if _, ok := ev.Properties[LifecycleProperty]; ok {
		return nil, fmt.Errorf("%w %s: only the Sink writes lifecycle events; rename the property", ErrReservedProperty, LifecycleProperty)
	}
	if _, ok := ev.Properties[MissingFieldsProperty]; ok {
		return nil, fmt.Errorf("%w %s: only the Sink flags events; rename the property", ErrReservedProperty, MissingFieldsProperty)
	}
	p := s.cfg.comp.profile
	if p == nil || len(p.Fields) == 0 {
		return ev, nil
	}
	miss := compliance.Missing(ev.Properties, p.Fields)
	if miss == nil {
		return ev, nil
	}
	if p.OnMissing == compliance.Reject {
		return nil, fmt.Errorf("%w %s (profile %s requires %s: %s); add them as properties of the event (names match in any letter case)",
			ErrMissingFields, strings.Join(miss, ", "), p.Name, strings.Join(p.Fields, ", "), p.Clauses[compliance.ReqFields])
	}
	flagged := *ev
	flagged.Properties = make(map[string]any, len(ev.Properties)+1)
	maps.Copy(flagged.Properties, ev.Properties)
	list := make([]any, len(miss))
	for i, m := range miss {
		list[i] = m
	}
	flagged.Properties[MissingFieldsProperty] = list
	s.life.flagged.Add(1)
	return &flagged, nil
}

// lifecycle is the Sink's state for its lifecycle events (Sink.life).
type lifecycle struct {
	flagged atomic.Uint64 // events stored flagged (MissingFieldsProperty)

	mu       sync.Mutex
	started  bool      // the start event is written: Close writes the stop event
	dropping bool      // fail-open is dropping events
	since    time.Time // the first drop
	drops    int       // events dropped since
	noted    bool      // the fail-open event was written
}

// startLifecycle writes the events of the Sink's opening: the recovery of
// a torn tail or of copies, the start, the configuration and each waiver.
func (s *Sink) startLifecycle(ctx context.Context) error {
	if !s.cfg.comp.lifecycle {
		return nil
	}
	if t := s.w.TornTail(); t != nil {
		if _, err := s.appendLifecycle(ctx, LifecycleRecovery, "Recovered after a crash: cut a torn tail of {Bytes} unacknowledged bytes at offset {Offset} of segment {Segment}",
			map[string]any{"Segment": t.Segment, "Offset": t.Offset, "Bytes": t.Bytes}); err != nil {
			return err
		}
	}
	if s.repair.Repaired() {
		if _, err := s.appendLifecycle(ctx, LifecycleRecovery, "Repaired copies of the log: {Repair}", map[string]any{"Repair": strings.TrimSpace(s.repair.String())}); err != nil {
			return err
		}
	}
	host, _ := os.Hostname()
	if _, err := s.appendLifecycle(ctx, LifecycleStart, "Audit log {Dir} started by process {PID} on {Host}",
		map[string]any{"Dir": s.cfg.dir, "PID": os.Getpid(), "Host": host}); err != nil {
		return err
	}
	s.life.mu.Lock()
	s.life.started = true
	s.life.mu.Unlock()
	if _, err := s.appendLifecycle(ctx, LifecycleConfig, "Audit log configuration: profile {Profile}", s.cfg.describe()); err != nil {
		return err
	}
	for _, r := range slices.Sorted(maps.Keys(s.cfg.comp.waivers)) {
		if _, err := s.appendLifecycle(ctx, LifecycleConfig, "Compliance requirement {Requirement} of profile {Profile} waived: {Reason}",
			map[string]any{"Profile": s.cfg.comp.profile.Name, "Requirement": string(r), "Reason": s.cfg.comp.waivers[r]}); err != nil {
			return err
		}
	}
	return nil
}

// stopLifecycle writes the stop event (Close).
func (s *Sink) stopLifecycle() error {
	s.life.mu.Lock()
	started := s.life.started
	s.life.mu.Unlock()
	if !started {
		return nil
	}
	_, err := s.appendLifecycle(context.Background(), LifecycleStop, "Audit log {Dir} stopped by process {PID}", map[string]any{"Dir": s.cfg.dir, "PID": os.Getpid()})
	return err
}

// describe lists the configuration for the config lifecycle event: names,
// key fingerprints, paths and numbers, never a secret.
func (c *config) describe() map[string]any {
	props := map[string]any{"Profile": "none", "FailurePolicy": [...]string{"fail-closed", "panic", "fail-open"}[c.policy], "SyncMode": [...]string{"durable", "interval", "none"}[min(int(c.wal.Sync), 2)], "AccessLog": c.accessLog}
	if p := c.comp.profile; p != nil {
		props["Profile"] = p.Name
		props["RequiredFields"] = strList(p.Fields)
		props["OnMissingFields"] = p.OnMissing.String()
	}
	if k := c.ledger.SigningKey; k != "" {
		props["SigningKey"] = keyFingerprint(k)
	}
	if c.ledger.EpochEvery > 0 {
		props["ForwardSecurityEpoch"] = c.ledger.EpochEvery.String()
	}
	if len(c.mirrors) > 0 {
		props["Mirrors"] = strList(c.mirrors)
	}
	if c.ship != nil && len(c.ship.backends) > 0 {
		names := make([]string, len(c.ship.backends))
		for i, b := range c.ship.backends {
			names[i] = b.Name()
		}
		props["Backends"] = strList(names)
		props["ShippingQuorum"] = c.ship.quorum
	}
	if k := c.keys; k != nil && k.path != "" {
		props["Keyring"] = k.path
		if k.enc != nil {
			props["Encrypted"] = "all properties"
			if len(*k.enc) > 0 {
				props["Encrypted"] = strList(*k.enc)
			}
		}
		if k.pseudo != nil {
			props["Pseudonymized"] = strList(*k.pseudo)
		}
	}
	if c.retention > 0 {
		props["Retention"] = compliance.Period(c.retention)
	}
	return props
}

func strList(s []string) []any {
	l := make([]any, len(s))
	for i, v := range s {
		l[i] = v
	}
	return l
}

// keyFingerprint is the public part of a signed-note private key
// "PRIVATE+KEY+name+hash+key": "name+hash", which names the key as its
// verifier key does.
func keyFingerprint(skey string) string {
	f := strings.SplitN(skey, "+", 5)
	if len(f) < 5 {
		return "unparsed key"
	}
	return f[2] + "+" + f[3]
}

// noteEmit writes the fail-open lifecycle events after an Emit under
// WithFailOpen: the first event dropped after writes succeeded, and the
// first written after drops (with how many were dropped).
func (s *Sink) noteEmit(ctx context.Context, err error) {
	if !s.cfg.comp.lifecycle || s.cfg.policy != policyFailOpen {
		return
	}
	l := &s.life
	if err != nil {
		if errors.Is(err, ErrUnwritable) || errors.Is(err, ErrSinkClosed) {
			return // the event, or the Sink's end, not the log's failure
		}
		l.mu.Lock()
		l.drops++
		first := !l.dropping
		if first {
			l.dropping, l.since = true, s.cfg.now()()
		}
		l.mu.Unlock()
		if first {
			// Best effort: the log that dropped the event is likely to
			// drop this one too; the fail-closed event says whether it
			// was written.
			_, werr := s.appendLifecycle(ctx, LifecycleFailOpen, "Audit events dropped under fail-open: {Error}", map[string]any{"Error": err.Error()})
			l.mu.Lock()
			l.noted = werr == nil
			l.mu.Unlock()
		}
		return
	}
	l.mu.Lock()
	if !l.dropping {
		l.mu.Unlock()
		return
	}
	props := map[string]any{"Dropped": l.drops, "Since": l.since.UTC().Format(time.RFC3339Nano), "FailOpenRecorded": l.noted}
	l.dropping, l.drops, l.noted = false, 0, false
	l.mu.Unlock()
	_, _ = s.appendLifecycle(ctx, LifecycleFailClosed, "Audit events written again after {Dropped} were dropped under fail-open since {Since}", props)
}

// RotateKeys starts a new generation of the keyring's data keys (see
// protect.Keyring.Rotate) and, with lifecycle events on, records the
// rotation in the log (PCI DSS 10.2.1.5 changes to credentials; NIST SP
// 800-53 AU-12(3)). It returns ErrNoKeyring without WithKeyring.
func (s *Sink) RotateKeys(ctx context.Context) error {
	kr := s.Keyring()
	if kr == nil {
		return ErrNoKeyring
	}
	if s.closed.Load() {
		return ErrSinkClosed
	}
	if err := kr.Rotate(ctx); err != nil {
		return fmt.Errorf("audit: rotate keys: %w", err)
	}
	if !s.cfg.comp.lifecycle {
		return nil
	}
	if _, err := s.appendLifecycle(ctx, LifecycleKeyRotation, "Keyring {Keyring} rotated to a new key generation", map[string]any{"Keyring": s.cfg.keys.path}); err != nil {
		return fmt.Errorf("audit: the keys are rotated, but the rotation is not logged: %w", err)
	}
	return nil
}
