// Package testservers finds the storage servers (MinIO, Azurite,
// fake-gcs-server) that scripts/servers.sh starts on 127.0.0.1 for the
// tests of the backend drivers, the shipper and restore.
package testservers

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// SkipVar is the environment variable with which a developer who has no
// servers running skips the tests that need them (MTLOG_AUDIT_SKIP_SERVERS=1).
// Without it, such a test fails: CI must never pass by skipping.
const SkipVar = "MTLOG_AUDIT_SKIP_SERVERS"

// Require returns the values of the environment variables names, which
// scripts/servers.sh sets (in the environment, or in the file .servers/env
// at the module root, which `make servers` writes). When one is missing the
// test fails, saying how to start the servers, or skips if SkipVar is set.
func Require(t testing.TB, names ...string) []string {
	t.Helper()
	file := envFile()
	vals := make([]string, len(names))
	for i, n := range names {
		v := os.Getenv(n)
		if v == "" {
			v = file[n]
		}
		if v == "" {
			if os.Getenv(SkipVar) == "1" {
				t.Skipf("%s is not set and %s=1: skipping a test that needs a storage server", n, SkipVar)
			}
			t.Fatalf("%s is not set: start the test servers with `make servers` (scripts/servers.sh start), "+
				"or set %s=1 to skip the tests that need them", n, SkipVar)
		}
		vals[i] = v
	}
	return vals
}

// envFile reads .servers/env of the module root ("export K=V" or "K=V"
// lines), or returns nil.
func envFile() map[string]string {
	dir, err := os.Getwd()
	if err != nil {
		return nil
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/willibrandon/mtlog-audit\n") {
				break
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
	f, err := os.Open(filepath.Join(dir, ".servers", "env"))
	if err != nil {
		return nil
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export "))
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			m[k] = strings.Trim(v, `"'`)
		}
	}
	return m
}
