package event

import (
	"encoding/hex"
	"testing"
	"time"
)

// TestGoldenEncoding pins the version 1 byte format (the example in
// docs/event-encoding.md). If it fails, the format changed: that needs a
// new version byte, not an edit of this test.
func TestGoldenEncoding(t *testing.T) {
	ev := &Event{
		Timestamp:       time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC),
		Level:           LevelInformation,
		MessageTemplate: "Hi {Name}",
		Message:         "Hi Bob",
		Properties:      map[string]any{"Name": "Bob"},
	}
	want := "01" + "caf49bd90c" + "06" + "00" + "03555443" + "02" +
		"09" + hex.EncodeToString([]byte("Hi {Name}")) +
		"06" + hex.EncodeToString([]byte("Hi Bob")) +
		"00" + "0f01" + "044e616d65" + "0703426f62"
	got := hex.EncodeToString(mustEncode(t, ev))
	if got != want {
		t.Fatalf("encoding changed:\n got  %s\n want %s", got, want)
	}
}
