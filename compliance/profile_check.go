package compliance

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Option adjusts a profile for one log: see Waive, RequireFields and
// OnMissingFields.
type Option func(*Settings)

// Settings are what the Options of a profile set; Apply builds them.
type Settings struct {
	// Waivers maps each waived requirement to the reason given.
	Waivers map[Requirement]string
	fields  []string
	setF    bool
	mode    *FieldMode
	errs    []error
}

// Waive exempts the log from requirement r, for the reason given, such as
// an addressable HIPAA specification met by an equivalent measure
// (164.306(d)(3)). The reason is required; the audit package records the
// waiver, with its reason, as a configuration lifecycle event.
func Waive(r Requirement, reason string) Option {
	return func(s *Settings) {
		switch {
		case !slices.Contains(Requirements, r):
			s.errs = append(s.errs, fmt.Errorf("Waive(%q): unknown requirement; use one of %s", r, reqList()))
		case strings.TrimSpace(reason) == "":
			s.errs = append(s.errs, fmt.Errorf("Waive(%q, \"\"): give the reason for the waiver; it is recorded in the log", r))
		default:
			if s.Waivers == nil {
				s.Waivers = map[Requirement]string{}
			}
			s.Waivers[r] = reason
		}
	}
}

// RequireFields replaces the profile's required fields by fields (the
// names of Fields, or any property name, such as "PatientId"). With no
// fields, no field is required.
func RequireFields(fields ...string) Option {
	return func(s *Settings) {
		for _, f := range fields {
			if strings.TrimSpace(f) == "" {
				s.errs = append(s.errs, fmt.Errorf("RequireFields(%q): a field name is empty", fields))
				return
			}
		}
		s.fields, s.setF = slices.Clone(fields), true
	}
}

// OnMissingFields overrides what the profile does with an event that
// lacks a required field: Reject or Flag.
func OnMissingFields(m FieldMode) Option {
	return func(s *Settings) {
		if m != Reject && m != Flag {
			s.errs = append(s.errs, fmt.Errorf("OnMissingFields(%d): use compliance.Reject or compliance.Flag", m))
			return
		}
		s.mode = &m
	}
}

