// Command kubernetes is the application deploy/kubernetes and
// docker-compose.yml run: an HTTP service that writes an audit event for
// each request to POST /events, exports the sink's metrics, and serves the
// health endpoints a kubelet probes. It is configured from the environment
// and shuts down cleanly on SIGTERM (the kubelet's stop signal): it stops
// taking requests, lets the ones in flight finish, and closes the log.
//
//	AUDIT_WAL_DIR           the log's directory (default /var/audit/wal); its
//	                        parent must exist: it is the mounted volume
//	AUDIT_LISTEN            the HTTP address (default :8080)
//	AUDIT_SIGNING_KEY       a signing key (PRIVATE+KEY+...), such as from a
//	                        Secret through secretKeyRef; or
//	AUDIT_SIGNING_KEY_FILE  the file holding it (mode 0600 or stricter)
//	AUDIT_SHIP_URL          a backend to ship sealed segments and checkpoints
//	                        to (s3://…, azure://…, gs://…, file:///…)
//	AUDIT_SEGMENT_MAX_AGE   seal the open segment after this long, so it
//	                        ships (a Go duration, such as 5m)
//	AUDIT_DEMO_INTERVAL     also write a demo event this often (for a local
//	                        stack with no traffic; off by default)
//
// Run it locally from the repository root:
//
//	AUDIT_WAL_DIR=./k8s-audit/wal AUDIT_LISTEN=127.0.0.1:8080 go run ./examples/kubernetes
//	curl -X POST 'http://127.0.0.1:8080/events?actor=alice&action=login'
//	curl http://127.0.0.1:8080/readyz
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/backends/all"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	cfg, err := configFromEnv(os.Getenv)
	if err == nil {
		err = run(ctx, cfg, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubernetes example:", err)
		os.Exit(1)
	}
}

// config is what the environment sets.
type config struct {
	walDir        string
	listen        string
	signingKey    string
	signingFile   string
	shipURL       string
	segmentMaxAge time.Duration
	demoInterval  time.Duration
}

func configFromEnv(getenv func(string) string) (config, error) {
	c := config{
		walDir:      getenv("AUDIT_WAL_DIR"),
		listen:      getenv("AUDIT_LISTEN"),
		signingKey:  getenv("AUDIT_SIGNING_KEY"),
		signingFile: getenv("AUDIT_SIGNING_KEY_FILE"),
		shipURL:     getenv("AUDIT_SHIP_URL"),
	}
	if c.walDir == "" {
		c.walDir = "/var/audit/wal"
	}
	if c.listen == "" {
		c.listen = ":8080"
	}
	if c.signingKey != "" && c.signingFile != "" {
		return c, errors.New("both AUDIT_SIGNING_KEY and AUDIT_SIGNING_KEY_FILE are set: set one")
	}
	for name, d := range map[string]*time.Duration{"AUDIT_SEGMENT_MAX_AGE": &c.segmentMaxAge, "AUDIT_DEMO_INTERVAL": &c.demoInterval} {
		if v := getenv(name); v != "" {
			parsed, err := time.ParseDuration(v)
			if err != nil || parsed <= 0 {
				return c, fmt.Errorf("%s=%q: want a positive Go duration, such as 5m", name, v)
			}
			*d = parsed
		}
	}
	return c, nil
}

