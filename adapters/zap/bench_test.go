package zapaudit_test

import (
	"testing"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/internal/adaptertest"
	"go.uber.org/zap"
)

// BenchmarkOverhead logs through zap and the core from 64 goroutines, then
// writes the same events directly with Sink.Write, and reports the ratio of
// the two rates.
func BenchmarkOverhead(b *testing.B) {
	adaptertest.Overhead(b, func(s *audit.Sink) func(int) error {
		logger := zap.New(newCore(b, s, nil))
		return func(i int) error {
			logger.Info("user exported records", zap.String("user", "u-1"), zap.Int("count", i))
			return nil
		}
	}, adaptertest.DirectWrite)
}
