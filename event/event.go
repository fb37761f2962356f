// Package event defines the audit event model of mtlog-audit and its
// canonical, versioned binary encoding.
//
// An [Event] is a self-contained copy of an mtlog log event: its timestamp,
// level, message template, rendered message, properties and exception.
// [AppendEncode] turns an Event into bytes that are deterministic (equal
// events always give identical bytes, so records can be hashed and
// compared) and [Decode] turns those bytes back into an Event.
//
// Property values of arbitrary Go types are normalized on the way in: every
// value is reduced to a small set of kinds (nil, bool, int64, uint64,
// float64, complex128, string, []byte, time.Time, time.Duration,
// *ErrorValue, json.RawMessage, Unsupported, []any and map[string]any).
// [Normalize] tells what a given value looks like after a round trip. The
// full mapping and the byte format are documented in docs/event-encoding.md
// at the root of the module.
//
// The package depends on the standard library only.
package event

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Level is the severity of an event. The numeric values are the same as
// mtlog's core.LogEventLevel, so a conversion Level(mtlogLevel) is exact.
type Level uint8

// The levels, from least to most severe.
const (
	// LevelVerbose is the most detailed level (mtlog Verbose, 0).
	LevelVerbose Level = iota
	// LevelDebug is for internal diagnostics (mtlog Debug, 1).
	LevelDebug
	// LevelInformation is for normal operation (mtlog Information, 2).
	LevelInformation
	// LevelWarning is for suspicious but tolerated situations (mtlog Warning, 3).
	LevelWarning
	// LevelError is for failures of an operation (mtlog Error, 4).
	LevelError
	// LevelFatal is for failures that stop the program (mtlog Fatal, 5).
	LevelFatal
)

var levelNames = [...]string{"Verbose", "Debug", "Information", "Warning", "Error", "Fatal"}
var levelShort = [...]string{"VRB", "DBG", "INF", "WRN", "ERR", "FTL"}

// String returns the level name ("Verbose" … "Fatal"), or "Level(n)" for a
// value outside the known range.
func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return "Level(" + strconv.Itoa(int(l)) + ")"
}

// ParseLevel parses a level name. It accepts the full names ("Verbose",
// "Debug", "Information", "Warning", "Error", "Fatal"), the short forms
// ("VRB", "DBG", "INF", "WRN", "ERR", "FTL") and the aliases "info" and
// "warn", all case-insensitively.
func ParseLevel(s string) (Level, error) {
	t := strings.TrimSpace(s)
	for i := range levelNames {
		if strings.EqualFold(t, levelNames[i]) || strings.EqualFold(t, levelShort[i]) {
			return Level(i), nil
		}
	}
	switch {
	case strings.EqualFold(t, "info"):
		return LevelInformation, nil
	case strings.EqualFold(t, "warn"):
		return LevelWarning, nil
	}
	return 0, errors.New("event: unknown level " + strconv.Quote(s) +
		" (use one of Verbose, Debug, Information, Warning, Error, Fatal or VRB, DBG, INF, WRN, ERR, FTL)")
}

// Event is one audit event.
type Event struct {
	// Timestamp is when the event occurred.
	Timestamp time.Time
	// Level is the severity of the event.
	Level Level
	// MessageTemplate is the message template with {Property} placeholders.
	MessageTemplate string
	// Message is the rendered message.
	Message string
	// Properties holds the event's properties. After a round trip the
	// values are normalized (see Normalize).
	Properties map[string]any
	// Exception is the error attached to the event, nil if none. It is
	// stored as its Error() text and comes back as *ErrorValue.
	Exception error
}

// ErrorValue is the decoded form of an error: errors (property values and
// Event.Exception) are stored as their Error() text and come back as
// *ErrorValue.
type ErrorValue struct {
	// Message is the Error() text of the original error.
	Message string
}

// Error returns Message.
func (e *ErrorValue) Error() string { return e.Message }

// Unsupported is the placeholder stored for a value that cannot be
// encoded: channels, functions, unsafe pointers, values nested deeper than
// 64 levels (which includes cycles through pointers, maps and slices),
// marshalers that fail or panic, and so on. It round-trips as itself.
type Unsupported struct {
	// Type is the Go type of the original value, e.g. "chan int".
	Type string
	// Reason says why the value could not be encoded.
	Reason string
}

// String returns e.g. "<unsupported chan int: cannot encode channels>".
func (u Unsupported) String() string {
	return "<unsupported " + u.Type + ": " + u.Reason + ">"
}

// ErrUnknownVersion is returned (wrapped) by Decode when the first byte is
// not an encoding version this build understands.
var ErrUnknownVersion = errors.New("event: unknown encoding version " +
	"(the record was written by a newer or foreign writer; upgrade mtlog-audit to a version that can read it)")

// ErrMalformed is returned (wrapped, with the offset of the problem) by
// Decode when the input is not a valid encoding.
var ErrMalformed = errors.New("event: malformed encoding " +
	"(the record is corrupt or truncated; restore it from a replica or backup, or skip it)")
