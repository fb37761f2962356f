package export

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/event"
)

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"jsonl": JSONL, "CSV": CSV, " Parquet ": Parquet} {
		got, err := ParseFormat(in)
		if err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := ParseFormat("xml")
	if err == nil || !strings.Contains(err.Error(), `"xml"`) || !strings.Contains(err.Error(), "jsonl, csv, parquet") {
		t.Errorf("ParseFormat(xml) error = %v; want one naming the input and listing jsonl, csv, parquet", err)
	}
	if _, err := NewWriter("xml", &bytes.Buffer{}); err == nil {
		t.Error("NewWriter(xml) succeeded")
	}
	if _, err := NewWriter(JSONL, nil); err == nil {
		t.Error("NewWriter with a nil io.Writer succeeded")
	}
}

func TestJSONFieldsInOrder(t *testing.T) {
	ev := roundTrip(t, &event.Event{
		Timestamp:       time.Date(2024, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 2*3600)),
		Level:           event.LevelWarning,
		MessageTemplate: "Role {Role} granted to {UserId}",
		Properties:      map[string]any{"UserId": "u-7", "Role": "admin"},
		Exception:       errors.New("denied <later>"),
	})
	got, err := JSON(17, ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"seq":17,"time":"2024-01-02T01:04:05.000000006Z","level":"Warning",` +
		`"template":"Role {Role} granted to {UserId}","message":"Role admin granted to u-7",` +
		`"properties":{"Role":"admin","UserId":"u-7"},"exception":"denied <later>"}`
	if string(got) != want {
		t.Errorf("JSON =\n%s\nwant\n%s", got, want)
	}

	// No properties (nil or empty) and no exception: both keys left out.
	for _, props := range []map[string]any{nil, {}} {
		ev := &event.Event{Level: event.Level(7), MessageTemplate: "t", Message: "m", Properties: props}
		got, err := JSON(1, ev)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"seq":1,"time":"0001-01-01T00:00:00.000000000Z","level":"Level(7)","template":"t","message":"m"}`
		if string(got) != want {
			t.Errorf("JSON(props=%v) =\n%s\nwant\n%s", props, got, want)
		}
	}

	if _, err := JSON(1, nil); err == nil {
		t.Error("JSON(nil) succeeded")
	}
	// AppendJSON appends.
	b, err := AppendJSON([]byte("x"), 1, &event.Event{})
	if err != nil || !bytes.HasPrefix(b, []byte(`x{"seq":1,`)) {
		t.Errorf("AppendJSON = %s, %v", b, err)
	}
}

func TestJSONValueKinds(t *testing.T) {
	ev := roundTrip(t, &event.Event{MessageTemplate: "x", Properties: allKinds()})
	got, err := JSON(1, ev)
	if err != nil {
		t.Fatal(err)
	}
	props := extractProperties(t, got)
	if props != allKindsJSON {
		t.Errorf("properties =\n%s\nwant\n%s", props, allKindsJSON)
	}
	// Before the round trip (a live event with the same values) the
	// output is the same.
	live, err := JSON(1, &event.Event{MessageTemplate: "x", Properties: allKinds()})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(live, got) {
		t.Errorf("live event JSON differs from replayed:\n%s\n%s", live, got)
	}
	// Exact numbers survive: decode with UseNumber and compare the text.
	dec := json.NewDecoder(bytes.NewReader(got))
	dec.UseNumber()
	var m struct {
		Properties map[string]any `json:"properties"`
	}
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("output is not valid JSON: %v\n%s", err, got)
	}
	if n := m.Properties["uintMax"].(json.Number); n != "18446744073709551615" {
		t.Errorf("uintMax = %s", n)
	}
	if n := m.Properties["raw"].(map[string]any)["n"].(json.Number); n != "12345678901234567890123" {
		t.Errorf("raw.n = %s", n)
	}
}

// extractProperties returns the text of the "properties" value of a JSON
// line (which must be followed by "exception" or the end).
func extractProperties(t *testing.T, line []byte) string {
	t.Helper()
	s := string(line)
	i := strings.Index(s, `,"properties":`)
	if i < 0 {
		t.Fatalf("no properties in %s", s)
	}
	s = s[i+len(`,"properties":`):]
	if j := strings.LastIndex(s, `,"exception":`); j >= 0 {
		return s[:j]
	}
	return strings.TrimSuffix(s, "}")
}

