package cli_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

var (
	update        = flag.Bool("update", false, "rewrite the golden files in testdata/golden")
	updateFixture = flag.Bool("update-fixture", false, "regenerate the fixture log in testdata/fixture (changes every golden file)")
)

// bin is the mtlog-audit binary built once for the tests.
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "mtlog-audit-cli")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "mtlog-audit")
	build := exec.Command("go", "build", "-o", bin, "github.com/willibrandon/mtlog-audit/cmd/mtlog-audit")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build mtlog-audit:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Fixture layout: testdata/fixture/wal is a small signed log (3 segments,
// 40 events, a checkpoint every 10 records), test.key/test.pub its key pair
// (used only by these tests).
const (
	fixtureDir = "testdata/fixture"
	keyName    = "fixture.mtlog-audit.test"
)

var fixtureStart = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fixtureEvent is event i of the fixture (0-based).
func fixtureEvent(i int) *audit.Event {
	users := []string{"u-1", "u-2", "u-3"}
	ev := &audit.Event{
		Timestamp:       fixtureStart.Add(time.Duration(i) * time.Minute),
		Level:           audit.LevelInformation,
		MessageTemplate: "User {UserId} exported {Count} records",
		Properties: map[string]any{
			"UserId": users[i%3], "Count": int64(i * 10),
			"Request": map[string]any{"Path": "/export", "Ok": i%5 != 0},
		},
	}
	switch {
	case i%10 == 9:
		ev.Level = audit.LevelError
		ev.MessageTemplate = "Export by {UserId} failed"
		ev.Exception = errors.New("disk quota exceeded\nretry later")
	case i%7 == 3:
		ev.Level = audit.LevelWarning
		ev.MessageTemplate = "Role {Role} granted to {UserId}"
		ev.Properties["Role"] = "admin"
	}
	return ev
}

// TestGenerateFixture rewrites the committed fixture with -update-fixture.
func TestGenerateFixture(t *testing.T) {
	if !*updateFixture {
		t.Skip("run with -update-fixture to regenerate testdata/fixture")
	}
	os.RemoveAll(fixtureDir)
	if err := os.MkdirAll(fixtureDir, 0o755); err != nil {
		t.Fatal(err)
	}
	skey, vkey, err := integrity.GenerateKey(keyName)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(fixtureDir, "test.key"), []byte(skey+"\n"), 0o600)
	os.WriteFile(filepath.Join(fixtureDir, "test.pub"), []byte(vkey+"\n"), 0o644)
	s, err := audit.New(audit.WithWAL(filepath.Join(fixtureDir, "wal"), audit.WithSegmentSize(8<<10)),
		audit.WithSigningKey(skey), audit.WithCheckpoints(10, time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if _, err := s.Write(context.Background(), fixtureEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(fixtureDir, "wal", wal.LockName))
}

// result is what one run of the binary did.
type result struct {
	code           int
	stdout, stderr string
}

// run runs the binary in dir (the fixture directory if ""), with args.
func run(t *testing.T, dir string, args ...string) result {
	t.Helper()
	if dir == "" {
		dir = fixtureDir
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

// golden compares got with testdata/golden/name (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the tests with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (run with -update if the change is intended)\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

// TestGolden runs each command on the fixture and compares its output and
// exit status with the committed golden files.
func TestGolden(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"verify.txt", []string{"verify", "--wal", "wal", "--key", "test.pub"}, 0},
		{"verify.json", []string{"verify", "--wal", "wal", "--key", "test.pub", "--json"}, 0},
		{"verify-nokey.txt", []string{"verify", "--wal", "wal"}, 3},
		{"replay.txt", []string{"replay", "--wal", "wal"}, 0},
		{"replay.json", []string{"replay", "--wal", "wal", "--json"}, 0},
		{"replay-filter.txt", []string{"replay", "--wal", "wal", "--filter", `level >= Error && props.UserId == "u-1"`}, 0},
		{"replay-range.txt", []string{"replay", "--wal", "wal", "--from", "2026-01-02T03:10:00Z", "--to", "2026-01-02T03:14:00Z"}, 0},
		{"checkpoint.txt", []string{"checkpoint", "--wal", "wal", "--key", "test.pub"}, 0},
		{"checkpoint-all.txt", []string{"checkpoint", "--wal", "wal", "--all"}, 0},
		{"prove-inclusion.json", []string{"prove", "inclusion", "--wal", "wal", "--seq", "7"}, 0},
		{"prove-consistency.json", []string{"prove", "consistency", "--wal", "wal", "--from", "10", "--to", "26"}, 0},
		{"keys-show.txt", []string{"keys", "show", "--key", "test.key"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, "", c.args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d; stderr: %s", r.code, c.code, r.stderr)
			}
			golden(t, c.name, r.stdout)
		})
	}
}

// TestGoldenWorkdir runs the commands that write files or need a damaged
// log in a scratch directory holding a copy of the fixture as ./wal, so
// that every path in their output is relative and the output is stable.
func TestGoldenWorkdir(t *testing.T) {
	work := t.TempDir()
	if err := os.CopyFS(filepath.Join(work, "wal"), os.DirFS(filepath.Join(fixtureDir, "wal"))); err != nil {
		t.Fatal(err)
	}
	os.CopyFS(work, os.DirFS(fixtureDir)) // keys (wal exists already: ignore the error)
	seg := filepath.Join(work, "wal", "00000000000000000002.wal")
	data, _ := os.ReadFile(seg)
	for i := 2048; i < 2048+512; i++ {
		data[i] = 0
	}
	os.WriteFile(seg, data, 0o644)
	steps := []struct {
		name string
		args []string
		file string // golden of this output file instead of stdout
		code int
	}{
		{"verify-damaged.txt", []string{"verify", "--wal", "wal", "--key", "test.pub"}, "", 1},
		{"verify-damaged.json", []string{"verify", "--wal", "wal", "--key", "test.pub", "--json"}, "", 1},
		{"recover-aggressive.txt", []string{"recover", "--input", "wal", "--output", "out1", "--mode", "aggressive", "--signing-key", "test.key"}, "", 1},
		{"recover-safe.json", []string{"recover", "--input", "wal", "--output", "out2", "--json"}, "", 1},
		{"replay-recovered.txt", []string{"replay", "--wal", "out1"}, "", 0},
		{"export-errors.csv", []string{"export", "--wal", "out1", "--format", "csv", "--output", "errors.csv", "--filter", "level >= Error"}, "errors.csv", 0},
		{"export-u2.jsonl", []string{"export", "--wal", "out1", "--format", "jsonl", "--output", "u2.jsonl", "--filter", `props.UserId == "u-2" && seq < 12`}, "u2.jsonl", 0},
		{"prove-for-verify.json", []string{"prove", "inclusion", "--wal", "out1", "--seq", "3", "--output", "p.json"}, "", 0},
		{"verify-proof.txt", []string{"verify-proof", "p.json", "--key", "test.pub"}, "", 0},
		{"prove-unsigned.txt", []string{"prove", "inclusion", "--wal", "out2", "--seq", "3"}, "", 2},
	}
	for _, c := range steps {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, work, c.args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d; stdout %s stderr %s", r.code, c.code, r.stdout, r.stderr)
			}
			got := r.stdout
			if c.file != "" {
				b, err := os.ReadFile(filepath.Join(work, c.file))
				if err != nil {
					t.Fatal(err)
				}
				got = string(b)
			}
			if c.name == "prove-for-verify.json" {
				return // holds the new log's checkpoint time; checked by verify-proof
			}
			if c.name == "prove-unsigned.txt" {
				got = r.stderr
			}
			if c.name == "verify-proof.txt" {
				// The recovered log's checkpoint was signed just now.
				got = regexp.MustCompile(`checkpoint: \S+`).ReplaceAllString(got, "checkpoint: $$TIME")
			}
			// recover reports absolute paths; the scratch directory varies.
			abs, _ := filepath.EvalSymlinks(work)
			got = strings.ReplaceAll(strings.ReplaceAll(got, abs+"/", "$WORK/"), work+"/", "$WORK/")
			golden(t, c.name, got)
		})
	}
}

