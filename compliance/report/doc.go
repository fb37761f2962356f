// Package report builds the compliance report of an audit log over a
// period, for an assessor: the control-by-control table of a profile
// (HIPAA, PCI-DSS, SOX, GDPR, NIST-800-53-HIGH) with the standard's clause
// numbers, the integrity status (verification, signed checkpoints and
// their signers, gaps in the checkpoint heartbeat), the activity of the
// period (counts by action, outcome and actor, failures), the reads of the
// log, retention deletions and legal holds, and for each evidence item the
// mtlog-audit command that re-checks it independently.
//
// A Builder takes the log's events one at a time and keeps counts, so a
// report of any size of log is built in one streaming pass with bounded
// memory. The resulting Report is a plain struct and also the JSON output
// (WriteJSON, versioned by Schema); WriteHTML renders it as one
// self-contained HTML file (inline CSS and SVG, no script, no network) and
// WritePDF as a PDF.
//
// The package reads events, never the log itself: it does not import the
// audit package. The mtlog-audit CLI ('compliance report') gathers the
// data through the audit API and feeds the Builder. The report's sections
// and its JSON schema are documented in docs/compliance/reports.md.
package report
