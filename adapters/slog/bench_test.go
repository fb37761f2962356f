package slogaudit_test

import (
	"context"
	"log/slog"
	"testing"

	audit "github.com/willibrandon/mtlog-audit"
	slogaudit "github.com/willibrandon/mtlog-audit/adapters/slog"
	"github.com/willibrandon/mtlog-audit/internal/adaptertest"
)

// BenchmarkOverhead logs through slog.Logger and the handler from 64
// goroutines, then writes the same events directly with Sink.Write, and
// reports the ratio of the two rates.
func BenchmarkOverhead(b *testing.B) {
	adaptertest.Overhead(b, func(s *audit.Sink) func(int) error {
		h, err := slogaudit.New(s, nil)
		if err != nil {
			b.Fatal(err)
		}
		l := slog.New(h)
		ctx := context.Background()
		return func(i int) error {
			l.LogAttrs(ctx, slog.LevelInfo, "user exported records", slog.String("user", "u-1"), slog.Int("count", i))
			return nil
		}
	}, adaptertest.DirectWrite)
}