// namedString and point are types Decode never returns: the encoder would
// normalize them.
type namedString string

type point struct {
	X int `json:"x"`
	Y int
}

func TestJSONLiveValues(t *testing.T) {
	self := map[string]any{}
	self["self"] = self
	s := "ptr"
	cases := []struct {
		v    any
		want string
	}{
		{int(7), `7`},
		{int8(-8), `-8`},
		{uint16(9), `9`},
		{float32(0.5), `0.5`},
		{namedString("n"), `"n"`},
		{&s, `"ptr"`},
		{point{1, 2}, `{"Y":2,"x":1}`},
		{[]string{"a", "b"}, `["a","b"]`},
		{[2]int{1, 2}, `[1,2]`},
		{map[int]bool{2: true, 1: false}, `{"1":false,"2":true}`},
		{errors.New("e"), `"e"`},
		{time.Second, `"1s"`},
		{make(chan int), `{"unsupported":"chan int","reason":"cannot encode channels"}`},
		{&event.Unsupported{Type: "T", Reason: "R"}, `{"unsupported":"T","reason":"R"}`},
		{(*event.ErrorValue)(nil), `null`},
		{json.RawMessage(nil), `null`},
		{json.RawMessage("{ \"a\" : [1, 2] }"), `{"a":[1,2]}`},
		{json.RawMessage("not json"), `"not json"`},
		{[]any{int(1), map[string]any{"k": uint8(2)}}, `[1,{"k":2}]`},
		{map[string]any{"d": int16(3)}, `{"d":3}`},
	}
	for _, c := range cases {
		got := string(appendValue(nil, c.v, false))
		if got != c.want {
			t.Errorf("appendValue(%T %v) = %s; want %s", c.v, c.v, got, c.want)
		}
	}
	// A map holding itself ends, as Normalize cuts the cycle.
	got := string(appendValue(nil, self, false))
	if !strings.Contains(got, `"unsupported"`) || !json.Valid([]byte(got)) {
		t.Errorf("self-referencing map = %s", got)
	}
}

func TestJSONStringEscaping(t *testing.T) {
	cases := map[string]string{
		"plain":            `"plain"`,
		"q\"b\\":           `"q\"b\\"`,
		"\x00\x1f\x7f":     `"\u0000\u001f` + "\x7f" + `"`,
		"\n\r\t":           `"\n\r\t"`,
		"<&>":              `"<&>"`,
		"\u2028\u2029":     `"\u2028\u2029"`,
		"bad\xffend":       `"bad\ufffdend"`,
		"日本":               `"日本"`,
		"\xe6\x97":         `"\ufffd\ufffd"`,
		"emoji \U0001F600": "\"emoji \U0001F600\"",
	}
	for in, want := range cases {
		got := string(appendString(nil, in))
		if got != want {
			t.Errorf("appendString(%q) = %s; want %s", in, got, want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("appendString(%q) = %s is not valid JSON", in, got)
		}
		// Valid UTF-8 without U+2028/9 decodes back to the input.
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("unmarshal %s: %v", got, err)
		}
	}
}

func TestJSONFloatsMatchEncodingJSON(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 0.1, 1e-6, 1e-7, 123456789, 1e20, 1e21, 1.7976931348623157e308,
		5e-324, -2.5e-10, math.Pi} {
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendFloat(nil, f); string(got) != string(want) {
			t.Errorf("appendFloat(%v) = %s; encoding/json gives %s", f, got, want)
		}
	}
}

func TestJSONEveryLineValidAndDeterministic(t *testing.T) {
	for i, ev := range sampleEvents(t) {
		a, err := JSON(uint64(i), ev)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := JSON(uint64(i), ev)
		if !bytes.Equal(a, b) {
			t.Errorf("event %d: two encodings differ", i)
		}
		if !json.Valid(a) || bytes.ContainsAny(a, "\n\r") {
			t.Errorf("event %d: not one valid JSON line: %s", i, a)
		}
		var m map[string]any
		if err := json.Unmarshal(a, &m); err != nil {
			t.Fatal(err)
		}
		if want := strings.ToValidUTF8(Render(ev), "\uFFFD"); m["message"] != want {
			t.Errorf("event %d: message %q; want %q", i, m["message"], want)
		}
		if m["seq"] != float64(i) || m["level"] != ev.Level.String() {
			t.Errorf("event %d: seq %v level %v", i, m["seq"], m["level"])
		}
	}
}
