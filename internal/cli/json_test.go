package cli_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every --json output has snake_case keys and a golden file in
// testdata/golden (docs/cli-json.md documents them). Outputs with volatile
// values (times, durations, measurements, random keys) are compared as a
// schema: every value replaced by its type, every array by its first
// element.

var snakeKey = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// decodeAll decodes the JSON values of out (one, or one per line).
func decodeAll(t *testing.T, out string) []any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	var vals []any
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		vals = append(vals, v)
	}
	if len(vals) == 0 {
		t.Fatal("no JSON printed")
	}
	return vals
}

// checkSnake fails for every key that is not snake_case. The values of
// "properties" (an event's own property names) are data, not schema.
func checkSnake(t *testing.T, v any, path string) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, sub := range v {
			if !snakeKey.MatchString(k) {
				t.Errorf("key %s.%s is not snake_case", path, k)
			}
			if k != "properties" {
				checkSnake(t, sub, path+"."+k)
			}
		}
	case []any:
		for _, sub := range v {
			checkSnake(t, sub, path+"[]")
		}
	}
}

// schema replaces every value of v by its type and every array by its
// first element, keeping the keys.
func schema(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, sub := range v {
			out[k] = schema(sub)
		}
		return out
	case []any:
		if len(v) == 0 {
			return []any{}
		}
		return []any{schema(v[0])}
	case string:
		return "<string>"
	case json.Number:
		return "<number>"
	case bool:
		return "<bool>"
	}
	return v
}

// goldenJSON checks out (JSON, one value or one per line) for snake_case
// keys and compares it, or its schema, with the golden file name.
func goldenJSON(t *testing.T, name, out string, asSchema bool) {
	t.Helper()
	vals := decodeAll(t, out)
	for _, v := range vals {
		checkSnake(t, v, "")
	}
	if !asSchema {
		golden(t, name, out)
		return
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	for _, v := range vals {
		if err := enc.Encode(schema(v)); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, name, b.String())
}

// TestJSONOutputs runs every command's --json on the fixture (or on a
// scratch copy) and compares it with its golden file.
func TestJSONOutputs(t *testing.T) {
	work := t.TempDir()
	if err := os.CopyFS(filepath.Join(work, "wal"), os.DirFS(filepath.Join(fixtureDir, "wal"))); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(work, "mirror"), os.DirFS(filepath.Join(fixtureDir, "wal"))); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"test.key", "test.pub"} {
		data, err := os.ReadFile(filepath.Join(fixtureDir, k))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(work, k), data, 0o600)
	}
	seg := filepath.Join(work, "wal", "00000000000000000002.wal")
	data, _ := os.ReadFile(seg)
	data[3000] ^= 0x40
	os.WriteFile(seg, data, 0o644)
	cases := []struct {
		name   string
		args   []string
		code   int
		schema bool   // volatile values: compare the keys and types only
		before func() // setup for this step
	}{
		{"checkpoint.json", []string{"checkpoint", "--wal", "mirror", "--key", "test.pub", "--json"}, 0, false, nil},
		{"checkpoint-all.json", []string{"checkpoint", "--wal", "mirror", "--all", "--json"}, 0, false, nil},
		{"keys-show.json", []string{"keys", "show", "--key", "test.key", "--json"}, 0, false, nil},
		{"keys-generate.json", []string{"keys", "generate", "--name", "gen.example/audit", "--dir", "keys", "--json"}, 0, true, nil},
		{"recover-mirror.json", []string{"recover", "--input", "wal", "--mirror", "mirror", "--output", "repaired", "--key", "test.pub", "--json"}, 0, false, nil},
		{"prove-inclusion.json", []string{"prove", "inclusion", "--wal", "mirror", "--seq", "7", "-o", "p.json"}, 0, false, nil},
		{"verify-proof.json", []string{"verify-proof", "p.json", "--key", "test.pub", "--json"}, 0, false, nil},
		{"verify-proof-failed.json", []string{"verify-proof", "p.json", "--key", "keys/gen.example_audit.pub", "--json"}, 1, false, nil},
		{"version.json", []string{"version", "--json"}, 0, true, nil},
		{"bench.json", []string{"bench", "--duration", "100ms", "--concurrency", "2", "--json"}, 0, true, nil},
		{"torture.json", []string{"torture", "--scenarios", "PowerLoss", "--iterations", "1", "--seed", "1", "--json"}, 0, true, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.before != nil {
				c.before()
			}
			r := run(t, work, c.args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, c.code, r.stdout, r.stderr)
			}
			if c.name == "prove-inclusion.json" {
				return // a step for verify-proof; its golden is TestGolden's
			}
			goldenJSON(t, c.name, r.stdout, c.schema)
		})
	}
	// The JSON outputs TestGolden and TestGoldenWorkdir compare are
	// snake_case too.
	for _, name := range []string{"verify.json", "verify-damaged.json", "recover-safe.json", "replay.json", "prove-inclusion.json", "prove-consistency.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", "golden", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range decodeAll(t, string(data)) {
			checkSnake(t, v, name)
		}
	}
}
