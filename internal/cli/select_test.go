package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seqsOf returns the "#N" sequence numbers of replay's text output.
func seqsOf(out string) []string {
	var seqs []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 2 && strings.HasPrefix(f[2], "#") {
			seqs = append(seqs, f[2][1:])
		}
	}
	return seqs
}

// TestSelectionFlags: --since/--until (RFC 3339, a date or time without a
// zone as UTC, a duration back from now), --seq, --limit and --last select
// the same events in replay and export, and bad values are usage errors.
func TestSelectionFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string // the sequence numbers, space-separated
	}{
		{[]string{"--seq", "5..8"}, "5 6 7 8"},
		{[]string{"--seq", "7"}, "7"},
		{[]string{"--seq", "..2"}, "1 2"},
		{[]string{"--seq", "40.."}, "40 41 42"},
		{[]string{"--limit", "2"}, "1 2"},
		{[]string{"--last", "3"}, "40 41 42"},
		{[]string{"--last", "2", "--seq", "..8"}, "7 8"},
		{[]string{"--limit", "1", "--filter", "level >= Error"}, "10"},
		{[]string{"--since", "2026-01-02T03:10:00", "--until", "2026-01-02T03:12:00"}, "7 8"},
		{[]string{"--since", "2026-01-02T04:10:00+01:00", "--until", "2026-01-02T03:12:00Z"}, "7 8"},
		{[]string{"--until", "2026-01-02"}, ""},
		{[]string{"--since", "1h"}, ""}, // the fixture's events are from January 2026
		{[]string{"--since", "100000d", "--limit", "1"}, "1"},
	}
	for _, c := range cases {
		r := run(t, "", append([]string{"replay", "--wal", "wal"}, c.args...)...)
		if r.code != 0 {
			t.Errorf("replay %v: exit %d: %s", c.args, r.code, r.stderr)
			continue
		}
		if got := strings.Join(seqsOf(r.stdout), " "); got != c.want {
			t.Errorf("replay %v: %q, want %q", c.args, got, c.want)
		}
		out := filepath.Join(t.TempDir(), "e.csv")
		r = run(t, "", append([]string{"export", "--wal", "wal", "--format", "csv", "--output", out}, c.args...)...)
		if r.code != 0 {
			t.Errorf("export %v: exit %d: %s", c.args, r.code, r.stderr)
			continue
		}
		data, _ := os.ReadFile(out)
		var seqs []string
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n")[1:] {
			if s, _, ok := strings.Cut(l, ","); ok && s != "" && s[0] >= '0' && s[0] <= '9' {
				seqs = append(seqs, s)
			}
		}
		if got := strings.Join(seqs, " "); got != c.want {
			t.Errorf("export %v: %q, want %q", c.args, got, c.want)
		}
	}
	for _, args := range [][]string{
		{"--seq", "0..3"}, {"--seq", "5..3"}, {"--seq", "x"}, {"--seq", ".."},
		{"--limit", "0"}, {"--last", "-1"}, {"--limit", "2", "--last", "2"},
		{"--since", "bogus"}, {"--since", "-1h"}, {"--since", "1h", "--from", "2026-01-01"},
		{"--since", "2026-01-03", "--until", "2026-01-02"},
	} {
		r := run(t, "", append([]string{"replay", "--wal", "wal"}, args...)...)
		if r.code != 2 {
			t.Errorf("replay %v: exit %d, want 2; stderr %s", args, r.code, r.stderr)
		}
	}
}

// TestLastBeforeDamage: --last on a damaged log prints the last events
// before the damage, then the error.
func TestLastBeforeDamage(t *testing.T) {
	dir := damagedCopy(t)
	all := run(t, "", "replay", "--wal", dir)
	seqs := seqsOf(all.stdout)
	if all.code != 1 || len(seqs) < 2 {
		t.Fatalf("replay: exit %d, %d events", all.code, len(seqs))
	}
	r := run(t, "", "replay", "--wal", dir, "--last", "2")
	if got, want := strings.Join(seqsOf(r.stdout), " "), strings.Join(seqs[len(seqs)-2:], " "); r.code != 1 || got != want {
		t.Fatalf("--last 2: exit %d, %q, want %q; stderr %s", r.code, got, want, r.stderr)
	}
}
