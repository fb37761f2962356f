package report

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/willibrandon/mtlog-audit/event"
)

// Config is what a Builder needs besides the log's contents.
type Config struct {
	Profile *Profile
	// Log is the log's directory, as the re-check commands name it.
	Log    string
	Period Period
	// Now is the time the report is built (GeneratedAt).
	Now       time.Time
	Generator string
	// Heartbeat is the sink's configured checkpoint heartbeat (0: the
	// heartbeat is not checked).
	Heartbeat time.Duration
	// Key is how the re-check commands name the log's public key (a .pub
	// file); "" writes KEY.pub.
	Key string
}

// VerifyResult is what verification of a log found, as the caller got it
// from audit.Verify.
type VerifyResult struct {
	// OK: nothing wrong. Uncovered: OK, but the newest records are not
	// covered by a signed checkpoint or the log ends in a torn tail.
	OK, Uncovered bool
	// Problem is the first problem found ("" when OK).
	Problem             string
	Records, Events     uint64
	FirstSeq, LastSeq   uint64
	Segments            int
	Bytes               int64
	KeysGiven           bool
	CheckpointsVerified int
	Covered             uint64
}

// Builder builds a Report from one pass over a log: it keeps counts, not
// events, so its memory does not grow with the log (apart from the
// distinct values of Actor, Action and Outcome, at most MaxDistinct each).
//
// Give it every event of the log in sequence order (Add), then every
// event of the access log (AddAccess), then the stored checkpoints in
// order (AddCheckpoint), the verification results (SetVerify,
// SetAccessLog), and call Build once. A Builder is not safe for concurrent
// use.
type Builder struct {
	cfg    Config
	r      Report
	f      facts
	counts map[string]*counter // by field: Actor, Action, Outcome
	miss   map[string]uint64
	bucket []time.Time // the timeline's bucket starts
	prevT  time.Time
	oldest time.Time
	any    bool
	holds  map[string]Lifecycle // hold-set events not yet cleared, by hold ID
	hOrder []string
	starts []time.Time
	stops  []time.Time
	prevCP time.Time
	gaps   []Gap
	cpSign map[string]uint64
	cps    []Checkpoint // the newest of the period, up to MaxListed
}

// counter counts the values of one property, telling apart at most
// MaxDistinct of them.
type counter struct {
	n      map[string]uint64
	other  uint64
	capped bool
}

func (c *counter) add(v string) {
	if _, ok := c.n[v]; ok || len(c.n) < MaxDistinct {
		c.n[v]++
		return
	}
	c.other++
	c.capped = true
}

// top returns the counts, most frequent first (ties by value), at most
// MaxListed, the rest summed into "(other)".
func (c *counter) top() []Count {
	out := make([]Count, 0, len(c.n))
	for v, n := range c.n {
		out = append(out, Count{Value: v, Count: n})
	}
	sortCounts(out)
	other := c.other
	if len(out) > MaxListed {
		for _, x := range out[MaxListed:] {
			other += x.Count
		}
		out = out[:MaxListed]
	}
	if other > 0 {
		out = append(out, Count{Value: otherValue, Count: other})
	}
	return out
}

func sortCounts(cs []Count) {
	slices.SortFunc(cs, func(a, b Count) int {
		if a.Count != b.Count {
			return cmp.Compare(b.Count, a.Count)
		}
		return strings.Compare(a.Value, b.Value)
	})
}

// The values that stand for no value and for the values not listed.
const (
	missing    = "(missing)"
	otherValue = "(other)"
)

// maxCheckpoints is how many of the newest checkpoints the report lists.
const maxCheckpoints = 10

// outOfOrder is how far an event's time may go back from the one before
// it (concurrent writers stamp times before they append) before it counts
// as a clock stepping back.
const outOfOrder = time.Minute

// NewBuilder returns a Builder for the given configuration.
func NewBuilder(cfg Config) *Builder {
	b := &Builder{cfg: cfg, counts: map[string]*counter{}, miss: map[string]uint64{}, holds: map[string]Lifecycle{},
		cpSign: map[string]uint64{}, f: facts{lifecycleEver: map[string]int{}}}
	for _, f := range []string{FieldActor, FieldAction, FieldOutcome} {
		b.counts[f] = &counter{n: map[string]uint64{}}
	}
	b.r.Activity.Unit, b.bucket = buckets(cfg.Period)
	b.r.Activity.Timeline = make([]Bucket, len(b.bucket))
	for i, t := range b.bucket {
		b.r.Activity.Timeline[i].Start = t
	}
	return b
}

