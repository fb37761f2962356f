package all_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/willibrandon/mtlog-audit/backends/all"
)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	b, err := all.Open(context.Background(), "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != "file://"+dir {
		t.Fatalf("Name = %q", b.Name())
	}
	for _, bad := range []string{"ftp://host/x", "::not a url", "nothing"} {
		_, err := all.Open(context.Background(), bad)
		if err == nil || !strings.Contains(err.Error(), "s3://bucket") {
			t.Fatalf("Open(%q): err = %v, want an error listing the URL forms", bad, err)
		}
	}
}

// Init creates a missing directory and finds it the second time; a URL
// that does not parse gets Open's error, which lists the URL forms.
func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	for i, want := range []bool{true, false} {
		b, created, err := all.Init(context.Background(), "file://"+dir, all.InitOptions{Immutable: true})
		if err != nil || created != want || b.Name() != "file://"+dir {
			t.Fatalf("Init #%d: %v, created %v", i+1, err, created)
		}
		b.Close()
	}
	if _, _, err := all.Init(context.Background(), "::not a url", all.InitOptions{}); err == nil || !strings.Contains(err.Error(), "s3://bucket") {
		t.Fatalf("Init of a bad URL: %v", err)
	}
}
