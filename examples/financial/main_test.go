package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestRun runs the example and checks the SOX profile's list of unmet
// requirements, the rejected entry and a log that verifies.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.TempDir(), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	t.Log(got)
	for _, s := range []string{
		"Unmet SOX requirements: 4",
		"encryption: pass WithKeyring(path, provider) and WithEncryption(fields...)",
		"signing: pass WithSigningKeyFile(path)",
		"off-box-copy: pass WithShipping(quorum, backends...)",
		"fail-closed: remove WithFailOpen",
		"An entry without Outcome: rejected=true",
		"missing required fields Outcome",
		"Verify: ok=true, 6 events",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("output lacks %q", s)
		}
	}
}