// buckets divides the period into days (up to 62 days), weeks (up to a
// year), months (up to ten years) or years, for the timeline.
func buckets(p Period) (string, []time.Time) {
	span := p.To.Sub(p.From)
	unit, step := "year", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }
	switch {
	case span <= 62*day:
		unit, step = "day", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }
	case span <= 366*day:
		unit, step = "week", func(t time.Time) time.Time { return t.AddDate(0, 0, 7) }
	case span <= 3660*day:
		unit, step = "month", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }
	}
	var out []time.Time
	for t := p.From; t.Before(p.To) && len(out) < 10000; t = step(t) {
		out = append(out, t)
	}
	return unit, out
}

// Add takes the next event of the log, in sequence order.
func (b *Builder) Add(ev *event.Event) {
	t := ev.Timestamp.UTC()
	if !b.any || t.Before(b.oldest) {
		b.oldest = t
	}
	inPeriod := b.cfg.Period.Contains(t)
	before := t.Before(b.cfg.Period.To)
	if b.any && inPeriod && b.prevT.Sub(t) > outOfOrder {
		b.r.Activity.OutOfOrder++
	}
	b.any, b.prevT = true, t
	if kind, ok := lifecycleKind(ev); ok {
		b.lifecycle(ev, kind, t, inPeriod, before)
		return
	}
	if !inPeriod {
		return
	}
	a := &b.r.Activity
	a.Events++
	get := func(f string) string {
		v := propString(ev.Properties, f)
		if v == "" {
			return missing
		}
		return v
	}
	for _, f := range []string{FieldActor, FieldAction, FieldOutcome} {
		b.counts[f].add(get(f))
	}
	lacks := false
	for _, f := range b.cfg.Profile.RequiredFields {
		if propString(ev.Properties, f) == "" {
			b.miss[f]++
			lacks = true
		}
	}
	if lacks {
		a.EventsMissingFields++
	}
	i := sort.Search(len(b.bucket), func(i int) bool { return b.bucket[i].After(t) }) - 1
	if i >= 0 {
		a.Timeline[i].Events++
	}
	if failed(ev) {
		a.Failures++
		if i >= 0 {
			a.Timeline[i].Failures++
		}
		if len(a.FailureSamples) < MaxListed {
			a.FailureSamples = append(a.FailureSamples, Failure{Time: t, Actor: propString(ev.Properties, FieldActor),
				Action: propString(ev.Properties, FieldAction), Resource: propString(ev.Properties, FieldResource),
				Outcome: propString(ev.Properties, FieldOutcome), Message: ev.Message})
		}
	}
}

// lifecycle takes one of the sink's own events.
func (b *Builder) lifecycle(ev *event.Event, kind string, t time.Time, inPeriod, before bool) {
	b.f.lifecycleEver[kind]++
	switch kind {
	case KindStart:
		b.starts = append(b.starts, t)
	case KindStop:
		b.stops = append(b.stops, t)
	}
	if kind == KindRetention {
		b.r.Retention.DeletionsEver++
	}
	if before {
		lc := lifecycleOf(ev, kind, t)
		switch kind {
		case KindConfig:
			// The configuration in force, not a waiver ("Requirement") or
			// an anchor of the access log ("AccessHead"), which are
			// config events too.
			_, waiver := ev.Properties["Requirement"]
			_, anchor := ev.Properties["AccessHead"]
			if !waiver && !anchor {
				b.f.config = &lc
			}
		case KindFailOpen:
			b.f.failOpen = true
		case KindFailClose:
			b.f.failOpen = false
		case KindHoldSet:
			id := holdID(lc)
			if _, ok := b.holds[id]; !ok {
				b.hOrder = append(b.hOrder, id)
			}
			b.holds[id] = lc
		case KindHoldClear:
			delete(b.holds, holdID(lc))
		}
	}
	if !inPeriod {
		return
	}
	b.r.Activity.Lifecycle++
	rt := &b.r.Retention
	switch kind {
	case KindRead:
		b.r.Reads.FromLog++
		b.read(ev, t, "log")
	case KindRetention:
		rt.Deletions = appendCapped(rt.Deletions, lifecycleOf(ev, kind, t))
	case KindHoldSet:
		rt.HoldsSet = appendCapped(rt.HoldsSet, lifecycleOf(ev, kind, t))
	case KindHoldClear:
		rt.HoldsCleared = appendCapped(rt.HoldsCleared, lifecycleOf(ev, kind, t))
	}
	b.kind(kind)
}

