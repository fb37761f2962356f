package cli_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
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

// TestSelectionExtremeDates: --since and --until select events dated
// outside 1678–2262, where unix nanoseconds overflow, exactly, over a log
// of several segments, in replay and export.
func TestSelectionExtremeDates(t *testing.T) {
	dir := t.TempDir()
	s, err := audit.New(audit.WithWAL(filepath.Join(dir, "wal"), audit.WithSegmentSize(4096)))
	if err != nil {
		t.Fatal(err)
	}
	for _, y := range []int{1, 1000, 1677, 1678, 2024, 2262, 2263, 3000, 9999} {
		for i := range 4 {
			ev := &audit.Event{Timestamp: time.Date(y, time.June, 1, i, 0, 0, 0, time.UTC), MessageTemplate: "event " + strings.Repeat("x", 300)}
			if _, err := s.Write(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, full := range [][]string{nil, {"--full"}} {
		in := runInfo(t, filepath.Join(dir, "wal"), full...)
		if in.FirstTime != "at or before 1677-09-21T00:12:43.145224192Z" || in.LastTime != "at or after 2262-04-11T23:47:16.854775807Z" {
			t.Errorf("info %v: event times %q to %q", full, in.FirstTime, in.LastTime)
		}
	}
	cases := []struct {
		args []string
		want string // year×number of events, in order
	}{
		{[]string{"--since", "1000-01-01", "--until", "2100-01-01"}, "1000×4 1677×4 1678×4 2024×4"},
		{[]string{"--since", "2000-01-01"}, "2024×4 2262×4 2263×4 3000×4 9999×4"},
		{[]string{"--since", "1600-01-01", "--until", "2100-01-01"}, "1677×4 1678×4 2024×4"},
		{[]string{"--until", "1600-01-01"}, "0001×4 1000×4"},
		{[]string{"--since", "2262-06-01T02:00:00Z", "--until", "3000-06-01T01:00:00Z"}, "2262×2 2263×4 3000×1"},
		{[]string{"--since", "0001-01-01", "--until", "0002-01-01"}, "0001×4"},
		{[]string{"--from", "9999-06-01T03:00:00Z"}, "9999×1"},
		{[]string{"--since", "9999-06-02"}, ""},
	}
	for _, c := range cases {
		r := run(t, dir, append([]string{"replay", "--wal", "wal"}, c.args...)...)
		if r.code != 0 {
			t.Errorf("replay %v: exit %d: %s", c.args, r.code, r.stderr)
			continue
		}
		var years []string // "year×count"
		n := 0
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			y, _, ok := strings.Cut(l, "-")
			if !ok || len(y) != 4 {
				continue
			}
			if len(years) > 0 && strings.HasPrefix(years[len(years)-1], y+"×") {
				n++
				years[len(years)-1] = fmt.Sprintf("%s×%d", y, n)
				continue
			}
			n = 1
			years = append(years, y+"×1")
		}
		if got := strings.Join(years, " "); got != c.want {
			t.Errorf("replay %v: years %q, want %q\n%s", c.args, got, c.want, r.stdout)
		}
	}
	out := filepath.Join(dir, "e.jsonl")
	args := []string{"export", "--wal", "wal", "--format", "jsonl", "--output", out, "--since", "1600-01-01", "--until", "2262-06-01T02:00:00Z"}
	if r := run(t, dir, args...); r.code != 0 {
		t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
	}
	data, _ := os.ReadFile(out)
	if n := strings.Count(string(data), "\n"); n != 3*4+2 {
		t.Errorf("%v: %d events, want 14 (1677, 1678, 2024 and 2262 before 02:00)\n%s", args, n, data)
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
