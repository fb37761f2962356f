package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestRun runs the example and checks what HIPAA's profile did: the
// lifecycle events, the flagged event, the diagnosis decrypted on replay
// and a log that verifies.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.TempDir(), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	t.Log(got)
	for _, s := range []string{
		"Flagged events (missing fields): 1",
		"[start] Audit log {Dir} started",
		"[config] Audit log configuration: profile {Profile}",
		`dr-house read chart patient-42 from 10.1.2.3: success; diagnosis J45.909 asthma`,
		"(missing [Outcome Source])",
		"Verify: ok=true, 9 events", // 3 entries; start, config, stop; the access log's 2 anchors; the replay's read
		"[read] Log read by",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("output lacks %q", s)
		}
	}
}