// kind counts a lifecycle event of the period.
func (b *Builder) kind(kind string) {
	lk := &b.r.Activity.LifecycleKinds
	for i := range *lk {
		if (*lk)[i].Value == kind {
			(*lk)[i].Count++
			return
		}
	}
	*lk = append(*lk, Count{Value: kind, Count: 1})
}

func appendCapped(l []Lifecycle, lc Lifecycle) []Lifecycle {
	if len(l) < MaxListed {
		l = append(l, lc)
	}
	return l
}

// holdID names a hold: its HoldID property, else its message.
func holdID(lc Lifecycle) string {
	if id := lc.Properties["HoldID"]; id != "" {
		return id
	}
	return lc.Message
}

// read records a read of the log found in where ("log" or "access-log").
func (b *Builder) read(ev *event.Event, t time.Time, where string) {
	rd := &b.r.Reads
	rd.Count++
	if len(rd.Records) < MaxListed {
		p := ev.Properties
		rd.Records = append(rd.Records, Read{Time: t, User: propString(p, "User"), Actor: propString(p, "Actor"),
			Command: propString(p, "Command"), Range: propString(p, "Range"), Filter: propString(p, "Filter"),
			PID: propString(p, "PID"), Where: where})
	}
}

// AddAccess takes the next event of the access log (<log>/access): its
// reads of the period are listed with the log's own.
func (b *Builder) AddAccess(ev *event.Event) {
	t := ev.Timestamp.UTC()
	if kind, ok := lifecycleKind(ev); ok && kind == KindRead && b.cfg.Period.Contains(t) {
		b.r.Reads.FromAccessLog++
		b.read(ev, t, "access-log")
	}
}

// AddCheckpoint takes the next stored checkpoint, in the order stored:
// when it was made, its tree size and its signers' key IDs.
func (b *Builder) AddCheckpoint(t time.Time, size uint64, signers []string) {
	t = t.UTC()
	cs := &b.r.Integrity.Checkpoints
	cs.Stored++
	if hb := b.cfg.Heartbeat; hb > 0 && !b.prevCP.IsZero() && !t.IsZero() {
		if t.Sub(b.prevCP) > hb+hb/10 && t.After(b.cfg.Period.From) && b.prevCP.Before(b.cfg.Period.To) {
			b.gaps = append(b.gaps, Gap{From: b.prevCP, To: t})
		}
	}
	if !t.IsZero() {
		b.prevCP = t
	}
	if !b.cfg.Period.Contains(t) {
		return
	}
	cs.InPeriod++
	for _, s := range signers {
		b.cpSign[s]++
	}
	b.cps = append(b.cps, Checkpoint{Time: t, Size: size, Signers: append([]string{}, signers...)})
	if len(b.cps) > 2*maxCheckpoints {
		b.cps = slices.Delete(b.cps, 0, len(b.cps)-maxCheckpoints)
	}
}

// SetVerify records what verification of the log found.
func (b *Builder) SetVerify(v VerifyResult) {
	in := &b.r.Integrity
	in.Status, in.Detail = verifyStatus(v)
	in.Problem, in.Records, in.Events, in.FirstSeq, in.LastSeq = v.Problem, v.Records, v.Events, v.FirstSeq, v.LastSeq
	in.Segments, in.Bytes, in.KeysGiven, in.CheckpointsVerified, in.Covered = v.Segments, v.Bytes, v.KeysGiven, v.CheckpointsVerified, v.Covered
}

func verifyStatus(v VerifyResult) (status, detail string) {
	switch {
	case !v.OK:
		return "failed", "verification failed: " + v.Problem
	case v.Uncovered || !v.KeysGiven:
		return "uncovered", fmt.Sprintf("nothing wrong in %d records; %d are covered by a verified signed checkpoint", v.Records, v.Covered)
	}
	return "verified", fmt.Sprintf("nothing wrong in %d records, all covered by a verified signed checkpoint", v.Records)
}

