package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeprecatedSpellings: the old spellings of renamed flags still do
// what they did, for one release, with a deprecation message on stderr
// and nothing extra on stdout.
func TestDeprecatedSpellings(t *testing.T) {
	work := t.TempDir()
	want := run(t, "", "replay", "--wal", "wal", "--json")
	if want.code != 0 || want.stderr != "" || !json.Valid([]byte(strings.SplitN(want.stdout, "\n", 2)[0])) {
		t.Fatalf("replay --json: %d %s", want.code, want.stderr)
	}
	text := run(t, "", "replay", "--wal", "wal")
	for _, c := range []struct {
		args   []string
		stdout string
		file   string // the file the command must write with want.stdout or text.stdout
		json   bool
		warn   string
	}{
		{[]string{"replay", "--wal", "wal", "--output", "json"}, want.stdout, "", true, "Flag --output json is deprecated"},
		{[]string{"replay", "--wal", "wal", "--output", "text"}, text.stdout, "", false, "Flag --output text is deprecated"},
		{[]string{"replay", "--wal", "wal", "--file", filepath.Join(work, "f.txt")}, "", filepath.Join(work, "f.txt"), false, "Flag --file is deprecated"},
		{[]string{"replay", "--wal", "wal", "--output", "json", "--file", filepath.Join(work, "f.jsonl")}, "", filepath.Join(work, "f.jsonl"), true, "Flag --file is deprecated"},
		{[]string{"replay", "--wal", "wal", "--json", "-o", filepath.Join(work, "o.jsonl")}, "", filepath.Join(work, "o.jsonl"), true, ""},
		{[]string{"replay", "--wal", "wal", "--output", filepath.Join(work, "o.txt")}, "", filepath.Join(work, "o.txt"), false, ""},
	} {
		r := run(t, "", c.args...)
		if r.code != 0 || r.stdout != c.stdout {
			t.Errorf("%v: exit %d, stdout %.80q, want %.80q; stderr %s", c.args, r.code, r.stdout, c.stdout, r.stderr)
		}
		if (c.warn == "") == strings.Contains(r.stderr, "deprecated") || !strings.Contains(r.stderr, c.warn) {
			t.Errorf("%v: stderr %q, want the deprecation %q", c.args, r.stderr, c.warn)
		}
		if c.file != "" {
			data, _ := os.ReadFile(c.file)
			wantFile := text.stdout
			if c.json {
				wantFile = want.stdout
			}
			if string(data) != wantFile {
				t.Errorf("%v: the file holds %.80q, want %.80q", c.args, data, wantFile)
			}
		}
	}
	if r := run(t, "", "replay", "--wal", "wal", "--output", "x", "--file", "y"); r.code != 2 {
		t.Errorf("--output FILE with --file: exit %d, want 2", r.code)
	}
}

// TestTortureOutputs: torture --json is a switch (JSON on stdout);
// --output FILE writes the summary in the format of --format or the
// extension; the old --json=FILE, --json FILE and --report FILE still
// work, with a deprecation message.
func TestTortureOutputs(t *testing.T) {
	dir := t.TempDir()
	base := []string{"torture", "--scenarios", "PowerLoss", "--iterations", "1", "--seed", "3"}
	isJSON := func(b []byte) bool {
		var m map[string]any
		return json.Unmarshal(b, &m) == nil && m["seed"] != nil
	}
	r := run(t, dir, append(base, "--json")...)
	if r.code != 0 || !isJSON([]byte(r.stdout)) {
		t.Fatalf("--json: exit %d, stdout %s, stderr %s", r.code, r.stdout, r.stderr)
	}
	r = run(t, dir, append(base, "--json=false")...)
	if r.code != 0 || !strings.Contains(r.stdout, "PASSED") {
		t.Fatalf("--json=false: exit %d, stdout %s", r.code, r.stdout)
	}
	for _, c := range []struct {
		args  []string
		files map[string]string // file → "json", "html" or "text"
		warn  string
	}{
		{[]string{"--json=eq.json"}, map[string]string{"eq.json": "json"}, "Flag --json FILE is deprecated"},
		{[]string{"--json", "sp.json"}, map[string]string{"sp.json": "json"}, "Flag --json FILE is deprecated"},
		{[]string{"--report", "r.html"}, map[string]string{"r.html": "html"}, "Flag --report is deprecated"},
		{[]string{"-o", "a.html", "--output", "a.json", "-o", "a.txt"}, map[string]string{"a.html": "html", "a.json": "json", "a.txt": "text"}, ""},
		{[]string{"--format", "json", "-o", "b.out"}, map[string]string{"b.out": "json"}, ""},
	} {
		r := run(t, dir, append(base, c.args...)...)
		if r.code != 0 || !strings.Contains(r.stdout, "PASSED") || !strings.Contains(r.stderr, c.warn) || strings.Contains(r.stdout, "deprecated") {
			t.Errorf("%v: exit %d\nstdout %s\nstderr %s", c.args, r.code, r.stdout, r.stderr)
			continue
		}
		for f, format := range c.files {
			data, err := os.ReadFile(filepath.Join(dir, f))
			ok := err == nil
			switch format {
			case "json":
				ok = ok && isJSON(data)
			case "html":
				ok = ok && strings.Contains(string(data), "<svg")
			case "text":
				ok = ok && strings.Contains(string(data), "PASSED")
			}
			if !ok {
				t.Errorf("%v: %s is not the %s summary (%v)", c.args, f, format, err)
			}
		}
	}
	for _, args := range [][]string{{"--format", "pdf", "-o", "x.pdf"}, {"--format", "json"}, {"--json", "a", "b"}} {
		if r := run(t, dir, append(base, args...)...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2; stderr %s", args, r.code, r.stderr)
		}
	}
}

// TestCompletesFlagValues asks cobra's hidden __complete command what the
// shell would offer for each enumerated flag.
func TestCompletesFlagValues(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"export", "--format", ""}, []string{"jsonl", "csv", "parquet"}},
		{[]string{"torture", "--format", ""}, []string{"html", "json", "text"}},
		{[]string{"recover", "--mode", ""}, []string{"safe", "aggressive"}},
		{[]string{"bench", "--sync", ""}, []string{"durable", "interval"}},
		{[]string{"verify", "--progress", ""}, []string{"auto", "always", "never"}},
		{[]string{"torture", "--scenarios", ""}, []string{"PowerLoss", "Kill9DuringWrite", "RandomCorruption"}},
		{[]string{"torture", "--scenarios", "PowerLoss,"}, []string{"PowerLoss,Kill9DuringWrite", "PowerLoss,RandomCorruption"}},
	} {
		r := run(t, "", append([]string{"__complete"}, c.args...)...)
		got := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if r.code != 0 || len(got) < 2 {
			t.Errorf("%v: exit %d, %q", c.args, r.code, r.stdout)
			continue
		}
		got = got[:len(got)-1] // the last line is the directive (":4")
		for _, w := range c.want {
			if !contains(got, w) {
				t.Errorf("%v: completions %v lack %q", c.args, got, w)
			}
		}
		if c.args[1] == "--scenarios" && len(c.args[2]) > 0 && contains(got, "PowerLoss,PowerLoss") {
			t.Errorf("%v offers a scenario already given: %v", c.args, got)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
