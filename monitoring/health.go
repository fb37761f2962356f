package monitoring

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HandlerOptions configure Handler. The zero value means the defaults.
type HandlerOptions struct {
	// Gatherer serves /metrics. Nil: /metrics answers 404 with a JSON body
	// that says to pass one (audit.HealthHandler passes the registerer
	// given to audit.WithMetrics when it is also a Gatherer, such as a
	// *prometheus.Registry).
	Gatherer prometheus.Gatherer
	// MinDiskFree is the free-space ratio of the log's filesystem below
	// which /readyz fails. Default 0.05 (5 %); negative: not checked.
	MinDiskFree float64
	// MaxCommitWait is how long writes may wait without any group commit
	// before /readyz fails (a hung fdatasync). Default 10s.
	MaxCommitWait time.Duration
}

// Defaults of HandlerOptions.
const (
	DefaultMinDiskFree   = 0.05
	DefaultMaxCommitWait = 10 * time.Second
)

// Check is one health check's outcome in a /healthz or /readyz body.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Report is the JSON body of /healthz and /readyz: the verdict ("ok" or
// "fail"), the sink's state, and every check with the reason for its
// outcome.
type Report struct {
	Status string  `json:"status"`
	State  State   `json:"state"`
	Checks []Check `json:"checks"`
}

// Handler serves, for the sink src:
//
//   - /metrics: the Prometheus exposition of opts.Gatherer;
//   - /healthz: 200 while the sink is alive, 503 once it is closed or its
//     log is in its failed state (neither recovers without opening the log
//     again, so a liveness probe that restarts the process is the remedy);
//   - /readyz: 200 when the sink can take audit events now: it is open and
//     not failed, free space is at least MinDiskFree, no write has waited
//     longer than MaxCommitWait for a group commit, and, when a shipper
//     reports backends, they have quorum; 503 otherwise.
//
// The health endpoints answer with a Report as JSON, whatever the status.
// Other paths get 404. The handler only reads: it never writes to the log.
func Handler(src Source, opts HandlerOptions) http.Handler {
	if opts.MinDiskFree == 0 {
		opts.MinDiskFree = DefaultMinDiskFree
	}
	if opts.MaxCommitWait <= 0 {
		opts.MaxCommitWait = DefaultMaxCommitWait
	}
	mux := http.NewServeMux()
	if opts.Gatherer != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	} else {
		mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no metrics: open the sink with audit.WithMetrics(reg), with reg a *prometheus.Registry (or pass HandlerOptions.Gatherer)"})
		})
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { serve(w, Live(src.Status())) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { serve(w, Ready(src.Status(), opts)) })
	return mux
}

// Live is the /healthz report of st.
func Live(st Status) Report {
	return report(st, []Check{stateCheck(st)})
}

// Ready is the /readyz report of st under opts (zero fields: defaults).
func Ready(st Status, opts HandlerOptions) Report {
	if opts.MinDiskFree == 0 {
		opts.MinDiskFree = DefaultMinDiskFree
	}
	if opts.MaxCommitWait <= 0 {
		opts.MaxCommitWait = DefaultMaxCommitWait
	}
	checks := []Check{stateCheck(st)}
	disk := Check{Name: "disk_free", OK: true}
	switch {
	case opts.MinDiskFree < 0:
		disk.Detail = "not checked (MinDiskFree < 0)"
	case st.DiskErr != nil:
		disk.Detail = fmt.Sprintf("unknown: %v", st.DiskErr)
	case st.DiskFree < opts.MinDiskFree:
		disk.OK = false
		disk.Detail = fmt.Sprintf("%.1f %% free on the log's filesystem, below the %.1f %% threshold: free space or grow the volume before writes fail", 100*st.DiskFree, 100*opts.MinDiskFree)
	default:
		disk.Detail = fmt.Sprintf("%.1f %% free (threshold %.1f %%)", 100*st.DiskFree, 100*opts.MinDiskFree)
	}
	checks = append(checks, disk)
	commit := Check{Name: "commit", OK: true}
	switch wait := st.Now.Sub(st.LastCommit); {
	case !st.Tracked:
		commit.Detail = "not tracked (the sink was opened without WithMetrics)"
	case st.InFlight > 0 && wait > opts.MaxCommitWait:
		commit.OK = false
		commit.Detail = fmt.Sprintf("%d writes waiting and no group commit for %v (limit %v): the disk's fdatasync may hang", st.InFlight, wait.Round(time.Millisecond), opts.MaxCommitWait)
	default:
		commit.Detail = fmt.Sprintf("%d writes in flight; last group commit %v ago", st.InFlight, wait.Round(time.Millisecond))
	}
	checks = append(checks, commit)
	if st.HasQuorum {
		q := Check{Name: "backend_quorum", OK: st.Quorum, Detail: "the backends have quorum"}
		if !st.Quorum {
			q.Detail = "too few backends are up for the shipper's quorum"
		}
		checks = append(checks, q)
	}
	return report(st, checks)
}

func stateCheck(st Status) Check {
	c := Check{Name: "state", OK: st.State == StateOK, Detail: "the log is open and takes writes"}
	switch st.State {
	case StateClosed:
		c.Detail = "the sink is closed"
	case StateFailed:
		c.Detail = fmt.Sprintf("the log is in its failed state and Emit blocks until the log is opened again: %v", st.Cause)
	case StateFailOpen:
		c.Detail = fmt.Sprintf("the log is in its failed state and events are dropped (fail-open) until the log is opened again: %v", st.Cause)
	}
	return c
}

func report(st Status, checks []Check) Report {
	r := Report{Status: "ok", State: st.State, Checks: checks}
	for _, c := range checks {
		if !c.OK {
			r.Status = "fail"
		}
	}
	return r
}

func serve(w http.ResponseWriter, r Report) {
	code := http.StatusOK
	if r.Status != "ok" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, r)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