// SetAccessLog records what verification of the access log in dir found
// (its reads are given with AddAccess).
func (b *Builder) SetAccessLog(dir string, v VerifyResult) {
	st, _ := verifyStatus(v)
	b.r.Integrity.AccessLog = &AccessLog{Dir: dir, Status: st, Problem: v.Problem, Records: v.Records}
	b.r.Reads.AccessLogPresent = true
}

// Note adds a statement about the report as a whole (for instance that
// reading the log stopped at damage).
func (b *Builder) Note(s string) { b.r.Notes = append(b.r.Notes, s) }

// Build finishes the report. Call it once.
func (b *Builder) Build() *Report {
	r := &b.r
	p := b.cfg.Profile
	r.Schema, r.Profile, r.Standard, r.Log, r.Period = Schema, p.Name, p.Standard, b.cfg.Log, b.cfg.Period
	r.GeneratedAt, r.Generator = b.cfg.Now.UTC(), b.cfg.Generator
	a := &r.Activity
	a.ByActor, a.ByAction, a.ByOutcome = b.counts[FieldActor].top(), b.counts[FieldAction].top(), b.counts[FieldOutcome].top()
	a.Distinct = map[string]int{}
	for f, c := range b.counts {
		a.Distinct[f] = len(c.n)
		if _, ok := c.n[missing]; ok {
			a.Distinct[f]--
		}
		a.Capped = a.Capped || c.capped
	}
	a.RequiredFields = slices.Clone(p.RequiredFields)
	for _, f := range p.RequiredFields {
		a.MissingFields = append(a.MissingFields, Count{Value: f, Count: b.miss[f]})
	}
	sortCounts(a.LifecycleKinds)
	if b.any {
		o := b.oldest
		r.Retention.OldestEvent = &o
	}
	r.Retention.Minimum, r.Retention.Maximum = Duration(p.RetentionMin), Duration(p.RetentionMax)
	for _, id := range b.hOrder {
		if lc, ok := b.holds[id]; ok {
			r.Retention.HoldsInForce = append(r.Retention.HoldsInForce, lc)
		}
	}
	b.heartbeat()
	cs := &r.Integrity.Checkpoints
	for k, n := range b.cpSign {
		cs.Signers = append(cs.Signers, Count{Value: k, Count: n})
	}
	sortCounts(cs.Signers)
	slices.Reverse(b.cps)
	cs.Newest = b.cps[:min(len(b.cps), maxCheckpoints)]
	if a.Events+a.Lifecycle == 0 {
		r.Empty = true
		if b.any {
			r.Notes = append(r.Notes, fmt.Sprintf("The log holds no event in the period %s (%s to %s): the report is empty, and the controls that need events are not applicable.", r.Period.Text, r.Period.From.Format(time.RFC3339), r.Period.To.Format(time.RFC3339)))
		} else {
			r.Notes = append(r.Notes, "The log holds no event at all: the report is empty, and the controls that need events are not applicable.")
		}
	}
	if a.Capped {
		r.Notes = append(r.Notes, fmt.Sprintf("A property had more than %d distinct values: the counts of the later ones are summed in %q.", MaxDistinct, otherValue))
	}
	r.Evidence = b.evidence()
	for _, d := range p.Controls {
		c := checks[d.Check]
		st, why := c.assess(r, p, &b.f)
		r.Controls = append(r.Controls, Control{ID: d.ID, Clause: d.Clause, Title: d.Title, Requires: d.Requires, Evidence: c.evidence, Status: st, Reason: why})
		switch st {
		case Pass:
			r.Summary.Pass++
		case Fail:
			r.Summary.Fail++
		default:
			r.Summary.NotApplicable++
		}
	}
	r.Summary.Verdict = Pass
	if r.Summary.Fail > 0 {
		r.Summary.Verdict = Fail
	}
	fillLists(r)
	return r
}

