package report

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/willibrandon/mtlog-audit/compliance"
)

// ErrUnknownProfile is matched (errors.Is) by the error of LookupProfile.
var ErrUnknownProfile = errors.New("unknown compliance profile")

// The properties of the event vocabulary (PCI DSS 10.2.2, NIST SP 800-53
// AU-3): who, what, with which result, on what, from where. The time is
// the event's own timestamp.
const (
	FieldActor    = compliance.FieldActor
	FieldAction   = compliance.FieldAction
	FieldOutcome  = compliance.FieldOutcome
	FieldResource = compliance.FieldResource
	FieldSource   = compliance.FieldSource
)

// LifecycleProperty is the reserved property that marks the sink's own
// events; its value is the kind. It equals audit.LifecycleProperty (this
// package does not import audit; a test of the CLI checks they agree).
const LifecycleProperty = "mtlog-audit.lifecycle"

// The kinds of the sink's own events the report reads (the values of
// audit.LifecycleStart and the others).
const (
	KindStart     = "start"
	KindStop      = "stop"
	KindConfig    = "config"
	KindRetention = "retention-delete"
	KindHoldSet   = "hold-set"
	KindHoldClear = "hold-clear"
	KindFailOpen  = "fail-open"
	KindFailClose = "fail-closed"
	KindRead      = "read"
)

// Profile is the control catalogue of one regulation.
type Profile struct {
	// Name is the profile's name (HIPAA, PCI-DSS, SOX, GDPR,
	// NIST-800-53-HIGH); Standard the regulation it stands for.
	Name     string
	Standard string
	// RequiredFields are the properties every event must carry.
	RequiredFields []string
	// RetentionMin and RetentionMax bound how long records are kept (0:
	// no bound).
	RetentionMin, RetentionMax time.Duration
	// FailClosed is true when a switch to fail-open (events dropped)
	// fails the profile's failure-mode control.
	FailClosed bool
	// Controls is the catalogue, in the order the report lists it.
	Controls []ControlDef
}

// ControlDef is one control of a profile's catalogue: what the standard
// requires, and which check of this log's evidence assesses it.
type ControlDef struct {
	ID       string // the standard's clause number
	Clause   string // the full citation
	Title    string
	Requires string
	// Check names the assessment (one of the check* functions' keys in
	// checks) and so the evidence items the control cites.
	Check string
}

const (
	day  = 24 * time.Hour
	year = 365 * day
)