// copyFixture copies the fixture log to a temporary directory.
func copyFixture(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "wal")
	if err := os.CopyFS(dst, os.DirFS(filepath.Join(fixtureDir, "wal"))); err != nil {
		t.Fatal(err)
	}
	return dst
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(m) < 3 {
		t.Fatalf("fixture has %d segments, want ≥ 3", len(m))
	}
	return m
}

func pub(t *testing.T) string {
	p, err := filepath.Abs(filepath.Join(fixtureDir, "test.pub"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestVerifyExitCodes covers each failure class of verify.
func TestVerifyExitCodes(t *testing.T) {
	t.Run("flipped byte", func(t *testing.T) {
		dir := copyFixture(t)
		seg := segments(t, dir)[1]
		data, _ := os.ReadFile(seg)
		data[1024+40] ^= 0x01
		os.WriteFile(seg, data, 0o644)
		r := run(t, "", "verify", "--wal", dir, "--key", pub(t))
		if r.code != 1 || !strings.Contains(r.stdout, "record-corrupt") || !strings.Contains(r.stdout, "segment 2") {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = run(t, "", "verify", "--wal", dir, "--key", pub(t), "--json")
		if r.code != 1 || !strings.Contains(r.stdout, `"code": "record-corrupt"`) {
			t.Fatalf("json: exit %d\n%s", r.code, r.stdout)
		}
	})
	t.Run("deleted segment", func(t *testing.T) {
		// Every record before the missing segment is intact: the first
		// bad index is the first missing record, and all before it count.
		dir := copyFixture(t)
		var before uint64
		if _, err := wal.Check(context.Background(), vfs.OS(), dir, func(r wal.Record) error {
			if r.Segment == 1 {
				before = r.Seq
			}
			return nil
		}); err != nil || before == 0 {
			t.Fatal(before, err)
		}
		os.Remove(segments(t, dir)[1])
		r := run(t, "", "verify", "--wal", dir, "--key", pub(t))
		want := []string{
			fmt.Sprintf("first bad index: %d (sequence number %d)", before, before+1),
			"location:        segment 2, offset 0",
			fmt.Sprintf("records before the damage verified: %d\n", before),
		}
		for _, w := range want {
			if r.code != 1 || !strings.Contains(r.stdout, w) {
				t.Fatalf("exit %d, want %q in\n%s%s", r.code, w, r.stdout, r.stderr)
			}
		}
	})
	t.Run("undecodable event", func(t *testing.T) {
		// Checksums hold but the event does not decode: replay would
		// fail, so verify must too.
		dir := copyFixture(t)
		w, err := wal.Open(vfs.OS(), dir, wal.Options{SegmentSize: 8 << 10})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Append(context.Background(), wal.RecordEvent, fixtureStart.UnixNano(), []byte{1, 0xff}); err != nil {
			t.Fatal(err)
		}
		w.Close()
		r := run(t, "", "verify", "--wal", dir, "--key", pub(t))
		// The fixture ends sealed: the append opened segment 4.
		if r.code != 1 || !strings.Contains(r.stdout, "event-undecodable") || !strings.Contains(r.stdout, "location:        segment 4, offset 512") {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("unparseable checkpoint", func(t *testing.T) {
		// A stored checkpoint that cannot be parsed implicates no record.
		dir := copyFixture(t)
		path := filepath.Join(dir, integrity.CheckpointsFile)
		cps, err := integrity.ReadCheckpointLog(vfs.OS(), path)
		if err != nil || len(cps) < 3 {
			t.Fatal(len(cps), err)
		}
		cps[1] = []byte("not a checkpoint")
		os.Remove(path)
		l, err := integrity.OpenCheckpointLog(vfs.OS(), path)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cps {
			if err := l.Append(c); err != nil {
				t.Fatal(err)
			}
		}
		l.Close()
		r := run(t, "", "verify", "--wal", dir, "--key", pub(t))
		for _, w := range []string{"checkpoint-signature", "first bad index: none", "stored checkpoint 2 of", "byte offset"} {
			if r.code != 1 || !strings.Contains(r.stdout, w) {
				t.Fatalf("exit %d, want %q in\n%s%s", r.code, w, r.stdout, r.stderr)
			}
		}
		if strings.Contains(r.stdout, "first bad index: 0") {
			t.Fatalf("record 0 is blamed:\n%s", r.stdout)
		}
		if r := run(t, "", "verify", "--wal", dir, "--key", pub(t), "--json"); r.code != 1 || !strings.Contains(r.stdout, `"no_record": true`) {
			t.Fatalf("json: exit %d\n%s", r.code, r.stdout)
		}
	})
	t.Run("checkpoint by another key", func(t *testing.T) {
		_, other, _ := integrity.GenerateKey(keyName)
		// The wrong key is its own outcome (exit 2, untrusted-key), not
		// "FAILED … first bad index" tampering.
		r := run(t, "", "verify", "--wal", "wal", "--key", other)
		if r.code != 2 || !strings.Contains(r.stdout, "untrusted-key") || strings.Contains(r.stdout, "first bad index") || !strings.Contains(r.stdout, "tampering") {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("uncovered tail", func(t *testing.T) {
		dir := copyFixture(t)
		s, err := audit.New(audit.WithWAL(dir))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if _, err := s.Write(context.Background(), fixtureEvent(i)); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		r := run(t, "", "verify", "--wal", dir, "--key", pub(t))
		if r.code != 3 || !strings.Contains(r.stdout, "uncovered:") {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("anchor from a longer log", func(t *testing.T) {
		// An anchor covering more records than the log holds: records
		// were removed after the auditor saw the checkpoint.
		dir := copyFixture(t)
		anchor := filepath.Join(t.TempDir(), "anchor.txt")
		r := run(t, "", "checkpoint", "--wal", dir)
		os.WriteFile(anchor, []byte(r.stdout), 0o644)
		segs := segments(t, dir)
		os.Remove(segs[len(segs)-1])
		r = run(t, "", "verify", "--wal", dir, "--key", pub(t), "--anchor", anchor)
		if r.code != 1 {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	for _, c := range []struct {
		name string
		args []string
		msg  string
	}{
		{"missing directory", []string{"verify", "--wal", "no-such-dir"}, "does not exist"},
		{"not a log", []string{"verify", "--wal", "."}, "not an mtlog-audit log"},
		{"a file", []string{"verify", "--wal", "test.pub"}, "is a file"},
		{"unreadable key", []string{"verify", "--wal", "wal", "--key", "nope.pub"}, "no such file"},
		{"private key as key", []string{"verify", "--wal", "wal", "--key", "test.key"}, "private signing key"},
		{"missing flag", []string{"verify"}, "--wal"},
		{"unknown flag", []string{"verify", "--wal", "wal", "--nope"}, "unknown flag"},
		{"anchor without key", []string{"verify", "--wal", "wal", "--anchor", "test.pub"}, "--key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, "", c.args...)
			if r.code != 2 || !strings.Contains(r.stderr, c.msg) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, c.msg)
			}
			if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
				t.Fatalf("stack trace for a user error:\n%s", r.stderr)
			}
		})
	}
}

// TestUnknownFormatVersion: a segment from a newer format is a usage error
// that says to upgrade.
func TestUnknownFormatVersion(t *testing.T) {
	dir := copyFixture(t)
	seg := segments(t, dir)[0]
	data, _ := os.ReadFile(seg)
	// The version follows the 8-byte magic and the header's CRC32C of
	// bytes 0-79 is at offset 80 (docs/wal-format.md): a newer version
	// with an intact checksum.
	data[8] = 0x7f
	binary.LittleEndian.PutUint32(data[80:], crc32.Checksum(data[:80], crc32.MakeTable(crc32.Castagnoli)))
	os.WriteFile(seg, data, 0o644)
	r := run(t, "", "replay", "--wal", dir)
	if r.code != 2 || !strings.Contains(r.stderr, "upgrade") {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
}

func TestFilterErrors(t *testing.T) {
	r := run(t, "", "replay", "--wal", "wal", "--filter", "level >= && x")
	if r.code != 2 || !strings.Contains(r.stderr, "column") {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	r = run(t, "", "replay", "--wal", "wal", "--from", "yesterday")
	if r.code != 2 || !strings.Contains(r.stderr, "RFC 3339") {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
}

func TestProofRoundTrip(t *testing.T) {
	tmp := t.TempDir()
	incl := filepath.Join(tmp, "incl.json")
	cons := filepath.Join(tmp, "cons.json")
	if r := run(t, "", "prove", "inclusion", "--wal", "wal", "--seq", "33", "--output", incl); r.code != 0 {
		t.Fatalf("prove inclusion: %d %s", r.code, r.stderr)
	}
	if r := run(t, "", "prove", "consistency", "--wal", "wal", "--from", "16", "--to", "43", "--output", cons); r.code != 0 {
		t.Fatalf("prove consistency: %d %s", r.code, r.stderr)
	}
	for _, f := range []string{incl, cons} {
		if r := run(t, "", "verify-proof", f, "--key", "test.pub"); r.code != 0 || !strings.HasPrefix(r.stdout, "VERIFIED") {
			t.Fatalf("verify-proof %s: %d %s %s", f, r.code, r.stdout, r.stderr)
		}
	}
	// Existing output is refused without --force.
	if r := run(t, "", "prove", "inclusion", "--wal", "wal", "--seq", "33", "--output", incl); r.code != 2 || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("existing output: %d %s", r.code, r.stderr)
	}
	// A tampered proof fails with status 1; another key's signature too.
	data, _ := os.ReadFile(incl)
	bad := filepath.Join(tmp, "bad.json")
	os.WriteFile(bad, bytes.Replace(data, []byte(`"index": 32`), []byte(`"index": 31`), 1), 0o644)
	if r := run(t, "", "verify-proof", bad, "--key", "test.pub"); r.code != 1 {
		t.Fatalf("tampered proof: %d %s", r.code, r.stdout)
	}
	_, other, _ := integrity.GenerateKey(keyName)
	if r := run(t, "", "verify-proof", incl, "--key", other); r.code != 1 {
		t.Fatalf("other key: %d %s", r.code, r.stdout)
	}
	if r := run(t, "", "prove", "inclusion", "--wal", "wal", "--seq", "999"); r.code != 2 {
		t.Fatalf("seq beyond the log: %d %s", r.code, r.stderr)
	}
}

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	r := run(t, "", "keys", "generate", "--name", "example.com/audit", "--dir", dir)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "example.com/audit+") {
		t.Fatalf("generate: %d %s %s", r.code, r.stdout, r.stderr)
	}
	st, err := os.Stat(filepath.Join(dir, "example.com_audit.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v", st, err)
	}
	pubData, _ := os.ReadFile(filepath.Join(dir, "example.com_audit.pub"))
	if strings.TrimSpace(string(pubData)) != strings.TrimSpace(r.stdout) {
		t.Fatal("printed public key differs from the .pub file")
	}
	if r := run(t, "", "keys", "generate", "--name", "example.com/audit", "--dir", dir); r.code != 2 {
		t.Fatalf("overwrite without --force: %d", r.code)
	}
	r = run(t, "", "keys", "show", "--key", filepath.Join(dir, "example.com_audit.key"))
	if r.code != 0 || !strings.Contains(r.stdout, strings.TrimSpace(string(pubData))) {
		t.Fatalf("show: %d %s", r.code, r.stdout)
	}
	if r := run(t, "", "keys", "show", "--key", "wal/checkpoints"); r.code != 2 {
		t.Fatalf("show a non-key: %d %s", r.code, r.stdout)
	}
	// --public prints what the .pub file holds, byte for byte.
	r = run(t, "", "keys", "show", "--key", filepath.Join(dir, "example.com_audit.key"), "--public")
	if r.code != 0 || r.stdout != string(pubData) {
		t.Fatalf("show --public: %d %q, want the .pub file's %q", r.code, r.stdout, pubData)
	}
	if r := run(t, "", "keys", "show", "--key", filepath.Join(dir, "example.com_audit.key"), "--public", "--json"); r.code != 2 {
		t.Fatalf("show --public --json: exit %d, want 2", r.code)
	}
}

func TestVersionAndCompletion(t *testing.T) {
	r := run(t, "", "version")
	if r.code != 0 || !strings.Contains(r.stdout, "github.com/willibrandon/mtlog-audit") || !strings.Contains(r.stdout, runtime.Version()) {
		t.Fatalf("version: %d %s", r.code, r.stdout)
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := run(t, "", "completion", sh)
		if r.code != 0 || !strings.Contains(r.stdout, "mtlog-audit") {
			t.Fatalf("completion %s: %d %s", sh, r.code, r.stderr)
		}
	}
	for _, c := range []string{"verify", "replay", "export", "recover", "prove", "verify-proof", "keys", "checkpoint"} {
		r := run(t, "", c, "--help")
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
			t.Fatalf("%s --help: %d", c, r.code)
		}
	}
	r = run(t, "", "verify", "--help")
	for _, s := range []string{"0  verified", "1  tampered", "2  usage", "3  verified, but"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("verify --help lacks exit status %q", s)
		}
	}
}

// TestProgress: a bar is drawn on stderr only when asked for (or on a
// terminal), never on stdout, and JSON on stdout stays clean.
func TestProgress(t *testing.T) {
	r := run(t, "", "verify", "--wal", "wal", "--key", "test.pub", "--json", "--progress", "always")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "{") || strings.Contains(r.stdout, "verify") && strings.Contains(r.stdout, "%") {
		t.Fatalf("stdout not clean JSON: %s", r.stdout)
	}
	if !strings.Contains(r.stderr, "verify") {
		t.Fatalf("no progress on stderr with --progress always: %q", r.stderr)
	}
	r = run(t, "", "verify", "--wal", "wal", "--key", "test.pub", "--json")
	if r.stderr != "" {
		t.Fatalf("progress drawn although stderr is not a terminal: %q", r.stderr)
	}
	r = run(t, "", "verify", "--wal", "wal", "--key", "test.pub", "--progress", "always", "--quiet")
	if r.stderr != "" {
		t.Fatalf("--quiet still drew: %q", r.stderr)
	}
}

// The fixture must never be modified by any command.
func TestFixtureUnchanged(t *testing.T) {
	before := snapshot(t, filepath.Join(fixtureDir, "wal"))
	run(t, "", "verify", "--wal", "wal", "--key", "test.pub")
	run(t, "", "replay", "--wal", "wal")
	run(t, "", "prove", "inclusion", "--wal", "wal", "--seq", "1")
	if after := snapshot(t, filepath.Join(fixtureDir, "wal")); after != before {
		t.Fatal("a read-only command modified the fixture")
	}
}

// snapshot describes every file of dir (content and mtime), except the
// advisory LOCK file, which taking a lock creates.
func snapshot(t *testing.T, dir string) string {
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == wal.LockName {
			return err
		}
		data, _ := os.ReadFile(p)
		info, _ := d.Info()
		fmt.Fprintf(&b, "%s %d %x %v\n", p, len(data), data, info.ModTime())
		return nil
	})
	return b.String()
}

// TestExport writes each format from a real process and reads it back:
// Parquet with parquet-go and CSV with encoding/csv, field by field.
// (The field-by-field comparison of every value kind is in internal/export;
// here the command's plumbing is checked: filter, range, counts, refusal of
// an existing file.)
func TestExportCommand(t *testing.T) {
	tmp := t.TempDir()
	for _, f := range []string{"jsonl", "csv", "parquet"} {
		out := filepath.Join(tmp, "all."+f)
		r := run(t, "", "export", "--wal", "wal", "--format", f, "--output", out)
		if r.code != 0 || !strings.Contains(r.stderr, "exported 40 events") {
			t.Fatalf("export %s: %d %s", f, r.code, r.stderr)
		}
		if r := run(t, "", "export", "--wal", "wal", "--format", f, "--output", out); r.code != 2 || !strings.Contains(r.stderr, "--force") {
			t.Fatalf("export %s over an existing file: %d %s", f, r.code, r.stderr)
		}
		if r := run(t, "", "export", "--wal", "wal", "--format", f, "--output", out, "--force", "--filter", "level == Error"); r.code != 0 || !strings.Contains(r.stderr, "exported 4 events") {
			t.Fatalf("export %s --force --filter: %d %s", f, r.code, r.stderr)
		}
	}
	// The Parquet file written by the process, read back with parquet-go,
	// agrees with replay's JSON field by field.
	type row struct {
		Seq       uint64     `parquet:"seq"`
		Time      *time.Time `parquet:"time,optional,timestamp(nanosecond:utc)"`
		Level     string     `parquet:"level"`
		Template  string     `parquet:"template"`
		Message   string     `parquet:"message"`
		Props     *string    `parquet:"properties,optional"`
		Exception *string    `parquet:"exception,optional"`
	}
	pq, _ := os.ReadFile(filepath.Join(tmp, "all.parquet"))
	rows, err := parquet.Read[row](bytes.NewReader(pq), int64(len(pq)))
	if err != nil || len(rows) != 4 {
		t.Fatalf("parquet read back: %d rows, %v", len(rows), err)
	}
	var fromJSON []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(run(t, "", "replay", "--wal", "wal", "--json", "--filter", "level == Error").stdout), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		fromJSON = append(fromJSON, m)
	}
	for i, r := range rows {
		j := fromJSON[i]
		props, _ := json.Marshal(j["properties"])
		if float64(r.Seq) != j["seq"] || r.Time.Format("2006-01-02T15:04:05.000000000Z07:00") != j["time"] || r.Level != j["level"] ||
			r.Template != j["template"] || r.Message != j["message"] || r.Props == nil || *r.Props != string(props) ||
			r.Exception == nil || *r.Exception != j["exception"] {
			t.Fatalf("parquet row %d = %+v, replay JSON %v", i, r, j)
		}
	}
	data, _ := os.ReadFile(filepath.Join(tmp, "all.jsonl"))
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	want := run(t, "", "replay", "--wal", "wal", "--json", "--filter", "level == Error").stdout
	if strings.Join(lines, "\n")+"\n" != want {
		t.Fatalf("export jsonl differs from replay --output json:\n%s\n---\n%s", data, want)
	}
	if r := run(t, "", "export", "--wal", "wal", "--format", "xml", "--output", filepath.Join(tmp, "x")); r.code != 2 {
		t.Fatalf("unknown format: %d", r.code)
	}
}

// TestRecover damages a copy of the fixture in its middle segment and
// recovers it from a real process: aggressive salvages every event outside
// the damage, safe stops at it, the input is never modified, and a
// non-empty output is refused.
func TestRecover(t *testing.T) {
	dir := copyFixture(t)
	seg := segments(t, dir)[1]
	data, _ := os.ReadFile(seg)
	for i := 2048; i < 2048+512; i++ {
		data[i] = 0
	}
	os.WriteFile(seg, data, 0o644)
	before := snapshot(t, dir)
	all := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(run(t, "", "replay", "--wal", "wal", "--json").stdout), "\n") {
		var m map[string]any
		json.Unmarshal([]byte(l), &m)
		delete(m, "seq")
		b, _ := json.Marshal(m)
		all[string(b)] = true
	}

	out := filepath.Join(t.TempDir(), "aggressive")
	r := run(t, "", "recover", "--input", dir, "--output", out, "--mode", "aggressive", "--json")
	if r.code != 1 {
		t.Fatalf("aggressive recover of a damaged log: exit %d, want 1 (records lost)\n%s%s", r.code, r.stdout, r.stderr)
	}
	var rep struct {
		EventsWritten uint64 `json:"events_written"`
		Salvage       struct {
			Gaps []map[string]any `json:"gaps"`
		} `json:"salvage"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || len(rep.Salvage.Gaps) == 0 {
		t.Fatalf("JSON report: %v\n%s", err, r.stdout)
	}
	got := run(t, "", "replay", "--wal", out, "--json").stdout
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if uint64(len(lines)) != rep.EventsWritten || len(lines) >= 40 || len(lines) < 30 {
		t.Fatalf("recovered %d events (report says %d) of 40", len(lines), rep.EventsWritten)
	}
	for _, l := range lines {
		var m map[string]any
		json.Unmarshal([]byte(l), &m)
		delete(m, "seq")
		b, _ := json.Marshal(m)
		if !all[string(b)] {
			t.Fatalf("recovered an event that was not in the original: %s", l)
		}
	}
	if v := run(t, "", "verify", "--wal", out); v.code != 3 {
		t.Fatalf("verify the recovered log: %d %s", v.code, v.stdout)
	}

	safe := filepath.Join(t.TempDir(), "safe")
	r = run(t, "", "recover", "--input", dir, "--output", safe)
	if r.code != 1 || !strings.Contains(r.stdout, "safe") {
		t.Fatalf("safe recover: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	n := len(strings.Split(strings.TrimSpace(run(t, "", "replay", "--wal", safe).stdout), "\n"))
	if n >= len(lines) {
		t.Fatalf("safe mode kept %d events, aggressive %d: safe must stop at the damage", n, len(lines))
	}
	if snapshot(t, dir) != before {
		t.Fatal("recover modified its input")
	}
	if r := run(t, "", "recover", "--input", dir, "--output", out); r.code != 2 || !strings.Contains(r.stderr, "not empty") {
		t.Fatalf("non-empty output: %d %s", r.code, r.stderr)
	}
	if r := run(t, "", "recover", "--input", "wal", "--output", t.TempDir()+"/x", "--mode", "bogus"); r.code != 2 {
		t.Fatalf("bad mode: %d", r.code)
	}
	// An undamaged log recovers completely: exit 0.
	if r := run(t, "", "recover", "--input", "wal", "--output", filepath.Join(t.TempDir(), "clean")); r.code != 0 {
		t.Fatalf("clean recover: %d %s %s", r.code, r.stdout, r.stderr)
	}
}

func TestBench(t *testing.T) {
	r := run(t, t.TempDir(), "bench", "--duration", "300ms", "--concurrency", "4", "--json")
	var res map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &res) != nil {
		t.Fatalf("bench: %d %s %s", r.code, r.stdout, r.stderr)
	}
	for _, k := range []string{"events_per_second", "p50_ms", "p99_ms", "p999_ms", "fdatasync_p99_ms", "run_fdatasync_p99_ms", "run_fdatasyncs"} {
		if v, ok := res[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v", k, res[k])
		}
	}
	if res["dir_removed"] != true {
		t.Errorf("temporary directory not removed: %v", res["dir"])
	}
	if r := run(t, "", "bench", "--concurrency", "0"); r.code != 2 {
		t.Fatalf("bad concurrency: %d", r.code)
	}
}

// Every command's --help carries examples.
func TestHelpHasExamples(t *testing.T) {
	for _, c := range [][]string{{"verify"}, {"replay"}, {"export"}, {"recover"}, {"prove"}, {"prove", "inclusion"},
		{"prove", "consistency"}, {"verify-proof"}, {"keys"}, {"keys", "generate"}, {"keys", "show"}, {"checkpoint"}, {"bench"}, {"version"}} {
		r := run(t, "", append(c, "--help")...)
		if r.code != 0 || !strings.Contains(r.stdout, "Examples:") {
			t.Errorf("%v --help has no examples", c)
		}
	}
}

// recover --mirror repairs a damaged copy from a mirror into a new
// directory: the same log, verifying with the key, neither copy touched.
func TestRecoverFromMirror(t *testing.T) {
	in, mirror := copyFixture(t), copyFixture(t)
	seg := segments(t, in)[1]
	data, _ := os.ReadFile(seg)
	data[3000] ^= 0x40
	os.WriteFile(seg, data, 0o644)
	before, mbefore := snapshot(t, in), snapshot(t, mirror)
	out := filepath.Join(t.TempDir(), "repaired")
	r := run(t, "", "recover", "--input", in, "--mirror", mirror, "--output", out, "--key", pub(t))
	if r.code != 0 || !strings.Contains(r.stdout, "Repaired") {
		t.Fatalf("recover --mirror: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if v := run(t, "", "verify", "--wal", out, "--key", pub(t)); v.code != 0 {
		t.Fatalf("repaired log: verify exit %d\n%s", v.code, v.stdout)
	}
	if got, want := run(t, "", "replay", "--wal", out, "--json").stdout, run(t, "", "replay", "--wal", "wal", "--json").stdout; got != want {
		t.Fatal("the repaired log's events differ from the original's")
	}
	if snapshot(t, in) != before || snapshot(t, mirror) != mbefore {
		t.Fatal("recover --mirror modified its input or the mirror")
	}
	// The same damage in both copies cannot be repaired: status 1, nothing written.
	os.WriteFile(segments(t, mirror)[1], data, 0o644)
	out2 := filepath.Join(t.TempDir(), "repaired2")
	if r := run(t, "", "recover", "--input", in, "--mirror", mirror, "--output", out2); r.code != 1 || !strings.Contains(r.stderr, "corrupt") {
		t.Fatalf("same damage in both: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(out2); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("output written although repair failed: %v", err)
	}
}

func TestTortureCommand(t *testing.T) {
	dir := t.TempDir()
	js := filepath.Join(dir, "t.json")
	html := filepath.Join(dir, "t.html")
	r := run(t, dir, "torture", "--scenarios", "PowerLoss,Kill9DuringWrite", "--iterations", "3", "--seed", "7", "--json", js, "--report", html)
	if r.code != 0 || !strings.Contains(r.stdout, "PASSED") || !strings.Contains(r.stdout, "Kill9DuringWrite") {
		t.Fatalf("torture: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var sum struct {
		Seed      int64 `json:"seed"`
		Scenarios []struct {
			Name       string `json:"name"`
			Iterations int    `json:"iterations"`
			Passes     int    `json:"passes"`
		} `json:"scenarios"`
	}
	data, _ := os.ReadFile(js)
	if err := json.Unmarshal(data, &sum); err != nil || sum.Seed != 7 || len(sum.Scenarios) != 2 {
		t.Fatalf("JSON summary: %v %s", err, data)
	}
	for _, s := range sum.Scenarios {
		if s.Iterations != 3 || s.Passes != 3 {
			t.Fatalf("scenario %+v", s)
		}
	}
	if h, _ := os.ReadFile(html); !bytes.Contains(h, []byte("<svg")) {
		t.Fatal("HTML report has no chart")
	}
	if r := run(t, dir, "torture", "--scenarios", "Nope"); r.code != 2 || !strings.Contains(r.stderr, "PowerLoss") {
		t.Fatalf("unknown scenario: %d %s", r.code, r.stderr)
	}
}
