package all_test

import (
	"context"
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
