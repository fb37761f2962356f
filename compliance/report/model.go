package report

import "time"

// Schema names the version of the Report structure. It changes only when
// a field is removed, renamed or changes meaning; new fields may appear
// within a version, so a reader ignores keys it does not know.
const Schema = "mtlog-audit.compliance-report/v1"

// Report is a compliance report of one audit log over one period. It is
// also the JSON output (WriteJSON): every key is snake_case, every time is
// RFC 3339 in UTC, every list is present (empty rather than null) so that
// a reader never has to tell a missing key from an empty one.
// docs/compliance/reports.md documents each field.
type Report struct {
	// Schema is the Schema constant of the code that wrote the report.
	Schema string `json:"schema"`
	// Profile is the compliance profile (HIPAA, PCI-DSS, SOX, GDPR,
	// NIST-800-53-HIGH) and Standard the regulation it stands for.
	Profile  string `json:"profile"`
	Standard string `json:"standard"`
	// Log is the directory of the log the report describes.
	Log string `json:"log"`
	// Period is the time range reported on.
	Period Period `json:"period"`
	// GeneratedAt is when the report was built and Generator the program
	// that built it.
	GeneratedAt time.Time `json:"generated_at"`
	Generator   string    `json:"generator"`
	// Empty is true when the log holds no event in the period (the report
	// then says so in Notes, and every control that needs events is not
	// applicable).
	Empty bool `json:"empty"`
	// Notes are statements about the report as a whole, for people.
	Notes []string `json:"notes"`
	// Summary counts the controls by status.
	Summary Summary `json:"summary"`
	// Controls is the control-by-control table, in the profile's order.
	Controls []Control `json:"controls"`
	// Integrity is what verification of the log found.
	Integrity Integrity `json:"integrity"`
	// Activity describes the events of the period.
	Activity Activity `json:"activity"`
	// Reads lists the recorded reads of the log in the period.
	Reads Reads `json:"reads"`
	// Retention lists deletions under retention and legal holds.
	Retention Retention `json:"retention"`
	// Evidence lists each evidence item the controls cite, with how to
	// re-check it independently.
	Evidence []Evidence `json:"evidence"`
}

