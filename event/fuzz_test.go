package event

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzDecode checks that Decode never panics, that Validate accepts exactly
// what Decode accepts (with the same error), and that whatever it accepts
// is canonical: re-encoding the decoded event gives the same bytes, which
// decode again to an equal event. The seed corpus in
// testdata/fuzz/FuzzDecode (including a complete valid encoding) runs as
// an ordinary test.
func FuzzDecode(f *testing.F) {
	f.Add(mustEncode(f, sampleEvent()))
	f.Add(mustEncode(f, &Event{}))
	f.Add(mustEncode(f, mapHeavyEvent()))
	f.Add(withProps(tagNil))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Decode(b)
		if verr := Validate(b); (verr == nil) != (err == nil) || (err != nil && verr.Error() != err.Error()) {
			t.Fatalf("Validate and Decode disagree on %x:\n Validate: %v\n Decode:   %v", b, verr, err)
		}
		if err != nil {
			if ev != nil {
				t.Fatal("Decode returned an event and an error")
			}
			return
		}
		again, err := AppendEncode(nil, ev)
		if err != nil {
			t.Fatalf("AppendEncode(decoded): %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding is not canonical:\n in  %x\n out %x", b, again)
		}
		ev2, err := Decode(again)
		if err != nil {
			t.Fatalf("Decode(AppendEncode(decoded)): %v", err)
		}
		if !equalEvent(ev, ev2) {
			t.Fatalf("round trip changed the event:\n%#v\n%#v", ev, ev2)
		}
	})
}

// TestFuzzCorpusHasValidEncoding makes sure the committed seed corpus keeps
// at least one input that decodes, so the fuzz target exercises the
// success path when run as an ordinary test.
func TestFuzzCorpusHasValidEncoding(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecode", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no seed corpus: %v", err)
	}
	valid := 0
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		b, ok := parseCorpusFile(string(data))
		if !ok {
			t.Fatalf("%s is not a go test fuzz v1 file with one []byte", name)
		}
		if _, err := Decode(b); err == nil {
			valid++
		}
	}
	if valid == 0 {
		t.Error("the seed corpus has no valid encoding")
	}
}

// parseCorpusFile reads the single []byte value of a "go test fuzz v1"
// file written with a quoted string literal.
func parseCorpusFile(s string) ([]byte, bool) {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		return nil, false
	}
	lit, ok := strings.CutPrefix(lines[1], "[]byte(")
	if !ok || !strings.HasSuffix(lit, ")") {
		return nil, false
	}
	v, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
	return []byte(v), err == nil
}
