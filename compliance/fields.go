package compliance

import (
	"strings"
)

// The vocabulary of required fields: property names that an audit event
// carries to say who did what to which object, from where, and with what
// outcome (PCI DSS v4 10.2.2; NIST SP 800-53 AU-3). The time is the event's
// own Timestamp, which every event has. Names match case-insensitively
// ("actor", "ACTOR" and "Actor" are the same field), so that slog, zap or
// zerolog keys written in lower case count; a property whose value is nil or
// the empty string counts as missing.
const (
	// FieldActor identifies the user or service that acted (PCI DSS 10.2.2
	// "user identification"; AU-3 "identity of individuals").
	FieldActor = "Actor"
	// FieldAction is the type of event, such as "record.read" (PCI DSS
	// 10.2.2 "type of event"; AU-3 "what type of event").
	FieldAction = "Action"
	// FieldOutcome is the success or failure indication, such as
	// "success" or "denied" (PCI DSS 10.2.2; AU-3 "outcome").
	FieldOutcome = "Outcome"
	// FieldResource is the identity of the affected data, system
	// component, resource or service, such as a record ID (PCI DSS 10.2.2;
	// AU-3 "identity of objects").
	FieldResource = "Resource"
	// FieldSource is the origination of the event, such as a client IP
	// address or host (PCI DSS 10.2.2; AU-3 "where", "source").
	FieldSource = "Source"
)

// Fields is the whole vocabulary, in the order errors list missing fields.
var Fields = []string{FieldActor, FieldAction, FieldOutcome, FieldResource, FieldSource}

// MissingFieldsProperty is the reserved property that marks an event
// stored although required fields were missing (FieldMode Flag): its value
// lists the names of the missing fields. The audit package refuses a user
// event that carries it.
const MissingFieldsProperty = "mtlog-audit.missing-fields"

// FieldMode says what happens to an event that lacks a required field.
type FieldMode int

const (
	// Reject refuses the event: audit.Sink.Write returns an error that
	// names the missing fields, and Emit follows the failure policy.
	Reject FieldMode = iota
	// Flag stores the event with MissingFieldsProperty listing the
	// missing fields, and counts it (audit Status.Flagged).
	Flag
)

// String returns "reject" or "flag".
func (m FieldMode) String() string {
	if m == Flag {
		return "flag"
	}
	return "reject"
}

// Missing returns the names of fields (as given in fields) that props
// lacks: absent under any letter case, nil, or the empty string. It
// returns nil when none is missing.
func Missing(props map[string]any, fields []string) []string {
	var miss []string
	for _, f := range fields {
		if !present(props, f) {
			miss = append(miss, f)
		}
	}
	return miss
}

// present reports whether props holds field f, under any letter case,
// with a value that is neither nil nor "".
func present(props map[string]any, f string) bool {
	if v, ok := props[f]; ok {
		return filled(v)
	}
	for k, v := range props {
		if strings.EqualFold(k, f) && filled(v) {
			return true
		}
	}
	return false
}

func filled(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case string:
		return x != ""
	}
	return true
}