// Profiles returns the names of the profiles, sorted.
func Profiles() []string {
	names := make([]string, 0, len(catalogue))
	for _, p := range catalogue {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return names
}

// LookupProfile returns the profile of the given name (any case). An
// unknown name gives an error matching ErrUnknownProfile that lists the
// known ones.
func LookupProfile(name string) (*Profile, error) {
	fromCompliance.Do(takeRequirements)
	for i := range catalogue {
		if strings.EqualFold(catalogue[i].Name, strings.TrimSpace(name)) {
			return &catalogue[i], nil
		}
	}
	return nil, fmt.Errorf("%w %q: use one of %s", ErrUnknownProfile, name, strings.Join(Profiles(), ", "))
}

// fromCompliance fills each profile's required fields and retention bounds
// from the compliance package's profiles, the ones New checks, once.
var fromCompliance sync.Once

func takeRequirements() {
	for i := range catalogue {
		p, err := compliance.Lookup(catalogue[i].Name)
		if err != nil {
			panic("compliance/report: profile " + catalogue[i].Name + " is not a compliance profile: " + err.Error())
		}
		catalogue[i].RequiredFields = p.Fields
		catalogue[i].RetentionMin, catalogue[i].RetentionMax = p.MinRetention, p.MaxRetention
	}
}

// The catalogue. Clause numbers are the standards' own; the research
// behind each row is docs/compliance/reports.md's "Controls" section.
var catalogue = []Profile{
	{
		Name: "HIPAA", Standard: "HIPAA Security Rule, 45 CFR Part 164 Subpart C",
		Controls: []ControlDef{
			{"164.312(b)", "45 CFR 164.312(b)", "Audit controls", "Record and examine activity in systems that contain or use ePHI: who did what to which record, when, from where, with what outcome.", "fields"},
			{"164.312(a)(2)(i)", "45 CFR 164.312(a)(2)(i)", "Unique user identification", "Every event names an individual actor.", "actor"},
			{"164.312(c)(1)", "45 CFR 164.312(c)(1)", "Integrity", "Protect the records from improper alteration or destruction.", "integrity"},
			{"164.312(c)(2)", "45 CFR 164.312(c)(2)", "Mechanism to authenticate ePHI", "Electronic mechanisms corroborate that records were not altered or destroyed: signed checkpoints anyone can verify.", "signed"},
			{"164.312(a)(2)(iv)", "45 CFR 164.312(a)(2)(iv)", "Encryption and decryption (addressable)", "Encrypt ePHI at rest, or document why not and what replaces it.", "encryption"},
			{"164.308(a)(1)(ii)(D)", "45 CFR 164.308(a)(1)(ii)(D)", "Information system activity review", "Regularly review audit logs and access reports.", "review"},
			{"OCR-2017", "HHS OCR Cyber Awareness Newsletter, January 2017", "Access to audit trails restricted", "Access to the audit trail is strictly restricted, so each read of it is recorded.", "reads"},
			{"164.316(b)(2)(i)", "45 CFR 164.316(b)(2)(i)", "Retention (6 years, by convention for logs)", "Keep for 6 years from creation; nothing deleted earlier.", "retention"},
		},
	},
	{
		Name: "PCI-DSS", Standard: "PCI DSS v4.0.1, Requirement 10",
		Controls: []ControlDef{
			{"10.2.1.3", "PCI DSS v4.0.1 10.2.1.3", "All access to audit logs", "Every read of the audit log is itself logged.", "reads"},
			{"10.2.1.6", "PCI DSS v4.0.1 10.2.1.6", "Audit log start, stop and pause", "Initialisation, starting, stopping and pausing of the audit log are logged.", "lifecycle"},
			{"10.2.2", "PCI DSS v4.0.1 10.2.2", "Fields of each event", "User, type of event, date and time, success or failure, origin, affected resource.", "fields"},
			{"10.3.2", "PCI DSS v4.0.1 10.3.2", "Logs protected from modification", "Audit log files are protected from modification by individuals.", "integrity"},
			{"10.3.3", "PCI DSS v4.0.1 10.3.3", "Logs backed up promptly", "Logs are backed up to a central, internal server or media that is difficult to modify.", "replication"},
			{"10.3.4", "PCI DSS v4.0.1 10.3.4", "Change detection", "Existing log data cannot be changed without generating alerts: signed checkpoints and verification.", "signed"},
			{"10.4.1", "PCI DSS v4.0.1 10.4.1, 10.4.1.1", "Log review", "Audit logs are reviewed at least daily, by automated mechanisms.", "review"},
			{"10.5.1", "PCI DSS v4.0.1 10.5.1", "Retention (12 months)", "Retain audit log history for at least 12 months, the last three immediately available.", "retention"},
			{"10.6.1", "PCI DSS v4.0.1 10.6.1–10.6.3", "Time synchronisation", "Event times come from synchronised clocks; no clock stepping back.", "time"},
			{"10.7.2", "PCI DSS v4.0.1 10.7.2", "Failures of logging detected", "Failures of the audit logging mechanism are detected, alerted and addressed promptly.", "failure-mode"},
		},
	},
	{
		Name: "SOX", Standard: "Sarbanes-Oxley Act §404 and §802 (IT general controls)",
		FailClosed: true,
		Controls: []ControlDef{
			{"404-ITGC-trail", "SOX §404 (PCAOB AS 2201), IT general controls", "Audit trail cannot be disabled", "The trail records its own start and stop, and never drops events (fail-closed).", "failure-mode"},
			{"404-ITGC-ids", "SOX §404 (PCAOB AS 2201), IT general controls", "Individual IDs", "Each event names an individual actor, not a shared account.", "actor"},
			{"404-ITGC-fields", "SOX §404 (PCAOB AS 2201), IT general controls", "Who, what, on what, with what result", "Each event records actor, action, object and outcome.", "fields"},
			{"404-ITGC-access", "SOX §404 (PCAOB AS 2201), IT general controls", "Access to the trail restricted", "Reads of the trail are recorded.", "reads"},
			{"404-ITGC-backup", "SOX §404 (PCAOB AS 2201), IT general controls", "Backed up and archived", "The trail is copied off the machine that writes it.", "replication"},
			{"802", "SOX §802; 18 U.S.C. §1519", "Tamper-evident records", "Records cannot be altered or destroyed without detection.", "signed"},
			{"210.2-06", "17 CFR 210.2-06 (binds the auditor; 7 years by convention)", "Retention (7 years) and legal hold", "Keep 7 years; nothing deleted earlier or under a legal hold.", "retention"},
		},
	},
	{
		Name: "GDPR", Standard: "Regulation (EU) 2016/679 (GDPR)",
		Controls: []ControlDef{
			{"Art. 5(1)(e)", "GDPR Art. 5(1)(e); CNIL logging recommendation (2021)", "Storage limitation", "Logs are personal data: kept no longer than necessary (CNIL: 6 months to 1 year by default).", "retention"},
			{"Art. 5(1)(f)", "GDPR Art. 5(1)(f), Art. 32(1)(b)", "Integrity and confidentiality", "Records are protected against alteration; the CNIL asks that entries be signed when created.", "signed"},
			{"Art. 32(1)(a)", "GDPR Art. 32(1)(a)", "Pseudonymisation and encryption", "Personal data in the log is pseudonymised or encrypted.", "encryption"},
			{"Art. 5(2)", "GDPR Art. 5(2), Art. 30(1)(g)", "Accountability", "Each event records who did what; the controller can show it.", "fields"},
			{"Art. 32(4)", "GDPR Art. 32(4); CNIL logging recommendation (2021)", "Access to the logs", "Access to the logs is controlled and recorded.", "reads"},
		},
	},
	{
		Name: "NIST-800-53-HIGH", Standard: "NIST SP 800-53 Rev. 5, AU family, High baseline (SP 800-53B)",
		Controls: []ControlDef{
			{"AU-3", "NIST SP 800-53 Rev. 5 AU-3", "Content of audit records", "What type of event, when, where, source, outcome, identity of the individuals and objects.", "fields"},
			{"AU-5", "NIST SP 800-53 Rev. 5 AU-5, AU-5(2)", "Response to audit logging process failures", "Failures of audit logging are alerted and acted on.", "failure-mode"},
			{"AU-6", "NIST SP 800-53 Rev. 5 AU-6", "Audit record review, analysis and reporting", "Audit records are reviewed and reported on.", "review"},
			{"AU-8", "NIST SP 800-53 Rev. 5 AU-8", "Time stamps", "Records carry time stamps from internal clocks, in UTC; no clock stepping back.", "time"},
			{"AU-9", "NIST SP 800-53 Rev. 5 AU-9", "Protection of audit information", "Audit information is protected from unauthorised modification and deletion.", "integrity"},
			{"AU-9(2)", "NIST SP 800-53 Rev. 5 AU-9(2)", "Store on separate physical systems", "Audit records are stored on a physically different system.", "replication"},
			{"AU-9(3)", "NIST SP 800-53 Rev. 5 AU-9(3)", "Cryptographic protection", "Cryptographic mechanisms protect the integrity of audit information.", "signed"},
			{"AU-9(4)", "NIST SP 800-53 Rev. 5 AU-9(4)", "Access by subset of privileged users", "Access to audit information is limited and every read recorded.", "reads"},
			{"AU-10", "NIST SP 800-53 Rev. 5 AU-10", "Non-repudiation", "Irrefutable evidence, by digital signature, of what the log holds.", "signed"},
			{"AU-11", "NIST SP 800-53 Rev. 5 AU-11; OMB M-21-31", "Audit record retention", "Keep records for the defined period (M-21-31: 12 months active, 18 cold).", "retention"},
			{"AU-12(3)", "NIST SP 800-53 Rev. 5 AU-12(3)", "Changes by authorised individuals", "Changes to the logging (start, stop, configuration) are themselves recorded.", "lifecycle"},
		},
	},
}
