package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestRun runs the example and checks that each tenant's log holds only
// its own events, verifies with its own key and not with the other's, and
// that an unknown tenant is refused.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.TempDir(), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	t.Log(got)
	for _, s := range []string{
		"acme #3: carol logout\n",
		"globex #2: bob delete-user\n",
		`refused: unknown tenant "initech": open its log first`,
		"acme: 3 events [alice login alice export-invoices carol logout]; verified with its own key: true",
		"globex: 2 events [bob login bob delete-user]; verified with its own key: true",
		"acme: with another tenant's key: refused\n",
		"globex: with another tenant's key: refused\n",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("output lacks %q", s)
		}
	}
}
