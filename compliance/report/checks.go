package report

import (
	"fmt"
	"strings"
	"time"
)

// facts are what the builder learnt from the whole log (not only the
// period) that the checks need beyond the Report.
type facts struct {
	lifecycleEver map[string]int // the sink's own events, by kind, in the whole log
	config        *Lifecycle     // the newest configuration event up to the end of the period
	failOpen      bool           // still failing open at the end of the period
}

// check assesses one kind of control from the evidence.
type check struct {
	evidence []string
	assess   func(r *Report, p *Profile, f *facts) (Status, string)
}

// checks are the assessments the catalogue's ControlDef.Check names.
var checks = map[string]check{
	"fields":       {[]string{"fields", "activity"}, checkFields},
	"actor":        {[]string{"fields", "activity"}, checkActor},
	"integrity":    {[]string{"verify"}, checkIntegrity},
	"signed":       {[]string{"verify", "checkpoints", "heartbeat"}, checkSigned},
	"encryption":   {[]string{"configuration"}, checkEncryption},
	"review":       {[]string{"report", "reads"}, checkReview},
	"reads":        {[]string{"reads"}, checkReads},
	"retention":    {[]string{"retention"}, checkRetention},
	"lifecycle":    {[]string{"lifecycle"}, checkLifecycle},
	"replication":  {[]string{"configuration"}, checkReplication},
	"time":         {[]string{"clock"}, checkTime},
	"failure-mode": {[]string{"lifecycle"}, checkFailureMode},
}

func checkFields(r *Report, p *Profile, _ *facts) (Status, string) {
	a := &r.Activity
	if a.Events == 0 {
		return NotApplicable, "no event in the period"
	}
	if a.EventsMissingFields == 0 {
		return Pass, fmt.Sprintf("all %d events of the period carry %s", a.Events, strings.Join(p.RequiredFields, ", "))
	}
	var parts []string
	for _, c := range a.MissingFields {
		if c.Count > 0 {
			parts = append(parts, fmt.Sprintf("%s missing in %d", c.Value, c.Count))
		}
	}
	return Fail, fmt.Sprintf("%d of %d events miss a required field (%s): make the application set them, or let the profile reject such events", a.EventsMissingFields, a.Events, strings.Join(parts, "; "))
}

func checkActor(r *Report, _ *Profile, _ *facts) (Status, string) {
	a := &r.Activity
	if a.Events == 0 {
		return NotApplicable, "no event in the period"
	}
	for _, c := range a.ByActor {
		if c.Value == missing {
			return Fail, fmt.Sprintf("%d of %d events name no Actor", c.Count, a.Events)
		}
	}
	return Pass, fmt.Sprintf("every event names an Actor (%d distinct)", a.Distinct[FieldActor])
}

func checkIntegrity(r *Report, _ *Profile, _ *facts) (Status, string) {
	in := &r.Integrity
	switch in.Status {
	case "failed":
		return Fail, "verification failed: " + in.Problem
	case "":
		return Fail, "the log was not verified"
	}
	return Pass, fmt.Sprintf("every checksum, the hash chain and the Merkle tree of all %d records verify", in.Records)
}

func checkSigned(r *Report, _ *Profile, _ *facts) (Status, string) {
	in := &r.Integrity
	switch {
	case in.Status == "failed":
		return Fail, "verification failed: " + in.Problem
	case !in.KeysGiven:
		return Fail, "signatures were not checked: build the report with --key (the log's public key)"
	case in.CheckpointsVerified == 0:
		return Fail, "no stored checkpoint is signed by the given key: configure a signing key (audit.WithSigningKey)"
	case in.Heartbeat.Missed > in.Heartbeat.Stopped:
		return Fail, fmt.Sprintf("%d signed checkpoints verify, but the heartbeat missed %d times while the sink ran (see Integrity)", in.CheckpointsVerified, in.Heartbeat.Missed-in.Heartbeat.Stopped)
	}
	reason := fmt.Sprintf("%d signed checkpoints verify; they cover %d of %d records", in.CheckpointsVerified, in.Covered, in.Records)
	if in.Covered < in.Records {
		reason += " (the newest are covered at the next checkpoint)"
	}
	return Pass, reason
}

func checkEncryption(_ *Report, _ *Profile, f *facts) (Status, string) {
	if f.config == nil {
		return Fail, "the log holds no configuration event to show it; the sink records one at start (issue 19): show encryption at rest from the deployment"
	}
	if v, ok := configured(f.config, "encrypt", "pseudonym"); ok {
		return Pass, "the configuration in force records " + v
	}
	return Fail, "the configuration in force records no field encryption or pseudonymisation: use audit.WithEncryption / WithPseudonymize, or document the waiver"
}

func checkReplication(_ *Report, _ *Profile, f *facts) (Status, string) {
	if f.config == nil {
		return Fail, "the log holds no configuration event to show it; the sink records one at start (issue 19): show the copies from the deployment"
	}
	if v, ok := configured(f.config, "mirror", "backend", "ship"); ok {
		return Pass, "the configuration in force records " + v
	}
	return Fail, "the configuration in force records no mirror or shipping backend: use audit.WithRedundancy or WithShipping"
}

