// Package compliance holds the compliance profiles of mtlog-audit as data
// (HIPAA, PCI-DSS, SOX, GDPR, NIST-800-53-HIGH), the vocabulary of required
// fields, and the check of a configuration against a profile.
//
// A profile is a table of requirements, each citing the clause of the
// standard it comes from: the fields every event must carry and whether an
// event without them is rejected or flagged, the minimum (and, for GDPR,
// maximum) retention, encryption at rest, signed checkpoints, a copy off
// the box (mirrors or shipping), the failure mode, access logging and the
// log's own lifecycle events. The audit package applies a profile with
// audit.WithCompliance and checks the rest of its configuration against
// it in audit.New; this package never imports audit.
//
// docs/compliance/README.md maps each requirement to the feature that
// meets it and the test that proves it; the defaults come from §8 of the
// project's compliance research, and their caveats (HIPAA's six years,
// SOX's seven, GDPR's CNIL guidance) are stated there.
package compliance
