package report

import (
	"fmt"
	"strings"
	"time"
)

// evidence lists the evidence items, each with the commands that re-check
// it without trusting the report.
func (b *Builder) evidence() []Evidence {
	r := &b.r
	log, key := shellQuote(b.cfg.Log), shellQuote(b.cfg.Key)
	if b.cfg.Key == "" {
		key = "KEY.pub"
	}
	from, to := r.Period.From.Format(time.RFC3339Nano), r.Period.To.Format(time.RFC3339Nano)
	replay := fmt.Sprintf("mtlog-audit replay --wal %s --since %s --until %s", log, from, to)
	lc := func(expr string) string { return fmt.Sprintf("%s --filter '%s'", replay, expr) }
	access := shellQuote(strings.TrimSuffix(b.cfg.Log, "/") + "/access")
	in := &r.Integrity
	a := &r.Activity
	var missingExpr []string
	for _, f := range b.cfg.Profile.RequiredFields {
		missingExpr = append(missingExpr, fmt.Sprintf("(props.%s ?? \"\") == \"\"", f))
	}
	fields := "no required field"
	if len(missingExpr) > 0 {
		fields = fmt.Sprintf("%d of %d events of the period miss one of %s", a.EventsMissingFields, a.Events, strings.Join(b.cfg.Profile.RequiredFields, ", "))
	}
	cfg := "no configuration event up to the end of the period"
	if c := b.f.config; c != nil {
		var kv []string
		for _, k := range sortedKeys(c.Properties) {
			kv = append(kv, k+"="+c.Properties[k])
		}
		cfg = fmt.Sprintf("configuration recorded at %s: %s", c.Time.Format(time.RFC3339), strings.Join(kv, ", "))
	}
	retention := fmt.Sprintf("%d retention deletions, %d holds set and %d cleared in the period; %d holds in force at its end", len(r.Retention.Deletions), len(r.Retention.HoldsSet), len(r.Retention.HoldsCleared), len(r.Retention.HoldsInForce))
	if o := r.Retention.OldestEvent; o != nil {
		retention += "; oldest record " + o.Format(time.RFC3339)
	}
	hb := &in.Heartbeat
	heartbeat := "not checked (no heartbeat given)"
	if hb.Interval > 0 {
		heartbeat = fmt.Sprintf("%d gaps longer than the %s heartbeat, %d of them while the sink was stopped", hb.Missed, hb.Interval, hb.Stopped)
	}
	readsCmd := []string{lc(`props["mtlog-audit.lifecycle"] == "read"`)}
	if r.Reads.AccessLogPresent {
		readsCmd = append(readsCmd, fmt.Sprintf("mtlog-audit verify --wal %s --key %s", access, key),
			fmt.Sprintf("mtlog-audit replay --wal %s --since %s --until %s --filter '%s'", access, from, to, `props["mtlog-audit.lifecycle"] == "read"`))
	}
	return []Evidence{
		{"verify", "Verification of the whole log", in.Detail, []string{fmt.Sprintf("mtlog-audit verify --wal %s --key %s", log, key)}},
		{"checkpoints", "Signed checkpoints and their signers", fmt.Sprintf("%d stored, %d in the period, %d verified with the given key", in.Checkpoints.Stored, in.Checkpoints.InPeriod, in.CheckpointsVerified),
			[]string{fmt.Sprintf("mtlog-audit checkpoint --wal %s --key %s --all --json", log, key)}},
		{"heartbeat", "Checkpoint heartbeat", heartbeat, []string{fmt.Sprintf("mtlog-audit checkpoint --wal %s --key %s --all --json", log, key)}},
		{"fields", "Required fields of each event", fields, []string{lc(strings.Join(missingExpr, " || ")) + " --json"}},
		{"activity", "Activity of the period", fmt.Sprintf("%d events, %d failures, %d distinct actors", a.Events, a.Failures, a.Distinct[FieldActor]),
			[]string{lc(`props["mtlog-audit.lifecycle"] == nil`) + " --json", lc(`props["mtlog-audit.lifecycle"] == nil && (level >= Error || lower(props.Outcome ?? "") in ["failure","failed","fail","denied","error","rejected","blocked"])`)}},
		{"reads", "Reads of the log", fmt.Sprintf("%d reads recorded in the period (%d in the log, %d in the access log)", r.Reads.Count, r.Reads.FromLog, r.Reads.FromAccessLog), readsCmd},
		{"lifecycle", "The sink's own events", fmt.Sprintf("%d in the period: %s", a.Lifecycle, countsText(a.LifecycleKinds)),
			[]string{lc(`props["mtlog-audit.lifecycle"] != nil`)}},
		{"configuration", "Configuration in force", cfg,
			[]string{fmt.Sprintf("mtlog-audit replay --wal %s --until %s --filter '%s' --last 1 --json", log, to, `props["mtlog-audit.lifecycle"] == "config"`)}},
		{"retention", "Retention deletions and legal holds", retention,
			[]string{fmt.Sprintf("mtlog-audit replay --wal %s --until %s --filter '%s'", log, to, `props["mtlog-audit.lifecycle"] in ["retention-delete","hold-set","hold-clear"]`),
				fmt.Sprintf("mtlog-audit verify --wal %s --key %s", log, key)}},
		{"clock", "Event times", fmt.Sprintf("%d events more than %s earlier than the one before", a.OutOfOrder, outOfOrder), []string{replay + " --json"}},
		{"report", "This report", fmt.Sprintf("built %s by %s", r.GeneratedAt.Format(time.RFC3339), r.Generator),
			[]string{fmt.Sprintf("mtlog-audit compliance report --wal %s --key %s --profile %s --period %s --output report.json", log, key, r.Profile, shellQuote(r.Period.Text))}},
	}
}

// countsText writes counts as "a 3, b 1" ("none" for none).
func countsText(cs []Count) string {
	if len(cs) == 0 {
		return "none"
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s %d", c.Value, c.Count)
	}
	return strings.Join(parts, ", ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:+=@,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