// Period is the half-open time range [From, To) a report covers.
type Period struct {
	// Text is the period as given (2026-Q1, 2026-03, FROM..TO).
	Text string    `json:"text"`
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Contains reports whether t lies in [From, To).
func (p Period) Contains(t time.Time) bool { return !t.Before(p.From) && t.Before(p.To) }

// Status is the outcome of a control.
type Status string

// The statuses of a control.
const (
	// Pass: the evidence from this log meets the control.
	Pass Status = "pass"
	// Fail: the evidence shows the control is not met, or the evidence
	// the control needs is missing from the log; the reason says which
	// and what to do.
	Fail Status = "fail"
	// NotApplicable: the control does not apply to this period (for
	// instance a field check when the period holds no event).
	NotApplicable Status = "not-applicable"
)

// Summary counts the controls by status. Verdict is "pass" when no
// control failed, else "fail".
type Summary struct {
	Verdict       Status `json:"verdict"`
	Pass          int    `json:"pass"`
	Fail          int    `json:"fail"`
	NotApplicable int    `json:"not_applicable"`
}

// Control is one row of the control table.
type Control struct {
	// ID is the standard's own clause number (164.312(b), 10.2.1.3,
	// AU-9(3), Art. 5(1)(e)); Clause the full citation.
	ID     string `json:"id"`
	Clause string `json:"clause"`
	// Title names the control and Requires says what it asks of a log.
	Title    string `json:"title"`
	Requires string `json:"requires"`
	// Evidence names the evidence items (Report.Evidence IDs) that
	// answer it.
	Evidence []string `json:"evidence"`
	// Status and Reason: the outcome and why, from this log.
	Status Status `json:"status"`
	Reason string `json:"reason"`
}

// Integrity is what verification of the log found.
type Integrity struct {
	// Status is "verified" (nothing wrong, every record covered by a
	// verified signed checkpoint), "uncovered" (nothing wrong, but records
	// at the end are not covered yet, or the log ends in a torn tail that
	// was never acknowledged), or "failed" (tampered or damaged: Problem
	// says where).
	Status string `json:"status"`
	// Detail is a sentence for people.
	Detail string `json:"detail"`
	// Problem is the first problem verification found ("" when none).
	Problem  string `json:"problem"`
	Records  uint64 `json:"records"`
	Events   uint64 `json:"events"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	Segments int    `json:"segments"`
	Bytes    int64  `json:"bytes"`
	// KeysGiven says whether a public key was given, so that signatures
	// were checked. Without one no checkpoint counts.
	KeysGiven bool `json:"keys_given"`
	// CheckpointsVerified counts stored checkpoints whose signature by a
	// given key verified; Covered the records the newest of them covers.
	CheckpointsVerified int    `json:"checkpoints_verified"`
	Covered             uint64 `json:"covered"`
	// Checkpoints describes the stored signed checkpoints.
	Checkpoints Checkpoints `json:"checkpoints"`
	// Heartbeat lists the gaps between checkpoints longer than the
	// heartbeat.
	Heartbeat Heartbeat `json:"heartbeat"`
	// AccessLog is what verification of the access log (<log>/access)
	// found, nil when there is none.
	AccessLog *AccessLog `json:"access_log"`
}

// Checkpoints describes the stored signed checkpoints.
type Checkpoints struct {
	// Stored is the number in the log; InPeriod those made in the period.
	Stored   int `json:"stored"`
	InPeriod int `json:"in_period"`
	// Signers counts the checkpoints of the period by signing key ID
	// (name+hex ID, as written on the note; Integrity.CheckpointsVerified
	// says whether the signatures verified).
	Signers []Count `json:"signers"`
	// Newest lists the newest checkpoints of the period, newest first (at
	// most 10).
	Newest []Checkpoint `json:"newest"`
}

// Checkpoint is one stored signed checkpoint.
type Checkpoint struct {
	Time    time.Time `json:"time"`
	Size    uint64    `json:"size"`
	Signers []string  `json:"signers"`
}

// Heartbeat is the check of the checkpoint heartbeat: the sink signs a
// checkpoint at least every Interval while it runs, so a longer gap
// between two checkpoints means it was not running or not signing.
type Heartbeat struct {
	// Interval is the configured heartbeat (0: not checked).
	Interval Duration `json:"interval_seconds"`
	// Gaps lists every gap longer than Interval (plus a tolerance of a
	// tenth of it for timer delay) that overlaps the period, at most
	// MaxListed, longest first; Missed counts them all and Stopped those
	// the sink's own stop and start events explain.
	Gaps    []Gap `json:"gaps"`
	Missed  int   `json:"missed"`
	Stopped int   `json:"stopped"`
}

// Gap is a time without a signed checkpoint.
type Gap struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Length Duration  `json:"length_seconds"`
	// Stopped is true when the sink recorded a stop in the gap (and so
	// did not run, rather than fail to sign).
	Stopped bool `json:"stopped"`
}

// AccessLog is what verification of the access log found.
type AccessLog struct {
	Dir     string `json:"dir"`
	Status  string `json:"status"` // as Integrity.Status
	Problem string `json:"problem"`
	Records uint64 `json:"records"`
}

// Duration is a time.Duration that is JSON as its number of seconds.
type Duration time.Duration

// MarshalJSON writes the seconds, as a number.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(formatSeconds(time.Duration(d))), nil
}

// String formats the duration for people (1h30m0s, 400d).
func (d Duration) String() string { return human(time.Duration(d)) }

// Activity describes the events of the period. The sink's own events
// (lifecycle) are counted apart and not in the other counts.
type Activity struct {
	// Events is the number of events in the period, Lifecycle the
	// sink's own events among them (not counted in Events).
	Events    uint64 `json:"events"`
	Lifecycle uint64 `json:"lifecycle"`
	// Failures counts the events whose Outcome says failure (failure,
	// failed, fail, denied, error, rejected, blocked; any case) or whose
	// level is Error or Fatal.
	Failures uint64 `json:"failures"`
	// ByAction, ByOutcome and ByActor count events by the value of the
	// property, most frequent first (at most MaxListed; the rest are
	// summed in an "(other)" row). "(missing)" counts events without it.
	ByAction  []Count `json:"by_action"`
	ByOutcome []Count `json:"by_outcome"`
	ByActor   []Count `json:"by_actor"`
	// Distinct counts the distinct values of each property, "(missing)"
	// not counted (exact up to
	// MaxDistinct; Capped says that a property had more, whose counts are
	// then in "(other)").
	Distinct map[string]int `json:"distinct"`
	Capped   bool           `json:"capped"`
	// LifecycleKinds counts the sink's own events by kind.
	LifecycleKinds []Count `json:"lifecycle_kinds"`
	// MissingFields counts, for each field the profile requires, the
	// events without it; EventsMissingFields counts events missing any.
	RequiredFields      []string `json:"required_fields"`
	MissingFields       []Count  `json:"missing_fields"`
	EventsMissingFields uint64   `json:"events_missing_fields"`
	// OutOfOrder counts events whose time is earlier than the event
	// before them by more than a minute (a clock stepped back).
	OutOfOrder uint64 `json:"out_of_order"`
	// Timeline counts events and failures per day, week or month (Unit),
	// for the chart.
	Unit     string   `json:"unit"`
	Timeline []Bucket `json:"timeline"`
	// FailureSamples are the first failures of the period (at most
	// MaxListed).
	FailureSamples []Failure `json:"failure_samples"`
}

// Count is a value and how many times it occurred.
type Count struct {
	Value string `json:"value"`
	Count uint64 `json:"count"`
}

// Bucket is one bar of the timeline: the events from Start.
type Bucket struct {
	Start    time.Time `json:"start"`
	Events   uint64    `json:"events"`
	Failures uint64    `json:"failures"`
}

// Failure is an event that records a failure.
type Failure struct {
	Time     time.Time `json:"time"`
	Actor    string    `json:"actor"`
	Action   string    `json:"action"`
	Resource string    `json:"resource"`
	Outcome  string    `json:"outcome"`
	Message  string    `json:"message"`
}

// Reads lists the recorded reads of the log in the period: lifecycle
// events of kind "read", from the log and from its access log.
type Reads struct {
	Count         uint64 `json:"count"`
	FromLog       uint64 `json:"from_log"`
	FromAccessLog uint64 `json:"from_access_log"`
	// AccessLogPresent says whether <log>/access exists.
	AccessLogPresent bool `json:"access_log_present"`
	// Records are the reads, oldest first (at most MaxListed; the first
	// ones of the period).
	Records []Read `json:"records"`
}

// Read is one recorded read of the log.
type Read struct {
	Time    time.Time `json:"time"`
	User    string    `json:"user"`
	Actor   string    `json:"actor"`
	Command string    `json:"command"`
	Range   string    `json:"range"`
	Filter  string    `json:"filter"`
	PID     string    `json:"pid"`
	// Where is "log" or "access-log": where the record was found.
	Where string `json:"where"`
}

// Retention lists deletions under retention and legal holds.
type Retention struct {
	// Minimum and Maximum are the profile's retention bounds (0: none).
	Minimum Duration `json:"minimum_seconds"`
	Maximum Duration `json:"maximum_seconds"`
	// OldestEvent is the time of the oldest event the log still holds
	// (nil for an empty log).
	OldestEvent *time.Time `json:"oldest_event"`
	// Deletions, HoldsSet and HoldsCleared are the lifecycle events of
	// the period of kinds retention-delete, hold-set and hold-clear;
	// HoldsInForce the holds set (at any time up to the end of the
	// period) and not cleared by its end.
	Deletions    []Lifecycle `json:"deletions"`
	HoldsSet     []Lifecycle `json:"holds_set"`
	HoldsCleared []Lifecycle `json:"holds_cleared"`
	HoldsInForce []Lifecycle `json:"holds_in_force"`
	// DeletionsEver counts the retention deletions in the whole log.
	DeletionsEver int `json:"deletions_ever"`
}

// Lifecycle is one of the sink's own events.
type Lifecycle struct {
	Time       time.Time         `json:"time"`
	Kind       string            `json:"kind"`
	Message    string            `json:"message"`
	Properties map[string]string `json:"properties"`
}

// Evidence is one evidence item: what this log shows, and how to check it
// without trusting this report.
type Evidence struct {
	ID      string `json:"id"`
	Title   string `json:"title"`
	Finding string `json:"finding"`
	// Recheck holds the commands that reproduce the finding
	// independently (mtlog-audit commands, run by the assessor).
	Recheck []string `json:"recheck"`
}

// MaxListed is the most entries a list of the report holds (the counts
// are always complete).
const MaxListed = 50

// MaxDistinct is the most distinct values of a property the activity
// counts tell apart; beyond it new values are counted in "(other)", so
// memory stays bounded on any log.
const MaxDistinct = 100000