func reqList() string {
	s := make([]string, len(Requirements))
	for i, r := range Requirements {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// Apply returns the profile named name with opts applied, and the
// settings (its waivers). The error lists every bad option together; it
// matches ErrUnknownProfile for an unknown name.
func Apply(name string, opts ...Option) (Profile, Settings, error) {
	var s Settings
	p, err := Lookup(name)
	if err != nil {
		return Profile{}, s, err
	}
	for _, o := range opts {
		if o != nil {
			o(&s)
		}
	}
	if s.setF {
		p.Fields = s.fields
	}
	if s.mode != nil {
		p.OnMissing = *s.mode
	}
	return p, s, errors.Join(s.errs...)
}

// Config is what a log is configured with, as far as a profile cares.
type Config struct {
	Retention  time.Duration // 0: kept forever
	Encryption bool          // some properties are encrypted at rest
	Signing    bool          // checkpoints are signed
	Mirrors    int           // WithRedundancy copies
	Backends   int           // WithShipping backends
	FailOpen   bool          // WithFailOpen
	AccessLog  bool
	Lifecycle  bool
}

// Unmet is one requirement a configuration does not meet.
type Unmet struct {
	Requirement Requirement
	// Clause cites the standard.
	Clause string
	// Problem says what is wrong, and Fix which option meets it.
	Problem, Fix string
}

// String renders u on one line.
func (u Unmet) String() string {
	return fmt.Sprintf("%s (%s): %s; %s", u.Requirement, u.Clause, u.Problem, u.Fix)
}

// ErrUnmet is matched by an *UnmetError.
var ErrUnmet = errors.New("compliance requirements unmet")

// UnmetError lists every requirement of a profile that a configuration
// does not meet.
type UnmetError struct {
	Profile string
	Unmet   []Unmet
}

// Error lists the unmet requirements, one a line.
func (e *UnmetError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: profile %s: %d unmet", ErrUnmet, e.Profile, len(e.Unmet))
	for _, u := range e.Unmet {
		b.WriteString("\n  - ")
		b.WriteString(u.String())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrUnmet) true.
func (e *UnmetError) Is(target error) bool { return target == ErrUnmet }

// Check returns every requirement of p that c does not meet, skipping the
// waived ones, in the order of Requirements (nil if c meets p).
func (p Profile) Check(c Config, waived map[Requirement]string) []Unmet {
	var out []Unmet
	add := func(r Requirement, problem, fix string) {
		if _, ok := waived[r]; ok || !p.Holds(r) {
			return
		}
		out = append(out, Unmet{Requirement: r, Clause: p.Clauses[r], Problem: problem, Fix: fix})
	}
	if c.Retention > 0 && c.Retention < p.MinRetention {
		add(ReqRetentionMin, fmt.Sprintf("WithRetention(%s) is below the minimum of %s", Period(c.Retention), Period(p.MinRetention)),
			fmt.Sprintf("pass WithRetention(%s) or longer, or omit it to keep the log forever", Period(p.MinRetention)))
	}
	switch {
	case c.Retention == 0:
		add(ReqRetentionMax, fmt.Sprintf("no retention: the log is kept forever, past the maximum of %s", Period(p.MaxRetention)),
			fmt.Sprintf("pass WithRetention(%s) or shorter (longer needs a stated legal basis: Waive(%q, basis))", Period(p.MaxRetention), ReqRetentionMax))
	case c.Retention > p.MaxRetention:
		add(ReqRetentionMax, fmt.Sprintf("WithRetention(%s) is above the maximum of %s", Period(c.Retention), Period(p.MaxRetention)),
			fmt.Sprintf("pass WithRetention(%s) or shorter (longer needs a stated legal basis: Waive(%q, basis))", Period(p.MaxRetention), ReqRetentionMax))
	}
	if !c.Encryption {
		add(ReqEncryption, "events are not encrypted at rest", "pass WithKeyring(path, provider) and WithEncryption(fields...)")
	}
	if !c.Signing {
		add(ReqSigning, "checkpoints are not signed", "pass WithSigningKeyFile(path) (generate a key with `mtlog-audit keys generate`)")
	}
	if c.Mirrors == 0 && c.Backends == 0 {
		add(ReqOffBox, "no copy of the log is kept off this disk", "pass WithShipping(quorum, backends...) or WithRedundancy(dirs...) on other media")
	}
	if c.FailOpen {
		add(ReqFailClosed, "WithFailOpen gives up events when the log fails", "remove WithFailOpen (Emit then blocks until the event is durable)")
	}
	if !c.AccessLog {
		add(ReqAccessLog, "reads of the log are not recorded", "pass WithAccessLog()")
	}
	if !c.Lifecycle {
		add(ReqLifecycle, "the log does not record its own lifecycle", "pass WithLifecycleEvents()")
	}
	return out
}

// Period renders a retention period as ParsePeriod reads it: whole years
// as "6y", whole months as "30mo", whole days as "90d", anything else as a
// Go duration.
func Period(d time.Duration) string {
	switch {
	case d > 0 && d%Year == 0:
		return fmt.Sprintf("%dy", d/Year)
	case d > 0 && d%Month == 0:
		return fmt.Sprintf("%dmo", d/Month)
	case d > 0 && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// ParsePeriod reads a retention period: a whole number of years ("6y"),
// months ("30mo") or days ("90d"), or a Go duration ("2160h").
func ParsePeriod(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"mo", Month}, {"y", Year}, {"d", 24 * time.Hour}} {
		if n, ok := strings.CutSuffix(t, u.suffix); ok {
			v, err := strconv.ParseUint(n, 10, 31)
			if err != nil {
				break
			}
			return time.Duration(v) * u.unit, nil
		}
	}
	d, err := time.ParseDuration(t)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("period %q: use a whole number of years, months or days (6y, 30mo, 90d) or a Go duration (2160h)", s)
	}
	return d, nil
}
