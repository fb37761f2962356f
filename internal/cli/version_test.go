package cli

import "testing"

// TestModuleRevision: a binary installed with `go install MODULE@VERSION`
// has a module version and no VCS settings; version names its revision
// from the version instead of calling it unknown.
func TestModuleRevision(t *testing.T) {
	for version, want := range map[string]string{
		"v0.0.0-20261202135002-ef11ada9ac12":   "ef11ada9ac12",
		"v1.3.1-0.20261202135002-ef11ada9ac12": "ef11ada9ac12",
		"v1.2.3":                               "the commit tagged v1.2.3",
		"(devel)":                              "",
		"":                                     "",
	} {
		if got := moduleRevision(version); got != want {
			t.Errorf("moduleRevision(%q) = %q, want %q", version, got, want)
		}
	}
}