// heartbeat finishes the list of gaps: the one after the last checkpoint,
// whether the sink was stopped in each, the longest first.
func (b *Builder) heartbeat() {
	hb := &b.r.Integrity.Heartbeat
	hb.Interval = Duration(b.cfg.Heartbeat)
	if b.cfg.Heartbeat <= 0 {
		return
	}
	end := b.cfg.Period.To
	if b.cfg.Now.Before(end) {
		end = b.cfg.Now.UTC()
	}
	if !b.prevCP.IsZero() && end.Sub(b.prevCP) > b.cfg.Heartbeat+b.cfg.Heartbeat/10 && b.prevCP.Before(b.cfg.Period.To) {
		b.gaps = append(b.gaps, Gap{From: b.prevCP, To: end})
	}
	for i := range b.gaps {
		g := &b.gaps[i]
		g.Length = Duration(g.To.Sub(g.From))
		g.Stopped = within(b.starts, g.From, g.To, false) || within(b.stops, g.From.Add(-b.cfg.Heartbeat), g.To, true)
		hb.Missed++
		if g.Stopped {
			hb.Stopped++
		}
	}
	slices.SortStableFunc(b.gaps, func(x, y Gap) int { return cmp.Compare(y.Length, x.Length) })
	hb.Gaps = b.gaps[:min(len(b.gaps), MaxListed)]
}

// within reports whether one of ts lies in (from, to] (or [from, to] when
// closed).
func within(ts []time.Time, from, to time.Time, closed bool) bool {
	for _, t := range ts {
		if (t.After(from) || (closed && t.Equal(from))) && !t.After(to) {
			return true
		}
	}
	return false
}

// fillLists makes every list of r non-nil, so that JSON has [] for none.
func fillLists(r *Report) {
	for _, l := range []*[]Count{&r.Activity.ByAction, &r.Activity.ByOutcome, &r.Activity.ByActor, &r.Activity.LifecycleKinds,
		&r.Activity.MissingFields, &r.Integrity.Checkpoints.Signers} {
		if *l == nil {
			*l = []Count{}
		}
	}
	for _, l := range []*[]Lifecycle{&r.Retention.Deletions, &r.Retention.HoldsSet, &r.Retention.HoldsCleared, &r.Retention.HoldsInForce} {
		if *l == nil {
			*l = []Lifecycle{}
		}
	}
	if r.Notes == nil {
		r.Notes = []string{}
	}
	if r.Activity.RequiredFields == nil {
		r.Activity.RequiredFields = []string{}
	}
	if r.Activity.Timeline == nil {
		r.Activity.Timeline = []Bucket{}
	}
	if r.Activity.FailureSamples == nil {
		r.Activity.FailureSamples = []Failure{}
	}
	if r.Reads.Records == nil {
		r.Reads.Records = []Read{}
	}
	if r.Integrity.Checkpoints.Newest == nil {
		r.Integrity.Checkpoints.Newest = []Checkpoint{}
	}
	if r.Integrity.Heartbeat.Gaps == nil {
		r.Integrity.Heartbeat.Gaps = []Gap{}
	}
}

// lifecycleKind returns the kind of one of the sink's own events.
func lifecycleKind(ev *event.Event) (string, bool) {
	v, ok := ev.Properties[LifecycleProperty]
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}

func lifecycleOf(ev *event.Event, kind string, t time.Time) Lifecycle {
	props := make(map[string]string, len(ev.Properties))
	for k := range ev.Properties {
		if k != LifecycleProperty {
			props[k] = propString(ev.Properties, k)
		}
	}
	return Lifecycle{Time: t, Kind: kind, Message: ev.Message, Properties: props}
}

// failureOutcomes are the Outcome values that mean failure (lower case).
var failureOutcomes = map[string]bool{"failure": true, "failed": true, "fail": true, "denied": true, "error": true, "rejected": true, "blocked": true}

// failed reports whether ev records a failure.
func failed(ev *event.Event) bool {
	if ev.Level >= event.LevelError {
		return true
	}
	return failureOutcomes[strings.ToLower(propString(ev.Properties, FieldOutcome))]
}

// propString returns the property's value as text ("" when absent or
// nil).
func propString(p map[string]any, name string) string {
	switch v := p[name].(type) {
	case nil:
		return ""
	case string:
		return v
	case fmt.Stringer:
		return v.String()
	default:
		return fmt.Sprint(v)
	}
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
