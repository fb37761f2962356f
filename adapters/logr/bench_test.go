package lograudit_test

import (
	"testing"

	audit "github.com/willibrandon/mtlog-audit"
	lograudit "github.com/willibrandon/mtlog-audit/adapters/logr"
	"github.com/willibrandon/mtlog-audit/internal/adaptertest"
)

// BenchmarkOverhead logs through logr and the LogSink from 64 goroutines,
// then writes the same events directly with Sink.Write, and reports the
// ratio of the two rates.
func BenchmarkOverhead(b *testing.B) {
	adaptertest.Overhead(b, func(s *audit.Sink) func(int) error {
		l, err := lograudit.New(s)
		return func(i int) error {
			l.Info("user exported records", "user", "u-1", "count", i)
			return err
		}
	}, adaptertest.DirectWrite)
}
