package audit_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/internal/benchref"
)

// BenchmarkMetrics measures durable Sink.Write of a ~256-byte event with 64
// writers, without and with WithMetrics (a fresh registry, scraped by no
// one), in the same run; run it with -count N to alternate the two
// (docs/performance.md, "Metrics").
func BenchmarkMetrics(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name+"/writers=64", func(b *testing.B) {
			opts := []audit.Option{audit.WithWAL(filepath.Join(b.TempDir(), "wal"))}
			if on {
				opts = append(opts, audit.WithMetrics(prometheus.NewRegistry()))
			}
			s, err := audit.New(opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ev := benchEvent()
			ctx := context.Background()
			benchref.Run(b, 64, func() error {
				_, err := s.Write(ctx, ev)
				return err
			})
		})
	}
}
