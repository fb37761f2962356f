package zerologaudit_test

import (
	"testing"

	"github.com/rs/zerolog"
	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/internal/adaptertest"
)

// BenchmarkOverhead logs through zerolog and the Writer from 64
// goroutines, then writes the same events directly with Sink.Write, and
// reports the ratio of the two rates.
func BenchmarkOverhead(b *testing.B) {
	adaptertest.Overhead(b, func(s *audit.Sink) func(int) error {
		w := mustNew(b, s)
		logger := zerolog.New(w).With().Timestamp().Logger()
		return func(i int) error {
			logger.Info().Str("user", "u-1").Int("count", i).Msg("user exported records")
			return nil
		}
	}, adaptertest.DirectWrite)
}
