package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
)

// buildApp builds the example into a temporary directory.
func buildApp(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "app")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestRunProcess builds the example, runs it as the manifests do (config
// from the environment), writes events over HTTP, reads the health
// endpoints and the metrics, stops it with SIGTERM as a kubelet does, and
// checks that it exits 0 and that the log holds every acknowledged event.
func TestRunProcess(t *testing.T) {
	bin := buildApp(t)
	vol := t.TempDir()
	wal := filepath.Join(vol, "wal")
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "AUDIT_WAL_DIR="+wal, "AUDIT_LISTEN=127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatalf("no first line; stderr: %s", stderr.String())
	}
	first := lines.Text()
	addr, ok := strings.CutPrefix(first, "listening on ")
	if !ok {
		t.Fatalf("first line %q", first)
	}
	addr, _, _ = strings.Cut(addr, ",")
	base := "http://" + addr

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for i, action := range []string{"login", "export", "logout"} {
		resp, err := http.Post(base+"/events?actor=alice&action="+action, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			Seq uint64 `json:"seq"`
		}
		err = json.NewDecoder(resp.Body).Decode(&rec)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusCreated || rec.Seq != uint64(i+1) {
			t.Fatalf("POST %s: status %d, seq %d, err %v", action, resp.StatusCode, rec.Seq, err)
		}
	}
	if resp, err := http.Post(base+"/events?actor=alice", "", nil); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("POST without action: %v %v", resp, err)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := get(path); code != http.StatusOK || !strings.Contains(body, `"status":"ok"`) {
			t.Fatalf("%s: %d %s", path, code, body)
		}
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, `mtlog_audit_writes_total{outcome="ok"} 3`) {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var rest strings.Builder
	for lines.Scan() {
		rest.WriteString(lines.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v; stderr: %s", err, stderr.String())
	}
	if want := "shut down; the audit log ends at sequence 3\n"; rest.String() != want {
		t.Fatalf("last output %q, want %q", rest.String(), want)
	}
	var got []string
	for ev, err := range audit.Replay(context.Background(), wal, time.Time{}, time.Time{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Properties["Action"].(string))
	}
	if strings.Join(got, ",") != "login,export,logout" {
		t.Fatalf("log holds %v", got)
	}
}

// TestConfigErrors: bad configuration is refused with an error that names
// the variable.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"AUDIT_SEGMENT_MAX_AGE": "often"}, "AUDIT_SEGMENT_MAX_AGE"},
		{map[string]string{"AUDIT_DEMO_INTERVAL": "-1s"}, "AUDIT_DEMO_INTERVAL"},
		{map[string]string{"AUDIT_SIGNING_KEY": "k", "AUDIT_SIGNING_KEY_FILE": "f"}, "set one"},
	} {
		_, err := configFromEnv(func(k string) string { return tc.env[k] })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.env, err, tc.want)
		}
	}
}
