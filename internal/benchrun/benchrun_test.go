package benchrun

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/integrity"
)

func TestRunShort(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	res, err := Run(context.Background(), Config{
		Duration: 300 * time.Millisecond, Concurrency: 4, EventSize: 256, FdatasyncSamples: 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Events == 0 || res.EventsPerSecond <= 0 || res.MBPerSecond <= 0 {
		t.Fatalf("no events: %+v", res)
	}
	if !(0 < res.P50Ms && res.P50Ms <= res.P99Ms && res.P99Ms <= res.P999Ms && res.P999Ms <= res.MaxMs) {
		t.Fatalf("inconsistent percentiles: p50 %v p99 %v p99.9 %v max %v", res.P50Ms, res.P99Ms, res.P999Ms, res.MaxMs)
	}
	if res.FdatasyncP50Ms <= 0 || res.FdatasyncP50Ms > res.FdatasyncP99Ms {
		t.Fatalf("fdatasync p50 %v p99 %v", res.FdatasyncP50Ms, res.FdatasyncP99Ms)
	}
	if res.EventBytes != 256 || res.Config.Sync != SyncDurable || res.Duration < 300*time.Millisecond {
		t.Fatalf("result: %+v", res)
	}
	if !res.DirRemoved {
		t.Fatal("temporary directory not reported as removed")
	}
	if _, err := os.Stat(res.Dir); !os.IsNotExist(err) {
		t.Fatalf("temporary directory %s still there (stat: %v)", res.Dir, err)
	}
	b, err := res.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"events_per_second", "p50_ms", "p99_ms", "p999_ms", "fdatasync_p99_ms", "allocs_per_event", "events", "config"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON has no %q: %s", k, b)
		}
	}
	var text bytes.Buffer
	if err := res.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"events/s", "p99", "fdatasync", "allocs/event", "4 writers"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, text.String())
		}
	}
}

func TestRunShortInterval(t *testing.T) {
	res, err := Run(context.Background(), Config{
		Dir: t.TempDir(), Duration: 300 * time.Millisecond, Concurrency: 4, EventSize: 1000,
		Sync: SyncInterval, FdatasyncSamples: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Events == 0 || res.P50Ms > res.P99Ms || res.P99Ms > res.P999Ms {
		t.Fatalf("result: %+v", res)
	}
	if res.DirRemoved {
		t.Fatal("a given directory must be kept")
	}
	if _, err := os.Stat(res.Dir); err != nil {
		t.Fatalf("given directory: %v", err)
	}
}

func TestRunRate(t *testing.T) {
	var mu sync.Mutex
	var snaps []Snapshot
	res, err := Run(context.Background(), Config{
		Duration: time.Second, Concurrency: 4, EventSize: 256, Rate: 2000, FdatasyncSamples: 5,
		Progress: func(s Snapshot) {
			mu.Lock()
			snaps = append(snaps, s)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Events < 1000 || res.Events > 3000 {
		t.Fatalf("paced at 2000/s for 1 s: %d events", res.Events)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(snaps) < 1 {
		t.Fatal("Progress was never called")
	}
	for _, s := range snaps {
		if s.Elapsed <= 0 || s.Events > res.Events || s.EventsPerSecond < 0 {
			t.Fatalf("snapshot %+v (final %d events)", s, res.Events)
		}
	}
}

func TestRunCanceled(t *testing.T) {
	// Cancelled once some events were acknowledged (not after a fixed
	// time, which a loaded machine may spend before the first write).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := Run(ctx, Config{
		Duration: time.Minute, Concurrency: 2, EventSize: 128, Rate: 500, FdatasyncSamples: 5,
		Progress: func(s Snapshot) {
			if s.Events > 0 {
				cancel()
			}
		},
	})
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("err = %v", err)
	}
	if res == nil || res.Events == 0 {
		t.Fatalf("no partial result: %+v", res)
	}
	if res.Duration >= time.Minute {
		t.Fatalf("did not stop: %v", res.Duration)
	}
}

func TestMeasureFdatasync(t *testing.T) {
	dir := t.TempDir()
	p50, p99, err := MeasureFdatasync(context.Background(), dir, 20)
	if err != nil {
		t.Fatal(err)
	}
	if p50 <= 0 || p99 < p50 {
		t.Fatalf("p50 %v p99 %v", p50, p99)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("probe file left behind: %v", entries)
	}
	if _, _, err := MeasureFdatasync(context.Background(), dir, 0); err == nil {
		t.Fatal("n = 0 accepted")
	}
	if _, _, err := MeasureFdatasync(context.Background(), filepath.Join(dir, "missing"), 1); err == nil {
		t.Fatal("missing directory accepted")
	}
}

func TestBadConfig(t *testing.T) {
	good := Config{Duration: time.Second, Concurrency: 1, EventSize: 256}
	cases := map[string]struct {
		mod  func(*Config)
		want string
	}{
		"concurrency": {func(c *Config) { c.Concurrency = 0 }, "concurrency"},
		"size":        {func(c *Config) { c.EventSize = 63 }, "event size"},
		"sync":        {func(c *Config) { c.Sync = "sometimes" }, "sync mode"},
		"duration":    {func(c *Config) { c.Duration = 0 }, "duration"},
		"rate":        {func(c *Config) { c.Rate = -1 }, "rate"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := good
			tc.mod(&c)
			res, err := Run(context.Background(), c)
			if err == nil || !strings.Contains(err.Error(), tc.want) || res != nil {
				t.Fatalf("Run = %v, %v; want an error about %s", res, err, tc.want)
			}
		})
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := good
	c.Dir = dir
	if _, err := Run(context.Background(), c); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("non-empty Dir: %v", err)
	}
}

func TestSizedEvent(t *testing.T) {
	for _, size := range []int{64, 100, 256, 279, 4096, 70000} {
		ev, n, err := SizedEvent(size)
		if err != nil {
			t.Fatal(err)
		}
		if n != size {
			t.Errorf("SizedEvent(%d) encodes to %d bytes", size, n)
		}
		if ev.Message == "" || len(ev.Properties) == 0 {
			t.Errorf("SizedEvent(%d): %+v", size, ev)
		}
	}
	if _, _, err := SizedEvent(10); err == nil {
		t.Fatal("size 10 accepted")
	}
}

// TestRunSigned: --signed writes a signed log (checkpoints, tagged batches).
func TestRunSigned(t *testing.T) {
	dir := t.TempDir()
	res, err := Run(context.Background(), Config{
		Dir: dir, Duration: 200 * time.Millisecond, Concurrency: 4, EventSize: 300, Signed: true, FdatasyncSamples: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Events == 0 {
		t.Fatalf("result: %+v", res)
	}
	if fi, err := os.Stat(filepath.Join(res.Dir, integrity.CheckpointsFile)); err != nil || fi.Size() == 0 {
		t.Fatalf("a signed run must leave signed checkpoints: %v", err)
	}
	var text strings.Builder
	if err := res.WriteText(&text); err != nil || !strings.Contains(text.String(), "signed") {
		t.Fatalf("the text output must say the log was signed: %v\n%s", err, text.String())
	}
}
