package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/backends/s3/s3test"
	"github.com/willibrandon/mtlog-audit/internal/testservers"
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

// backend init on Azurite creates a missing container with --mutable, and
// finds it the second time. Without --mutable it refuses (exit 1, naming
// the backend and what to do), and leaves no container behind: Azurite
// has no version-level immutability. A wrong key is a usage error naming
// the backend and the credentials.
func TestBackendInitAzure(t *testing.T) {
	env := testservers.Require(t, "MTLOG_AUDIT_AZURITE_BLOB_ENDPOINT", "MTLOG_AUDIT_AZURITE_ACCOUNT", "MTLOG_AUDIT_AZURITE_KEY")
	t.Setenv("AZURE_STORAGE_KEY", env[2])
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "")
	name := "azure://" + env[1] + "/init" + strconv.FormatInt(time.Now().UnixNano(), 36) + "/host-1"
	url := name + "?endpoint=" + env[0]
	for range 2 { // the refused container is not left behind: refused again
		code, _, errs := runCLI(t, "backend", "init", url)
		if code != ExitFailed || !strings.Contains(errs, name) || !strings.Contains(errs, "immutability") || !strings.Contains(errs, "--enable-vlw") {
			t.Fatalf("without --mutable: exit %d, %s", code, errs)
		}
	}
	initMutable(t, url, name, "cannot be turned on for an existing container")
	t.Setenv("AZURE_STORAGE_KEY", "d3Jvbmc=")
	if code, _, errs := runCLI(t, "backend", "init", url); code != ExitUsage || !strings.Contains(errs, name) || !strings.Contains(errs, "credentials") {
		t.Fatalf("wrong key: exit %d, %s", code, errs)
	}
	if code, _, errs := runCLI(t, "backend", "init", "azure://acct/Bad_Name"); code != ExitUsage || !strings.Contains(errs, "azure") {
		t.Fatalf("a bad container name: exit %d, %s", code, errs)
	}
}

// backend init on fake-gcs-server creates a missing bucket with --mutable
// and finds it the second time. Without --mutable it refuses (exit 1)
// before creating anything: the emulator keeps no object retention.
func TestBackendInitGCS(t *testing.T) {
	endpoint := testservers.Require(t, "MTLOG_AUDIT_FAKEGCS_ENDPOINT")[0]
	name := "gs://init" + strconv.FormatInt(time.Now().UnixNano(), 36) + "/host-1"
	url := name + "?endpoint=" + endpoint
	code, _, errs := runCLI(t, "backend", "init", url)
	if code != ExitFailed || !strings.Contains(errs, name) || !strings.Contains(errs, "retention") || !strings.Contains(errs, "--mutable") {
		t.Fatalf("without --mutable: exit %d, %s", code, errs)
	}
	initMutable(t, url, name, "object retention")
	for _, bad := range []string{"gs://x", "gs://bucket?endpoint=ftp://h", "gs://bucket?region=eu"} {
		if code, _, errs := runCLI(t, "backend", "init", bad); code != ExitUsage || !strings.Contains(errs, "gcs") {
			t.Errorf("%s: exit %d, %s; want a usage error naming gcs", bad, code, errs)
		}
	}
}

// initMutable runs backend init on url, a store that does not exist, with
// --mutable: it creates the store, named name, without immutability; a
// second init finds it; and one without --mutable refuses it (exit 1) with
// refusal in its message.
func initMutable(t *testing.T, url, name, refusal string) {
	t.Helper()
	code, out, errs := runCLI(t, "backend", "init", url, "--mutable", "--json")
	var res backendInitJSON
	if code != ExitOK || json.Unmarshal([]byte(out), &res) != nil || !res.Created || res.Immutable || !res.ServerChecksum || res.Backend != name {
		t.Fatalf("--mutable: exit %d, %s%s", code, out, errs)
	}
	if code, out, errs := runCLI(t, "backend", "init", url, "--mutable"); code != ExitOK || !strings.Contains(out, name+": exists") {
		t.Fatalf("second init: exit %d, %s%s", code, out, errs)
	}
	if code, _, errs := runCLI(t, "backend", "init", url); code != ExitFailed || !strings.Contains(errs, name) || !strings.Contains(errs, refusal) {
		t.Fatalf("an existing store without immutability: exit %d, %s", code, errs)
	}
}
