package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestRun runs the example, as the README shows it, and checks that the
// log holds tokens and no card number, CVV, PIN block or password.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.TempDir(), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	t.Log(got)
	for _, s := range []string{"pan:tok:pan-2026:", "RemovedSensitiveData: [CVV]", "RemovedSensitiveData: [PINBlock]", "Password: [masked]", "password to [masked]"} {
		if !strings.Contains(got, s) {
			t.Errorf("output lacks %q", s)
		}
	}
	for _, s := range []string{"4111", "5500", "737", "0412AC89ABCDEF67", "correct horse"} {
		if strings.Contains(got, s) {
			t.Errorf("output holds %q", s)
		}
	}
}
