package cli_test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/testutil"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// monitorSnap is the part of 'monitor --once --json' the tests read.
type monitorSnap struct {
	Source   string   `json:"source"`
	Status   string   `json:"status"`
	Problems []string `json:"problems"`
	WAL      *struct {
		Live       bool              `json:"live"`
		Records    uint64            `json:"records"`
		Events     uint64            `json:"events"`
		LastSeq    uint64            `json:"last_seq"`
		Levels     map[string]uint64 `json:"levels"`
		Segments   int               `json:"segments"`
		Checkpoint *struct {
			TreeSize     uint64   `json:"tree_size"`
			SignerKeyIDs []string `json:"signer_key_ids"`
		} `json:"checkpoint"`
		Verification struct {
			State              string `json:"state"`
			CheckpointsMatched int    `json:"checkpoints_matched"`
			Covered            uint64 `json:"covered"`
		} `json:"verification"`
		Disk *struct {
			FreeRatio float64 `json:"free_ratio"`
		} `json:"disk"`
	} `json:"wal"`
}

func parseMonitor(t *testing.T, out string) monitorSnap {
	t.Helper()
	var s monitorSnap
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("monitor --json: %v\n%s", err, out)
	}
	return s
}

// TestMonitorOnce (issue 20): monitor --once --json on the fixture reads
// every record, the level mix, the segments, the newest checkpoint and its
// signer, checks every stored checkpoint's root against the records, and
// reports the free disk; the text form says the same.
func TestMonitorOnce(t *testing.T) {
	dir := copyFixture(t)
	r := run(t, "", "monitor", "--wal", dir, "--once", "--json", "--interval", "10ms")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	goldenJSON(t, "monitor.json", r.stdout, true)
	s := parseMonitor(t, r.stdout)
	w := s.WAL
	switch {
	case s.Source != "wal" || s.Status != "ok" || len(s.Problems) > 0:
		t.Errorf("source %q status %q problems %q", s.Source, s.Status, s.Problems)
	case w.Records != 43 || w.Events != 40 || w.LastSeq != 43 || w.Segments != 3:
		t.Errorf("records %d events %d last %d segments %d", w.Records, w.Events, w.LastSeq, w.Segments)
	case w.Levels["information"] != 30 || w.Levels["warning"] != 6 || w.Levels["error"] != 4:
		t.Errorf("levels %v", w.Levels)
	case w.Checkpoint == nil || w.Checkpoint.TreeSize != 43 || len(w.Checkpoint.SignerKeyIDs) != 1 || !strings.HasPrefix(w.Checkpoint.SignerKeyIDs[0], keyName+"+"):
		t.Errorf("checkpoint %+v", w.Checkpoint)
	case w.Verification.State != "ok" || w.Verification.CheckpointsMatched != 6 || w.Verification.Covered != 43:
		t.Errorf("verification %+v", w.Verification)
	case w.Disk == nil || w.Disk.FreeRatio <= 0 || w.Disk.FreeRatio > 1:
		t.Errorf("disk %+v", w.Disk)
	}
	r = run(t, "", "monitor", "--wal", dir, "--once", "--interval", "10ms")
	for _, want := range []string{"status:      OK", "records:     43 read, last seq 43, 40 events", "information 30 (75%)", "signed by: " + keyName, "6 checkpoint(s) match the records", "disk:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("text output lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestMonitorBadInput (issue 20): a directory that does not exist, a file,
// a directory that is not a log, a metrics URL that refuses, that answers
// garbage, an HTTP error or metrics of another program, and flags that
// make no sense each give a clear message and a non-zero status with
// --once; without --once and without a terminal monitor says to use it.
func TestMonitorBadInput(t *testing.T) {
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "<html><body>Welcome {not metrics}</body></html>\n")
	}))
	defer garbage.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "# TYPE go_goroutines gauge\ngo_goroutines 7\n")
	}))
	defer other.Close()
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, []byte("x"), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--wal", filepath.Join(t.TempDir(), "missing"), "--once"}, 2, "does not exist: give the log's directory with --wal"},
		{[]string{"--wal", file, "--once"}, 2, "is a file, not a log directory"},
		{[]string{"--wal", notALogDir(t), "--once", "--json"}, 2, "is not an mtlog-audit log (no segment files)"},
		{[]string{"--metrics", refusedURL(t), "--once"}, 2, "connection refused: is the process running"},
		{[]string{"--metrics", garbage.URL + "/metrics", "--once", "--json"}, 2, "did not answer in the Prometheus text format"},
		{[]string{"--metrics", other.URL, "--once"}, 2, "none named mtlog_audit_*: is audit.WithMetrics set"},
		{[]string{"--metrics", notFound.URL, "--once"}, 2, "404 Not Found: give the URL of the process's /metrics handler"},
		{[]string{"--metrics", "localhost:9090", "--once"}, 2, "is not an http(s) URL"},
		{[]string{"--once"}, 2, "give --wal DIR"},
		{[]string{"--wal", "wal", "--metrics", "http://x/metrics", "--once"}, 2, "give one"},
		{[]string{"--wal", "wal", "--json"}, 2, "--json needs --once"},
		{[]string{"--wal", "wal"}, 2, "stdout is not a terminal"},
	} {
		r := run(t, "", append([]string{"monitor"}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || strings.Contains(r.stderr, "panic") {
			t.Errorf("%v: exit %d, want %d and %q\n%s", tc.args, r.code, tc.code, tc.want, r.stderr)
		}
	}
}

// refusedURL returns a URL on which nothing listens.
func refusedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/metrics"
}

