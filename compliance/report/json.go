package report

import (
	"encoding/json"
	"io"
)

// WriteJSON writes r as indented JSON and a newline: the report's JSON
// form, documented field by field in docs/compliance/reports.md.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}
