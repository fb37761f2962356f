// Package export filters audit events and writes them out as JSON lines, CSV
// or Parquet. It serves the `replay` and `export` subcommands of the
// mtlog-audit command.
//
// The three formats carry the same fields, in this order: seq (the WAL
// sequence number), time (UTC, RFC 3339 with nine fractional digits), level
// (its name), template, message (see [Render]), properties (a JSON object,
// see [JSON] for how each kind of value is written) and exception. Parquet
// also has a level_number column.
//
// A [Filter] is an expr-lang expression over an event (see [CompileFilter]
// for the variables).
//
// Nothing in this package keeps global mutable state; a [Writer] or a
// [Filter] holds everything it uses. A Writer is not safe for concurrent
// use; a Filter is.
package export

import (
	"fmt"
	"strings"
)

// Format is an export file format.
type Format string

// The supported formats.
const (
	// JSONL writes one JSON object per line (see JSON), each line ended by "\n".
	JSONL Format = "jsonl"
	// CSV writes an RFC 4180 file with the header
	// seq,time,level,template,message,properties,exception.
	CSV Format = "csv"
	// Parquet writes an Apache Parquet file with typed columns.
	Parquet Format = "parquet"
)

// formats lists the valid formats in the order they are documented.
func formats() []Format { return []Format{JSONL, CSV, Parquet} }

// Formats returns the names of the valid formats, in the order they are
// documented (for help and shell completion).
func Formats() []string {
	var names []string
	for _, f := range formats() {
		names = append(names, string(f))
	}
	return names
}

// ParseFormat returns the Format named s (case-insensitive, surrounding
// spaces ignored). An unknown name gives an error that lists the valid ones.
func ParseFormat(s string) (Format, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	for _, f := range formats() {
		if t == string(f) {
			return f, nil
		}
	}
	names := make([]string, 0, len(formats()))
	for _, f := range formats() {
		names = append(names, string(f))
	}
	return "", fmt.Errorf("export: unknown format %q (use one of %s)", s, strings.Join(names, ", "))
}
