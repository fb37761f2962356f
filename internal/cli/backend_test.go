package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/willibrandon/mtlog-audit/backends/s3/s3test"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// backend init creates a missing directory, refuses what is not a backend
// URL with a usage error, and says what a directory enforces.
func TestBackendInitFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	code, out, errs := runCLI(t, "backend", "init", "file://"+dir, "--json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var res backendInitJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !res.Created || res.Immutable || res.Backend != "file://"+dir {
		t.Fatalf("result %+v", res)
	}
	if code, out, _ := runCLI(t, "backend", "init", "file://"+dir); code != ExitOK || !strings.Contains(out, "exists") {
		t.Fatalf("second init: exit %d, %s", code, out)
	}
	for _, args := range [][]string{
		{"backend", "init", "ftp://host/x"},
		{"backend", "init", "::nothing"},
		{"backend", "init"},
		{"backend", "init", "file:///a", "file:///b"},
	} {
		code, _, errs := runCLI(t, args...)
		if code != ExitUsage || errs == "" {
			t.Errorf("%v: exit %d, stderr %q; want a usage error", args, code, errs)
		}
	}
}

// backend init on MinIO: an existing bucket without Object Lock is refused
// (exit 1, naming the backend and what to do) unless --mutable; wrong
// credentials are a usage error naming the backend. (The bucket it creates
// with Object Lock is TestReadmeQuickStart's first step.)
func TestBackendInitS3(t *testing.T) {
	cfg := s3test.NewBucket(t, false)
	t.Setenv("AWS_ACCESS_KEY_ID", cfg.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", cfg.SecretAccessKey)
	t.Setenv("AWS_REGION", "us-east-1")
	url := "s3://" + cfg.Bucket + "/host-1?endpoint=" + cfg.Endpoint
	code, _, errs := runCLI(t, "backend", "init", url)
	if code != ExitFailed || !strings.Contains(errs, "s3://"+cfg.Bucket+"/host-1") || !strings.Contains(errs, "Object Lock") || !strings.Contains(errs, "--mutable") {
		t.Fatalf("a bucket without Object Lock: exit %d, %s", code, errs)
	}
	code, out, errs := runCLI(t, "backend", "init", url, "--mutable")
	if code != ExitOK || !strings.Contains(out, "exists; immutable objects (retention): no") {
		t.Fatalf("--mutable: exit %d, %s%s", code, out, errs)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	code, _, errs = runCLI(t, "backend", "init", url)
	if code != ExitUsage || !strings.Contains(errs, "s3://"+cfg.Bucket+"/host-1") || !strings.Contains(errs, "credentials") {
		t.Fatalf("wrong credentials: exit %d, %s", code, errs)
	}
}
