package monitor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// servePages serves the given files, one per request, the last one again
// after the others.
func servePages(t *testing.T, files ...string) *httptest.Server {
	t.Helper()
	var pages [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, b)
	}
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		i := min(int(n.Add(1))-1, len(pages)-1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Write(pages[i])
	}))
	t.Cleanup(srv.Close)
	return srv
}

func near(p *float64, want float64) bool { return p != nil && math.Abs(*p-want) < 1e-9 }

func alertNames(m *MetricsStatus) string {
	var names []string
	for _, a := range m.Alerts {
		names = append(names, a.Name)
	}
	return strings.Join(names, ",")
}

// TestScrape (issue 20): two scrapes of a /metrics page in the Prometheus
// text format (the metric names of docs/monitoring.md), 10 s apart, give
// the sink's state, writes/s, ack p50/p99 and fsync p99 over the writes
// between them, the gauges, mirrors, backends, and the alerts that hold.
func TestScrape(t *testing.T) {
	srv := servePages(t, "testdata/metrics-1.prom", "testdata/metrics-2.prom")
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	s := NewScraper(srv.URL+"/metrics", nil, func() time.Time { return now })
	snap, err := s.Scrape(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	m := snap.Metrics
	switch {
	case snap.Status != StatusOK || m.State != "ok" || m.WritesPerSecond != nil:
		t.Errorf("first scrape: status %q state %q rate %v", snap.Status, m.State, m.WritesPerSecond)
	case !near(m.AckP50Seconds, 0.00175) || !near(m.AckP99Seconds, 0.002485):
		t.Errorf("first scrape: ack p50 %v p99 %v", *m.AckP50Seconds, *m.AckP99Seconds)
	case alertNames(m) != "":
		t.Errorf("first scrape: alerts %v", m.Alerts)
	}
	now = now.Add(10 * time.Second)
	snap, err = s.Scrape(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	m = snap.Metrics
	switch {
	case snap.Status != StatusWarning || m.State != "fail_open":
		t.Errorf("status %q state %q", snap.Status, m.State)
	case !near(m.WritesPerSecond, 50):
		t.Errorf("writes/s %v", m.WritesPerSecond)
	case !near(m.AckP50Seconds, 0.001) || !near(m.AckP99Seconds, 0.0025):
		t.Errorf("ack p50 %v p99 %v (the writes since the last scrape)", *m.AckP50Seconds, *m.AckP99Seconds)
	case !near(m.FsyncP99Seconds, 0.1):
		t.Errorf("fsync p99 %v (in the +Inf bucket: the highest finite bound)", *m.FsyncP99Seconds)
	case m.Writes["error"] != 2 || m.Writes["unwritable"] != 1 || m.Dropped["failed"] != 3:
		t.Errorf("writes %v dropped %v", m.Writes, m.Dropped)
	case !near(m.IntegrityScore, 100) || !near(m.WALSizeBytes, 1<<20) || !near(m.Segments, 4) || !near(m.CheckpointAgeSeconds, 12.5) || !near(m.DiskFreeRatio, 0.5) || !near(m.RecoverySuccessRate, 1):
		t.Errorf("gauges %+v", m)
	case fmt.Sprint(m.Mirrors) != "[{/mnt/a true} {/mnt/b false}]":
		t.Errorf("mirrors %v", m.Mirrors)
	case len(m.Backends) != 1 || !m.Backends[0].Up || !near(m.Backends[0].LagSegments, 2) || !near(m.Backends[0].LagBytes, 65536) || m.Quorum == nil || !*m.Quorum:
		t.Errorf("backends %+v quorum %v", m.Backends, m.Quorum)
	}
	if got, want := alertNames(m), "AuditSinkFailOpen,AuditEventsDropped,AuditFsyncSlow,AuditMirrorLost"; got != want {
		t.Errorf("alerts %s, want %s", got, want)
	}
	text := Text(snap, 0)
	for _, want := range []string{"status:      WARNING  sink fail_open", "writes:      50.0/s ok", "ack:         p50 1ms, p99 2.5ms", "fsync:       p99 100ms", "mirrors:     /mnt/a up, /mnt/b DOWN", "backends:    s3 up lag 2 segments, 64.0 KiB; quorum yes", "! AuditEventsDropped: 3 event(s) dropped"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
}

// TestScrapeBadEndpoint (issue 20): a refused connection, an HTTP error, a
// page that is not the text format, and metrics without mtlog_audit_ each
// give an error saying what to do and a snapshot with StatusError; none
// panics.
func TestScrapeBadEndpoint(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String() + "/metrics"
	l.Close()
	page := func(status int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(status)
			fmt.Fprint(w, body)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	for _, tc := range []struct {
		url  string
		is   error
		want string
	}{
		{refused, ErrUnreachable, "connection refused"},
		{page(500, "oops"), ErrUnreachable, "500 Internal Server Error"},
		{page(200, "<html>\n<title>hello</title>\n</html>\n"), ErrNotMetrics, "did not answer in the Prometheus text format"},
		{page(200, "\x00\x01\x02garbage{{{"), ErrNotMetrics, "did not answer in the Prometheus text format"},
		{page(200, ""), ErrNotMetrics, "none named mtlog_audit_"},
		{page(200, "process_open_fds 9\n"), ErrNotMetrics, "none named mtlog_audit_"},
	} {
		snap, err := NewScraper(tc.url, nil, nil).Scrape(context.Background())
		if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %v with %q", tc.url, err, tc.is, tc.want)
		}
		if snap.Status != StatusError || len(snap.Problems) != 1 || snap.Metrics != nil {
			t.Errorf("%s: snapshot %+v", tc.url, snap)
		}
		if text := Text(snap, 80); !strings.Contains(text, "status:      ERROR") || !strings.Contains(text, "! ") {
			t.Errorf("%s: text\n%s", tc.url, text)
		}
	}
}

// TestQuantile checks the histogram_quantile estimate on known buckets.
func TestQuantile(t *testing.T) {
	inf := math.Inf(1)
	bs := []bucket{{0.001, 10}, {0.01, 90}, {0.1, 100}, {inf, 100}}
	for _, tc := range []struct{ q, want float64 }{{0.05, 0.0005}, {0.5, 0.001 + 0.009*0.5}, {0.95, 0.01 + 0.09*0.5}, {1, 0.1}} {
		if got := quantile(tc.q, bs); !near(got, tc.want) {
			t.Errorf("q%g = %v, want %g", tc.q, *got, tc.want)
		}
	}
	if got := quantile(0.99, []bucket{{0.1, 1}, {inf, 100}}); !near(got, 0.1) {
		t.Errorf("in +Inf: %v", *got)
	}
	if got := quantile(0.5, []bucket{{0.1, 0}, {inf, 0}}); got != nil {
		t.Errorf("no observations: %v", *got)
	}
}