// openSink checks the volume and opens the log with the configured options.
func openSink(ctx context.Context, c config, reg *prometheus.Registry) (*audit.Sink, error) {
	// The log must live on the mounted volume: a log written into the
	// container's own filesystem is gone when the container is replaced,
	// so a missing mount point is an error, not something to create.
	vol := filepath.Dir(c.walDir)
	if fi, err := os.Stat(vol); err != nil {
		return nil, fmt.Errorf("the log's volume %s: %w: mount a persistent volume there, or set AUDIT_WAL_DIR to a directory on one", vol, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("the log's volume %s is not a directory: mount a persistent volume there", vol)
	}
	opts := []audit.Option{audit.WithWAL(c.walDir), audit.WithMetrics(reg)}
	switch {
	case c.signingKey != "":
		opts = append(opts, audit.WithSigningKey(c.signingKey))
	case c.signingFile != "":
		opts = append(opts, audit.WithSigningKeyFile(c.signingFile))
	}
	if c.shipURL != "" {
		b, err := all.Open(ctx, c.shipURL)
		if err != nil {
			return nil, fmt.Errorf("AUDIT_SHIP_URL: %w", err)
		}
		opts = append(opts, audit.WithShipping(1, b))
	}
	if c.segmentMaxAge > 0 {
		opts = append(opts, audit.WithSegmentMaxAge(c.segmentMaxAge))
	}
	sink, err := audit.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("opening the audit log in %s: %w%s", c.walDir, err, volumeHint(err))
	}
	return sink, nil
}

// volumeHint says what to do about the two ways a mounted volume commonly
// refuses the log.
func volumeHint(err error) string {
	switch {
	case errors.Is(err, syscall.EROFS):
		return " (the volume is mounted read-only: the log needs it read-write; drop readOnly from the volume mount)"
	case errors.Is(err, os.ErrPermission):
		return fmt.Sprintf(" (user %d cannot write there: give the volume to the container's user or group, such as with the pod's securityContext.fsGroup)", os.Geteuid())
	}
	return ""
}

// run serves until ctx ends, then shuts down: it prints the address it
// listens on first, and a summary last.
func run(ctx context.Context, c config, out io.Writer) error {
	reg := prometheus.NewRegistry()
	sink, err := openSink(ctx, c, reg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return errors.Join(fmt.Errorf("AUDIT_LISTEN %s: %w", c.listen, err), sink.Close())
	}

	mux := http.NewServeMux()
	health := audit.HealthHandler(sink, audit.HealthOptions{})
	mux.Handle("GET /healthz", health)
	mux.Handle("GET /readyz", health)
	mux.Handle("GET /metrics", health)
	mux.HandleFunc("POST /events", func(w http.ResponseWriter, r *http.Request) {
		actor, action := r.FormValue("actor"), r.FormValue("action")
		if actor == "" || action == "" {
			http.Error(w, "want the form values actor and action, such as ?actor=alice&action=login", http.StatusBadRequest)
			return
		}
		rec, err := writeEvent(r.Context(), sink, actor, action)
		if err != nil {
			// Not acknowledged: the caller must not proceed as if audited.
			http.Error(w, "the audit event was not recorded: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"seq": rec.Seq, "leaf_hash": fmt.Sprintf("%x", rec.LeafHash)})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(out, "listening on %s, audit log %s\n", ln.Addr(), c.walDir)

	var tick <-chan time.Time
	if c.demoInterval > 0 {
		t := time.NewTicker(c.demoInterval)
		defer t.Stop()
		tick = t.C
	}
	var serveErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case serveErr = <-served:
			break loop
		case <-tick:
			if _, err := writeEvent(ctx, sink, "demo", "heartbeat"); err != nil {
				fmt.Fprintln(out, "demo event not recorded:", err)
			}
		}
	}

	// Stop taking requests and let those in flight finish (the kubelet
	// waits terminationGracePeriodSeconds), then close the log, which
	// commits what is pending.
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		serveErr = errors.Join(serveErr, fmt.Errorf("shutting down HTTP: %w", err))
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	last := sink.LastSeq()
	if err := sink.Close(); err != nil {
		return errors.Join(serveErr, fmt.Errorf("closing the audit log: %w", err))
	}
	fmt.Fprintf(out, "shut down; the audit log ends at sequence %d\n", last)
	return serveErr
}

func writeEvent(ctx context.Context, sink *audit.Sink, actor, action string) (audit.Receipt, error) {
	return sink.Write(ctx, &audit.Event{
		Timestamp:       time.Now(),
		Level:           audit.LevelInformation,
		MessageTemplate: "{Actor} did {Action}",
		Message:         fmt.Sprintf("%q did %q", actor, action),
		Properties:      map[string]any{"Actor": actor, "Action": action},
	})
}
