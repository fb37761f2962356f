package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The example runs: before the shred alice's fields read in clear (and her
// ID as a pseudonym), after it they read as shredded, bob's still in clear,
// and the log verifies.
func TestExample(t *testing.T) {
	root := t.TempDir()
	var out strings.Builder
	if err := run(filepath.Join(root, "audit-wal"), filepath.Join(root, "keys", "audit.keyring"), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	t.Log("\n" + got)
	before, after, ok := strings.Cut(got, "After the shred:")
	if !ok {
		t.Fatal("no second replay")
	}
	for _, want := range []string{"alice@mail.example", "1 Rue de la Paix, Paris", "bob@mail.example"} {
		if !strings.Contains(before, want) {
			t.Errorf("before the shred: no %q", want)
		}
	}
	if strings.Contains(got, "User alice") {
		t.Error("alice's ID is in clear")
	}
	if strings.Contains(after, "alice@mail.example") || strings.Count(after, "<shredded key=k-") != 2 || !strings.Contains(after, "bob@mail.example") {
		t.Errorf("after the shred:%s", after)
	}
	if !regexp.MustCompile(`Verify: ok=true, 4 events`).MatchString(got) {
		t.Error("the log does not verify")
	}
}
