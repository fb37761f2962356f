package torture_test

import (
	"context"
	"os"
	"testing"

	"github.com/willibrandon/mtlog-audit/torture"
)

// BenchmarkScenario measures one iteration of each scenario on one worker
// (ns/op is the time per iteration; iterations run back to back), to size a
// long run:
//
//	go test -run '^$' -bench Scenario -benchtime 2000x ./torture/
//
// Failures are counted (metric failures/op), not reported: use the tests
// for that.
func BenchmarkScenario(b *testing.B) {
	for _, s := range torture.All() {
		b.Run(s.Name(), func(b *testing.B) {
			cfg := torture.Config{Iterations: b.N, Seed: 1, Workers: 1, TempDir: b.TempDir(),
				ChildCommand: torture.ChildCommand(os.Args[0], "-test.run=^$")}
			b.ResetTimer()
			sum, err := torture.RunScenarios(context.Background(), cfg, s)
			if err != nil {
				b.Fatal(err)
			}
			sc := sum.Scenarios[0]
			b.ReportMetric(float64(sc.Failures)/float64(b.N), "failures/op")
			b.ReportMetric(float64(sc.Skipped)/float64(b.N), "skipped/op")
			b.ReportMetric(float64(sc.Acked)/float64(b.N), "acked/op")
		})
	}
}
