package peers

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestEveryTarget runs each row briefly with a few writers: it must
// acknowledge events, report ordered percentiles and leave nothing behind.
func TestEveryTarget(t *testing.T) {
	w, err := NewWorkload(256)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size != 256 || len(w.Payload) != 256 || w.Template == "" {
		t.Fatalf("workload: %+v", w)
	}
	for _, tg := range All() {
		t.Run(tg.ID, func(t *testing.T) {
			parent := t.TempDir()
			m, err := Measure(context.Background(), tg, parent, w, 4, 200*time.Millisecond, 0)
			if err != nil {
				t.Fatal(err)
			}
			if m.Events == 0 || !(m.P50Ms <= m.P99Ms && m.P99Ms <= m.P999Ms && m.P999Ms <= m.MaxMs) {
				t.Fatalf("%+v", m)
			}
			entries, err := os.ReadDir(parent)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 0 {
				t.Fatalf("left behind: %v", entries)
			}
			t.Logf("%s: %.0f events/s p99 %.2f ms allocs/event %.1f %s", tg.ID, m.EventsPerSecond, m.P99Ms, m.AllocsPerEvent, m.Note)
		})
	}
}

func TestSelect(t *testing.T) {
	ts, err := Select([]string{"audit", "reference"})
	if err != nil || len(ts) != 2 || ts[0].ID != IDReference {
		t.Fatalf("Select = %v, %v", ts, err)
	}
	if _, err := Select([]string{"nope"}); err == nil {
		t.Fatal("unknown target accepted")
	}
}
