package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/event"
)

// TestLeafWriters: JSONL and CSV with leaf hashes carry the same fields as
// without, plus leaf_hash right after seq; parquet is refused.
func TestLeafWriters(t *testing.T) {
	ev := &event.Event{Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Level: event.LevelWarning,
		MessageTemplate: "a {X}", Properties: map[string]any{"X": "y,\"z\"\n"}}
	const leaf = "Qygii+fGNHVeL7IJ9lcQ+59G6ct2v1p3ofX1h51clOM="
	plain, err := JSON(12, ev)
	if err != nil {
		t.Fatal(err)
	}
	withLeaf, err := AppendJSONLeaf([]byte("prefix"), 12, leaf, ev)
	if err != nil {
		t.Fatal(err)
	}
	withLeaf = bytes.TrimPrefix(withLeaf, []byte("prefix"))
	if want := strings.Replace(string(plain), `"seq":12,`, `"seq":12,"leaf_hash":"`+leaf+`",`, 1); string(withLeaf) != want {
		t.Errorf("AppendJSONLeaf:\n%s\nwant\n%s", withLeaf, want)
	}
	var buf bytes.Buffer
	w, err := NewLeafWriter(JSONL, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteLeaf(12, leaf, ev); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil || m["leaf_hash"] != leaf || buf.String() != string(withLeaf)+"\n" {
		t.Errorf("jsonl: %v %q", err, buf.String())
	}
	var plainCSV, leafCSV bytes.Buffer
	pw, _ := NewWriter(CSV, &plainCSV)
	pw.Write(12, ev)
	pw.Close()
	lw, err := NewLeafWriter(CSV, &leafCSV)
	if err != nil {
		t.Fatal(err)
	}
	lw.WriteLeaf(12, leaf, ev)
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	p, _ := csv.NewReader(&plainCSV).ReadAll()
	l, err := csv.NewReader(&leafCSV).ReadAll()
	if err != nil || len(l) != 2 {
		t.Fatalf("csv: %v %v", err, l)
	}
	for i := range p {
		want := append([]string{p[i][0], map[int]string{0: "leaf_hash", 1: leaf}[i]}, p[i][1:]...)
		if strings.Join(l[i], "|") != strings.Join(want, "|") {
			t.Errorf("csv row %d: %q, want %q", i, l[i], want)
		}
	}
	if _, err := NewLeafWriter(Parquet, &buf); err == nil {
		t.Error("parquet leaf writer accepted")
	}
}