// TestMonitorDamaged (issue 20): monitor --once on a damaged log prints
// the snapshot with status damaged and what to run, and exits 1.
func TestMonitorDamaged(t *testing.T) {
	dir := copyFixture(t)
	seg := segments(t, dir)[1]
	testutil.XorByte(t, vfs.OS(), seg, 1024+100, 1)
	r := run(t, "", "monitor", "--wal", dir, "--once", "--json", "--interval", "10ms")
	s := parseMonitor(t, r.stdout)
	if r.code != 1 || !strings.Contains(r.stderr, "the log is damaged: run 'mtlog-audit verify") {
		t.Errorf("exit %d\n%s", r.code, r.stderr)
	}
	if s.Status != "damaged" || s.WAL.Verification.State != "damaged" || len(s.Problems) == 0 || !strings.Contains(s.Problems[0], "LOG DAMAGED") {
		t.Errorf("status %q verification %q problems %q", s.Status, s.WAL.Verification.State, s.Problems)
	}
}

// dirState is every file of a directory: its bytes, mode and time.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		var data []byte
		if !d.IsDir() {
			if data, err = os.ReadFile(path); err != nil {
				return err
			}
		}
		out[path] = fmt.Sprintf("%v %v %x", info.Mode(), info.ModTime().UnixNano(), data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// signedSink opens a sink on a new log, signing a checkpoint every n
// records; it is closed at the end of the test.
func signedSink(t *testing.T, n int, opts ...audit.WALOption) (string, *audit.Sink) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "wal")
	skey, _, err := integrity.GenerateKey("monitor.test")
	if err != nil {
		t.Fatal(err)
	}
	s, err := audit.New(audit.WithWAL(dir, append([]audit.WALOption{audit.WithSegmentSize(16 << 10)}, opts...)...), audit.WithSigningKey(skey), audit.WithCheckpoints(n, time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return dir, s
}

// writeOn writes events to s in the background until stop is called (it
// returns when the writer has stopped); acked is the last acknowledged
// sequence number.
func writeOn(t *testing.T, s *audit.Sink) (stop func(), acked *atomic.Uint64) {
	t.Helper()
	acked = new(atomic.Uint64)
	var halt atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; !halt.Load(); i++ {
			r, err := s.Write(t.Context(), &audit.Event{Timestamp: time.Now(), Level: audit.LevelError, MessageTemplate: "live event {I}", Properties: map[string]any{"I": i, "Pad": strings.Repeat("y", 300)}})
			if err != nil {
				t.Error(err)
				return
			}
			acked.Store(r.Seq)
		}
	}()
	return func() { halt.Store(true); <-done }, acked
}