// configured finds a property of the configuration event whose name
// contains one of words (any case) and whose value is not empty.
func configured(cfg *Lifecycle, words ...string) (string, bool) {
	for _, k := range sortedKeys(cfg.Properties) {
		v := cfg.Properties[k]
		if v == "" || v == "[]" || v == "false" || v == "0" || v == "none" {
			continue
		}
		for _, w := range words {
			if strings.Contains(strings.ToLower(k), w) {
				return fmt.Sprintf("%s = %s", k, v), true
			}
		}
	}
	return "", false
}

func checkReview(r *Report, _ *Profile, _ *facts) (Status, string) {
	return Pass, fmt.Sprintf("this report reviews the period's %d events, %d failures and %d reads of the log", r.Activity.Events, r.Activity.Failures, r.Reads.Count)
}

func checkReads(r *Report, _ *Profile, _ *facts) (Status, string) {
	rd := &r.Reads
	switch al := r.Integrity.AccessLog; {
	case al != nil && al.Status == "failed":
		return Fail, "the access log does not verify (records of reads may have been removed or altered): " + al.Problem
	case rd.Count > 0:
		return Pass, fmt.Sprintf("%d reads recorded (%d in the log, %d in its access log)", rd.Count, rd.FromLog, rd.FromAccessLog)
	case rd.AccessLogPresent:
		return Pass, "the access log exists and records no read in the period"
	}
	return Fail, "no read of the log is recorded and there is no access log: enable access logging (audit.WithAccessLog)"
}

func checkLifecycle(r *Report, _ *Profile, f *facts) (Status, string) {
	if f.lifecycleEver[KindStart] == 0 {
		return Fail, "the log records no start of the sink: it was written by a version that did not log its own lifecycle"
	}
	return Pass, fmt.Sprintf("the sink records its own lifecycle: %d starts, %d stops and %d configuration events in the whole log", f.lifecycleEver[KindStart], f.lifecycleEver[KindStop], f.lifecycleEver[KindConfig])
}

func checkTime(r *Report, _ *Profile, _ *facts) (Status, string) {
	a := &r.Activity
	if a.Events+a.Lifecycle == 0 {
		return NotApplicable, "no event in the period"
	}
	if a.OutOfOrder > 0 {
		return Fail, fmt.Sprintf("%d events are more than a minute earlier than the event before them: a clock stepped back", a.OutOfOrder)
	}
	return Pass, "event times never step back by more than a minute"
}

func checkFailureMode(r *Report, p *Profile, f *facts) (Status, string) {
	open := countKind(r.Activity.LifecycleKinds, KindFailOpen)
	switch {
	case open == 0 && !f.failOpen:
		return Pass, "the sink never switched to fail-open in the period: no event was dropped"
	case p.FailClosed:
		return Fail, fmt.Sprintf("the sink switched to fail-open %d times in the period and dropped events; this profile requires fail-closed", open)
	case f.failOpen:
		return Fail, "the sink is still failing open (dropping events) at the end of the period"
	}
	return Pass, fmt.Sprintf("the sink switched to fail-open %d times and back; each switch is recorded, so the failure was detected", open)
}

// countKind returns the count of value in counts.
func countKind(counts []Count, value string) uint64 {
	for _, c := range counts {
		if c.Value == value {
			return c.Count
		}
	}
	return 0
}

func checkRetention(r *Report, p *Profile, _ *facts) (Status, string) {
	rt := &r.Retention
	holds := ""
	if n := len(rt.HoldsInForce); n > 0 {
		holds = fmt.Sprintf("; %d legal holds in force", n)
	}
	end := r.Period.To
	if r.GeneratedAt.Before(end) {
		end = r.GeneratedAt
	}
	if rt.OldestEvent == nil {
		if rt.DeletionsEver > 0 {
			return Fail, fmt.Sprintf("the log holds no event and records %d retention deletions", rt.DeletionsEver)
		}
		return NotApplicable, "the log holds no event"
	}
	age := end.Sub(*rt.OldestEvent)
	if p.RetentionMax > 0 && age > p.RetentionMax+day && len(rt.HoldsInForce) == 0 {
		return Fail, fmt.Sprintf("the oldest record is %s old at the end of the period, beyond the maximum of %s: apply retention (mtlog-audit retention apply)", human(age), human(p.RetentionMax))
	}
	if p.RetentionMin > 0 && rt.DeletionsEver > 0 && age < p.RetentionMin {
		return Fail, fmt.Sprintf("records were deleted under retention (%d deletions) but the oldest kept is only %s old, below the minimum of %s", rt.DeletionsEver, human(age), human(p.RetentionMin))
	}
	bound := "no minimum"
	if p.RetentionMin > 0 {
		bound = "minimum " + human(p.RetentionMin)
	}
	if p.RetentionMax > 0 {
		bound = "maximum " + human(p.RetentionMax)
	}
	return Pass, fmt.Sprintf("oldest record kept from %s (%s old); %d retention deletions in the log, %s%s", rt.OldestEvent.Format(time.DateOnly), human(age), rt.DeletionsEver, bound, holds)
}
