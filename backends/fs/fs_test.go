package fs_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/backends/backendtest"
	"github.com/willibrandon/mtlog-audit/backends/fs"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		b, err := fs.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

func TestMissingRootIsAnError(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not-mounted")
	_, err := fs.New(dir)
	if err == nil || !strings.Contains(err.Error(), "not-mounted") {
		t.Fatalf("New of a missing directory: err = %v, want an error naming it", err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("New created the missing root; a missing mount point must not become an empty store")
	}
}

func TestOpenURL(t *testing.T) {
	dir := t.TempDir()
	b, err := fs.Open("file://" + dir)
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != "file://"+dir {
		t.Fatalf("Name = %q", b.Name())
	}
	for _, bad := range []string{"s3://bucket", "file://host/x", "file://", "::"} {
		if _, err := fs.Open(bad); err == nil {
			t.Fatalf("Open(%q) succeeded", bad)
		}
	}
}