// newestCheckpoint is the tree size of the newest stored checkpoint of
// the log in dir, 0 if none.
func newestCheckpoint(t *testing.T, dir string) uint64 {
	t.Helper()
	cps, err := integrity.ReadCheckpointLog(vfs.OS(), filepath.Join(dir, integrity.CheckpointsFile))
	if err != nil || len(cps) == 0 {
		return 0
	}
	body, _, _ := strings.Cut(string(cps[len(cps)-1]), "\n\n")
	cp, err := integrity.ParseCheckpointBody(body + "\n")
	if err != nil {
		t.Fatal(err)
	}
	return cp.Size
}

// TestMonitorReadOnly (issue 20): monitor never writes to the log's
// directory. On a log a running sink holds open (idle meanwhile), every
// file is byte-identical, with the same mode and time, after a run, and no
// file is created; run while the sink writes, it reports the live log
// without a false alarm, and the directory then holds only the sink's own
// files.
func TestMonitorReadOnly(t *testing.T) {
	// No zeros filled ahead, and a checkpoint kicked at every commit: once
	// the newest checkpoint covers the last record, the sink writes
	// nothing more until it is written to.
	dir, s := signedSink(t, 1, audit.WithPrealloc(audit.PreallocOff))
	writeLive(t, s, 2, 100, 0)
	testutil.WaitFor(t, "a checkpoint of every record", func() bool { return newestCheckpoint(t, dir) == s.LastSeq() })
	before := dirState(t, dir)
	r := run(t, "", "monitor", "--wal", dir, "--once", "--json", "--interval", "10ms")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if snap := parseMonitor(t, r.stdout); !snap.WAL.Live || snap.WAL.Events != 200 || snap.Status != "ok" {
		t.Errorf("live %v events %d status %q %q", snap.WAL.Live, snap.WAL.Events, snap.Status, snap.Problems)
	}
	after := dirState(t, dir)
	for path, st := range after {
		if before[path] != st {
			t.Errorf("%s changed or was created by monitor", path)
		}
	}
	if len(after) != len(before) {
		t.Errorf("%d files before, %d after", len(before), len(after))
	}

	// Now while the sink writes.
	stop, _ := writeOn(t, s)
	for range 3 {
		r = run(t, "", "monitor", "--wal", dir, "--once", "--json", "--interval", "50ms")
		snap := parseMonitor(t, r.stdout)
		if r.code != 0 || snap.Status != "ok" || snap.WAL.Verification.State != "ok" {
			t.Errorf("while writing: exit %d status %q %q\n%s", r.code, snap.Status, snap.Problems, r.stderr)
		}
	}
	stop()
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range names {
		if !wal.Owns(e.Name()) && !integrity.Owns(e.Name()) {
			t.Errorf("%s in the log directory: not the sink's", e.Name())
		}
	}
}

// TestMonitorMetricsOnce (issue 20): monitor --metrics URL --once scrapes
// a /metrics page twice and prints the sink's state, latencies and the
// alerts that hold, as JSON or text.
func TestMonitorMetricsOnce(t *testing.T) {
	page, err := os.ReadFile("../monitor/testdata/metrics-2.prom")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(page) }))
	defer srv.Close()
	r := run(t, "", "monitor", "--metrics", srv.URL+"/metrics", "--once", "--json", "--interval", "10ms")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	goldenJSON(t, "monitor-metrics.json", r.stdout, true)
	var s struct {
		Source  string `json:"source"`
		Status  string `json:"status"`
		Metrics struct {
			State  string `json:"state"`
			Alerts []struct {
				Name string `json:"name"`
			} `json:"alerts"`
		} `json:"metrics"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatal(err)
	}
	if s.Source != "metrics" || s.Status != "warning" || s.Metrics.State != "fail_open" || len(s.Metrics.Alerts) != 3 {
		t.Errorf("%+v", s) // the same page twice: no drop since the last scrape
	}
	r = run(t, "", "monitor", "--metrics", srv.URL+"/metrics", "--once", "--interval", "10ms")
	for _, want := range []string{"sink fail_open", "! AuditSinkFailOpen", "ack:         p50 ", "mirrors:     /mnt/a up, /mnt/b DOWN"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("text lacks %q:\n%s", want, r.stdout)
		}
	}
}
