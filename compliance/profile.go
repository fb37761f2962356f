package compliance

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Year and Month are the units of the retention periods (a year of 365
// days, a month of a twelfth of it).
const (
	Year  = 365 * 24 * time.Hour
	Month = Year / 12
)

// Requirement names one requirement of a profile; Waive takes it.
type Requirement string

// The requirements a profile can hold.
const (
	// ReqFields: every event carries the profile's required fields.
	ReqFields Requirement = "required-fields"
	// ReqRetentionMin: the retention (audit.WithRetention) is at least
	// the profile's minimum; no retention at all (keep forever) meets it.
	ReqRetentionMin Requirement = "retention-minimum"
	// ReqRetentionMax: a retention is set, and at most the profile's
	// maximum (GDPR storage limitation).
	ReqRetentionMax Requirement = "retention-maximum"
	// ReqEncryption: event properties are encrypted at rest
	// (audit.WithKeyring and audit.WithEncryption).
	ReqEncryption Requirement = "encryption"
	// ReqSigning: checkpoints are signed (audit.WithSigningKeyFile).
	ReqSigning Requirement = "signing"
	// ReqOffBox: a copy of the log is kept on other media
	// (audit.WithRedundancy) or shipped to other systems
	// (audit.WithShipping).
	ReqOffBox Requirement = "off-box-copy"
	// ReqFailClosed: the log is never given up for availability
	// (audit.WithFailOpen is refused).
	ReqFailClosed Requirement = "fail-closed"
	// ReqAccessLog: every read of the log is recorded
	// (audit.WithAccessLog; a profile turns it on).
	ReqAccessLog Requirement = "access-logging"
	// ReqLifecycle: the log records its own start, stop, configuration,
	// recovery, key rotation and fail-open switches (a profile turns it
	// on).
	ReqLifecycle Requirement = "lifecycle-events"
)

// Requirements lists every requirement, in the order a check reports them.
var Requirements = []Requirement{ReqFields, ReqRetentionMin, ReqRetentionMax, ReqEncryption, ReqSigning, ReqOffBox, ReqFailClosed, ReqAccessLog, ReqLifecycle}

// Profile is one regime's requirements of an audit log, as data. The zero
// value of a field means the profile does not require it.
type Profile struct {
	// Name is the profile's name, as audit.WithCompliance takes it.
	Name string
	// Fields are the required fields (from the vocabulary of Fields, or
	// any property name), and OnMissing what happens to an event that
	// lacks one.
	Fields    []string
	OnMissing FieldMode
	// MinRetention is the shortest retention allowed (0: none);
	// MaxRetention the longest (0: none).
	MinRetention time.Duration
	MaxRetention time.Duration
	// Encryption, Signing, OffBox, FailClosed, AccessLog and Lifecycle
	// require what the Requirement constants of the same names describe.
	Encryption bool
	Signing    bool
	OffBox     bool
	FailClosed bool
	AccessLog  bool
	Lifecycle  bool
	// Clauses cite, for each requirement the profile holds, the clauses
	// of the standard it comes from.
	Clauses map[Requirement]string
}

// The names of the profiles.
const (
	HIPAA    = "HIPAA"
	PCIDSS   = "PCI-DSS"
	SOX      = "SOX"
	GDPR     = "GDPR"
	NISTHigh = "NIST-800-53-HIGH"
)

// profiles are the built-in profiles, with the defaults of §8 of the
// project's compliance research (docs/compliance/README.md).
var profiles = []Profile{
	{
		Name: HIPAA,
		// 164.312(b) names no fields; OCR's 2017 guidance (who, which
		// record, when, what, from where, outcome) does. Flagged, not
		// rejected: the Rule leaves the content to risk analysis.
		Fields: Fields, OnMissing: Flag,
		// 164.316(b)(2)(i): six years, for documentation; applied to
		// logs by convention.
		MinRetention: 6 * Year,
		Encryption:   true, // 164.312(a)(2)(iv), addressable: waive with a documented reason (164.306(d)(3))
		Signing:      true, // 164.312(c)(1)-(2)
		AccessLog:    true, // OCR 2017: access to trails "strictly restricted"
		Lifecycle:    true,
		Clauses: map[Requirement]string{
			ReqFields:       "45 CFR 164.312(b), 164.312(a)(2)(i)",
			ReqRetentionMin: "45 CFR 164.316(b)(2)(i) (6 years, documentation rule applied by convention)",
			ReqEncryption:   "45 CFR 164.312(a)(2)(iv) (addressable: 164.306(d)(3))",
			ReqSigning:      "45 CFR 164.312(c)(1), 164.312(c)(2)",
			ReqAccessLog:    "45 CFR 164.312(b); OCR Cyber Awareness Newsletter, Jan 2017",
			ReqLifecycle:    "45 CFR 164.312(b)",
		},
	},
	{
		Name:         PCIDSS,
		Fields:       Fields, // 10.2.2: all six, the time being the event's
		OnMissing:    Reject,
		MinRetention: 12 * Month, // 10.5.1
		Encryption:   true,
		Signing:      true,
		OffBox:       true, // 10.3.3
		AccessLog:    true, // 10.2.1.3
		Lifecycle:    true, // 10.2.1.6
		Clauses: map[Requirement]string{
			ReqFields:       "PCI DSS v4.0.1 10.2.2",
			ReqRetentionMin: "PCI DSS v4.0.1 10.5.1 (12 months, 3 immediately available)",
			ReqEncryption:   "PCI DSS v4.0.1 3.5.1, 10.3.1",
			ReqSigning:      "PCI DSS v4.0.1 10.3.2, 10.3.4",
			ReqOffBox:       "PCI DSS v4.0.1 10.3.3",
			ReqAccessLog:    "PCI DSS v4.0.1 10.2.1.3",
			ReqLifecycle:    "PCI DSS v4.0.1 10.2.1.6, 10.7.2",
		},
	},
	{
		Name:         SOX,
		Fields:       []string{FieldActor, FieldAction, FieldResource, FieldOutcome},
		OnMissing:    Reject,
		MinRetention: 7 * Year, // 17 CFR 210.2-06 binds the auditor; 7 years for the issuer is convention
		Encryption:   true,
		Signing:      true,
		OffBox:       true,
		FailClosed:   true, // ITGC: the trail cannot be disabled (a judgment call)
		AccessLog:    true,
		Lifecycle:    true,
		Clauses: map[Requirement]string{
			ReqFields:       "SOX §404 ITGC (individual IDs, reproducible trail)",
			ReqRetentionMin: "17 CFR 210.2-06 (7 years, binds the auditor; convention for issuers); 18 U.S.C. §1519",
			ReqEncryption:   "SOX §404 ITGC access to programs and data",
			ReqSigning:      "SOX §404 ITGC (tamper-evident); 18 U.S.C. §1519",
			ReqOffBox:       "SOX §404 ITGC computer operations (backed up and archived)",
			ReqFailClosed:   "SOX §404 ITGC (the trail cannot be disabled)",
			ReqAccessLog:    "SOX §404 ITGC access to programs and data",
			ReqLifecycle:    "SOX §404 ITGC program change (configuration changes authorised)",
		},
	},
	{
		Name:         GDPR,
		Fields:       []string{FieldActor, FieldAction},
		OnMissing:    Flag,
		MaxRetention: Year, // Art. 5(1)(e); CNIL 2021: 6 months to 1 year
		Encryption:   true,
		Signing:      true, // CNIL 2021: sign entries when created
		AccessLog:    true,
		Lifecycle:    true,
		Clauses: map[Requirement]string{
			ReqFields:       "GDPR Art. 5(2) (accountability)",
			ReqRetentionMax: "GDPR Art. 5(1)(e), 30(1)(f); CNIL logging recommendation 2021 (6 months to 1 year)",
			ReqEncryption:   "GDPR Art. 32(1)(a)",
			ReqSigning:      "GDPR Art. 5(1)(f), 32(1)(b); CNIL 2021 (sign at creation)",
			ReqAccessLog:    "GDPR Art. 32(4)",
			ReqLifecycle:    "GDPR Art. 5(2)",
		},
	},
	{
		Name:         NISTHigh,
		Fields:       Fields,
		OnMissing:    Reject,
		MinRetention: 30 * Month, // AU-11 via FedRAMP: M-21-31, 12 months active + 18 cold
		Encryption:   true,
		Signing:      true, // AU-9(3), AU-10
		OffBox:       true, // AU-9(2), AU-4(1)
		AccessLog:    true, // AU-9, AU-9(4)
		Lifecycle:    true, // AU-12(3), AU-5
		Clauses: map[Requirement]string{
			ReqFields:       "NIST SP 800-53r5 AU-3, AU-12",
			ReqRetentionMin: "NIST SP 800-53r5 AU-11, AU-11(1); FedRAMP (OMB M-21-31: 12 months active + 18 months cold)",
			ReqEncryption:   "NIST SP 800-53r5 AU-9",
			ReqSigning:      "NIST SP 800-53r5 AU-9(3), AU-10",
			ReqOffBox:       "NIST SP 800-53r5 AU-9(2), AU-4(1)",
			ReqAccessLog:    "NIST SP 800-53r5 AU-9, AU-9(4)",
			ReqLifecycle:    "NIST SP 800-53r5 AU-12(3), AU-5",
		},
	},
}

// ErrUnknownProfile is matched by the error of Lookup for a name that is
// not a profile.
var ErrUnknownProfile = errors.New("unknown compliance profile")

// Names returns the names of the profiles.
func Names() []string {
	n := make([]string, len(profiles))
	for i, p := range profiles {
		n[i] = p.Name
	}
	return n
}

// Lookup returns a copy of the profile called name (letter case does not
// matter), or an error matching ErrUnknownProfile that lists the known
// names.
func Lookup(name string) (Profile, error) {
	for _, p := range profiles {
		if strings.EqualFold(p.Name, name) {
			p.Fields = slices.Clone(p.Fields)
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("%w %q: use one of %s", ErrUnknownProfile, name, strings.Join(Names(), ", "))
}

// Holds reports whether p requires r.
func (p Profile) Holds(r Requirement) bool {
	switch r {
	case ReqFields:
		return len(p.Fields) > 0
	case ReqRetentionMin:
		return p.MinRetention > 0
	case ReqRetentionMax:
		return p.MaxRetention > 0
	case ReqEncryption:
		return p.Encryption
	case ReqSigning:
		return p.Signing
	case ReqOffBox:
		return p.OffBox
	case ReqFailClosed:
		return p.FailClosed
	case ReqAccessLog:
		return p.AccessLog
	case ReqLifecycle:
		return p.Lifecycle
	}
	return false
}
