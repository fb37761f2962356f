package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
)

// damagedCopy is a copy of the fixture log with one byte flipped in its
// second segment.
func damagedCopy(t *testing.T) string {
	t.Helper()
	dir := copyFixture(t)
	seg := segments(t, dir)[1]
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	data[1024+40] ^= 0x01
	if err := os.WriteFile(seg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func lines(s string) int { return strings.Count(s, "\n") }

// TestReplayKeepsOutputBeforeError (issue 15, bug 1): replay prints every
// event it matched before damage in the log, or a filter error on a later
// event, then the error; replay --file and export keep the events before
// damage in their file.
func TestReplayKeepsOutputBeforeError(t *testing.T) {
	dir := damagedCopy(t)
	lib := 0
	for _, err := range audit.Replay(t.Context(), dir, time.Time{}, time.Time{}) {
		if err != nil {
			break
		}
		lib++
	}
	if lib == 0 {
		t.Fatal("the library replays no event before the damage")
	}
	r := run(t, "", "replay", "--wal", dir)
	if r.code != 1 || !strings.Contains(r.stderr, "damaged") {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	if n := lines(r.stdout); n < lib {
		t.Fatalf("replay printed %d lines before the error, the library yields %d events\n%s", n, lib, r.stdout)
	}

	r = run(t, "", "replay", "--wal", "wal", "--filter", `seq < 5 || props.UserId * 2 > 1`)
	if r.code != 2 || !strings.Contains(r.stderr, "--filter on event") {
		t.Fatalf("filter error: exit %d, stderr %s", r.code, r.stderr)
	}
	if lines(r.stdout) == 0 {
		t.Fatal("replay printed nothing of what the filter matched before its error")
	}

	work := t.TempDir()
	for _, args := range [][]string{
		{"replay", "--wal", dir, "--file", filepath.Join(work, "r.txt")},
		{"export", "--wal", dir, "--format", "jsonl", "--output", filepath.Join(work, "e.jsonl")},
	} {
		r := run(t, "", args...)
		if r.code != 1 || strings.Contains(r.stderr, "removed") || !strings.Contains(r.stderr, "before the damage") {
			t.Fatalf("%s: exit %d, stderr %s", args[0], r.code, r.stderr)
		}
		data, err := os.ReadFile(args[len(args)-1])
		if err != nil {
			t.Fatalf("%s: %v", args[0], err)
		}
		if n := lines(string(data)); n < lib {
			t.Fatalf("%s kept %d events, want the %d before the damage", args[0], n, lib)
		}
	}
}

// TestFilterHelpExamples (issue 15, bug 2): the examples of the help work
// on the fixture, where most events lack some property, and level names
// are case-insensitive.
func TestFilterHelpExamples(t *testing.T) {
	r := run(t, "", "replay", "--help")
	if !strings.Contains(r.stdout, `props.Count > 10 || message contains "export"`) {
		t.Fatalf("the example is gone from the help:\n%s", r.stdout)
	}
	for _, f := range []string{
		`props.Count > 10 || message contains "export"`,
		`props.Role > "a"`, // Role only on some events
		`level >= Error && props.UserId == "u-1"`,
		`seq in 100..200`,
	} {
		if r := run(t, "", "replay", "--wal", "wal", "--filter", f); r.code != 0 {
			t.Errorf("--filter %s: exit %d, stderr %s", f, r.code, r.stderr)
		}
	}
	want := run(t, "", "replay", "--wal", "wal", "--filter", "level >= Error")
	for _, f := range []string{"level >= ERROR", "level >= error", "level >= ERR"} {
		r := run(t, "", "replay", "--wal", "wal", "--filter", f)
		if r.code != 0 || r.stdout != want.stdout || lines(r.stdout) == 0 {
			t.Errorf("--filter %s: exit %d, %d lines (want %d), stderr %s", f, r.code, lines(r.stdout), lines(want.stdout), r.stderr)
		}
	}
}

// notALogDir is a directory that holds a file but no segments.
func notALogDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "notalog")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestUsageStatus (issue 15, bugs 5 and 11): an unknown command, flag or
// flag value is a usage error (2) with a hint to run --help.
func TestUsageStatus(t *testing.T) {
	cases := [][]string{
		{"bogus"},
		{"verfy", "--wal", "wal"},
		{"verify", "--bogus"},
		{"keys", "bogus"},
		{"prove", "bogus"},
		{"completion", "tcsh"},
		{"--progress", "bogus", "version"},
		{"replay", "--wal", "wal", "--progress", "sometimes"},
		{"torture", "--iterations", "0"},
		{"torture", "--duration", "0s"},
	}
	for _, args := range cases {
		r := run(t, "", args...)
		if r.code != 2 || !strings.Contains(r.stderr, "--help' for usage") {
			t.Errorf("%v: exit %d, want 2 with a hint to run --help; stdout %.200s stderr %s", args, r.code, r.stdout, r.stderr)
		}
	}
	for _, args := range [][]string{{"completion", "bash"}, {"keys"}, {"--progress", "never", "version"}} {
		if r := run(t, "", args...); r.code != 0 {
			t.Errorf("%v: exit %d, stderr %s", args, r.code, r.stderr)
		}
	}
}

// TestNotALog (issue 15, bugs 5 and 10): every command that reads a log
// says that a directory without segments is not a log, with the usage
// status, gives no writer's advice, and creates no output.
func TestNotALog(t *testing.T) {
	dir := notALogDir(t)
	work := t.TempDir()
	out := filepath.Join(work, "out.csv")
	cases := [][]string{
		{"verify", "--wal", dir},
		{"verify", "--wal", dir, "--key", pub(t)},
		{"replay", "--wal", dir},
		{"export", "--wal", dir, "--format", "csv", "--output", out},
		{"checkpoint", "--wal", dir},
		{"prove", "inclusion", "--wal", dir, "--seq", "1"},
		{"prove", "consistency", "--wal", dir, "--from", "1", "--to", "2"},
		{"recover", "--input", dir, "--output", filepath.Join(work, "rec")},
		{"recover", "--input", "wal", "--mirror", dir, "--output", filepath.Join(work, "rep")},
	}
	for _, args := range cases {
		r := run(t, "", args...)
		if r.code != 2 || !strings.Contains(r.stderr, dir+" is not an mtlog-audit log (no segment files)") ||
			strings.Contains(r.stderr, "empty or new directory") || strings.Contains(r.stderr, "no signed checkpoint") ||
			strings.Contains(r.stderr, "partial file") {
			t.Errorf("%v: exit %d, stderr %s", args, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("export created %s before it checked its input (%v)", out, err)
	}
	for _, name := range []string{"rec", "rep"} {
		if _, err := os.Stat(filepath.Join(work, name)); !os.IsNotExist(err) {
			t.Errorf("recover created %s (%v)", name, err)
		}
	}
}

// TestErrorsNameTheFlagUsed (issue 15, bug 6).
func TestErrorsNameTheFlagUsed(t *testing.T) {
	work := t.TempDir()
	exists := filepath.Join(work, "exists.txt")
	os.WriteFile(exists, nil, 0o644)
	missing := filepath.Join(work, "missing")
	cases := []struct {
		args      []string
		flag, not string
	}{
		{[]string{"replay", "--wal", "wal", "--file", exists}, "another --file", "another --output"},
		{[]string{"replay", "--wal", "wal", "--output", exists}, "another --output", "another --file"},
		{[]string{"export", "--wal", "wal", "--format", "csv", "--output", exists}, "--output", "--file"},
		{[]string{"recover", "--input", missing, "--output", filepath.Join(work, "o1")}, "--input", "--wal"},
		{[]string{"recover", "--input", "wal", "--mirror", missing, "--output", filepath.Join(work, "o2")}, "--mirror", "--wal"},
		{[]string{"recover", "--input", missing, "--mirror", "wal", "--output", filepath.Join(work, "o3")}, "--input", "--wal"},
	}
	for _, c := range cases {
		r := run(t, "", c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.flag) || strings.Contains(r.stderr, c.not) {
			t.Errorf("%v: exit %d, want 2 and an error naming %s (not %s): %s", c.args, r.code, c.flag, c.not, r.stderr)
		}
	}
}

// TestKeysGenerateCreatesDir (issue 15, bug 8).
func TestKeysGenerateCreatesDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etc", "keys")
	r := run(t, "", "keys", "generate", "--name", "example.com/audit", "--dir", dir)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("%s has mode %v, want 0700", dir, st.Mode().Perm())
	}
	for _, f := range []string{"example.com_audit.key", "example.com_audit.pub"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

// TestRecoverLiveLog (issue 15, bug 9): recover on a log a running sink
// has open says the log is live (usage status) instead of reporting the
// space written ahead as a torn tail, and writes nothing.
func TestRecoverLiveLog(t *testing.T) {
	dir := copyFixture(t)
	s, err := audit.New(audit.WithWAL(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write(t.Context(), &audit.Event{MessageTemplate: "live"}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "rec")
	r := run(t, "", "recover", "--input", dir, "--output", out)
	if r.code != 2 || !strings.Contains(r.stderr, "is live") || strings.Contains(r.stdout+r.stderr, "torn") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("recover created %s (%v)", out, err)
	}
	// Once the sink is closed, recover works.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if r := run(t, "", "recover", "--input", dir, "--output", out); r.code != 0 {
		t.Fatalf("after Close: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestVersionLdflags (issue 15): without VCS stamping, version does not
// just say "revision: unknown": -ldflags -X sets the version and revision,
// and without them the output says how to set them.
func TestVersionLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command twice")
	}
	dir := t.TempDir()
	build := func(name string, args ...string) string {
		t.Helper()
		out := filepath.Join(dir, name)
		cmd := exec.Command("go", append(append([]string{"build", "-buildvcs=false", "-o", out}, args...), "github.com/willibrandon/mtlog-audit/cmd/mtlog-audit")...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, b)
		}
		return out
	}
	stamped := build("stamped", "-ldflags", "-X github.com/willibrandon/mtlog-audit/internal/cli.Version=v9.8.7 -X github.com/willibrandon/mtlog-audit/internal/cli.Revision=0123abc")
	out, err := exec.Command(stamped, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "mtlog-audit v9.8.7\n") || !strings.Contains(string(out), "revision: 0123abc\n") {
		t.Fatalf("version with -ldflags -X:\n%s", out)
	}
	plain := build("plain")
	out, err = exec.Command(plain, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "-ldflags -X") {
		t.Fatalf("version without VCS information does not say how to set it:\n%s", out)
	}
}
