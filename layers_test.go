package audit_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestLayers checks docs/architecture.md's package table for the packages
// below the root: each imports only the module packages named there, and
// nothing below audit imports audit (its tests included).
func TestLayers(t *testing.T) {
	const mod = "github.com/willibrandon/mtlog-audit"
	allowed := map[string][]string{
		"vfs":             nil,
		"event":           nil,
		"wal":             {"vfs"},
		"integrity":       {"vfs"},
		"internal/ledger": {"integrity", "wal", "vfs"},
		"replica":         {"backends", "integrity", "internal/ledger", "wal", "vfs"},
		"internal/verify": {"event", "integrity", "internal/ledger", "replica", "wal", "vfs"},
		"protect":         {"event"},
		"backends":        nil,
	}
	for dir, ok := range allowed {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files in %s: %v", dir, err)
		}
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				if path != mod && !strings.HasPrefix(path, mod+"/") {
					continue
				}
				test := strings.HasSuffix(f, "_test.go") // tests may use lower packages and helpers
				if rel := strings.TrimPrefix(path, mod+"/"); path == mod || !test && !slices.Contains(ok, rel) {
					t.Errorf("%s imports %s; %s may import only %v of this module (docs/architecture.md)", f, path, dir, ok)
				}
			}
		}
	}
}
