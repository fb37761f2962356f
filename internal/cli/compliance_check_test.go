package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/cli"
)

// writeConfig writes a sink configuration file into dir.
func writeConfig(t *testing.T, dir, text string) string {
	t.Helper()
	p := filepath.Join(dir, "audit.json")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestComplianceCheckCommand: check prints the same list as New (exit 1),
// exit 0 once the file meets the profile, and usage errors exit 2.
func TestComplianceCheckCommand(t *testing.T) {
	dir := t.TempDir()
	skey, _, err := integrity.GenerateKey("cli.example")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "audit.key")
	if err := os.WriteFile(keyFile, []byte(skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unmet := writeConfig(t, dir, `{"wal": "/var/lib/app/audit", "retention": "90d", "failure_mode": "fail-open"}`)
	r := run(t, dir, "compliance", "check", "--profile", "SOX", "--config", unmet)
	if r.code != cli.ExitFailed {
		t.Fatalf("unmet: exit %d; want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, s := range []string{"does not meet SOX: 5 unmet", "retention-minimum", "WithRetention(7y)", "encryption", "signing", "WithSigningKeyFile", "off-box-copy", "fail-closed", "remove WithFailOpen"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
		}
	}
	r = run(t, dir, "compliance", "check", "--profile", "sox", "--config", unmet, "--json")
	var out struct {
		Profile string
		Met     bool
		Unmet   []struct{ Requirement, Clause, Problem, Fix string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != cli.ExitFailed || out.Met || len(out.Unmet) != 5 || out.Profile != "SOX" {
		t.Fatalf("--json: exit %d, %+v, %v\n%s", r.code, out, err, r.stdout)
	}

	met := writeConfig(t, dir, `{
  "wal": "/var/lib/app/audit",
  "signing_key_file": "`+keyFile+`",
  "keyring": "/etc/app/audit.keyring",
  "encrypt": ["Amount"],
  "shipping": {"quorum": 1, "backends": ["s3://audit-bucket/app"]},
  "retention": "7y"
}`)
	r = run(t, dir, "compliance", "check", "--profile", "SOX", "--config", met)
	if r.code != cli.ExitOK || !strings.Contains(r.stdout, "meets SOX") {
		t.Fatalf("met: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--profile", "HIPPA", "--config", met}, "use one of HIPAA, PCI-DSS, SOX, GDPR, NIST-800-53-HIGH"},
		{[]string{"--profile", "SOX"}, "--config"},
		{[]string{"--profile", "SOX", "--config", writeConfig(t, t.TempDir(), `{"wall": "x"}`)}, `unknown field "wall"`},
		{[]string{"--profile", "SOX", "--config", writeConfig(t, t.TempDir(), `{"retention": "7 years"}`)}, "retention: period"},
		{[]string{"--profile", "SOX", "--config", writeConfig(t, t.TempDir(), `{"waivers": {"encryption": ""}}`)}, "give the reason"},
		{[]string{"--profile", "SOX", "--config", filepath.Join(dir, "missing.json")}, "no such file"},
	} {
		r := run(t, dir, append([]string{"compliance", "check"}, tc.args...)...)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, tc.want) || strings.Contains(r.stderr, "goroutine") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}
