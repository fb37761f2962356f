package audit_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/internal/benchref"
	"github.com/willibrandon/mtlog/core"
)

// benchEvent is a typical audit event whose encoding is about 256 bytes.
func benchEvent() *audit.Event { return benchref.Event() }

// BenchmarkWrite measures durable Sink.Write of a ~256-byte event (its
// encoding is 279 bytes) with 1, 16, 64 and 256 concurrent writers, default
// options, each followed by the minimal group-commit reference loop
// (internal/benchref) writing 279-byte records with the same writers, so the
// ratio is measured in one run.
func BenchmarkWrite(b *testing.B) {
	for _, n := range benchref.Writers {
		b.Run(fmt.Sprintf("sink/writers=%d", n), func(b *testing.B) {
			s, err := audit.New(audit.WithWAL(filepath.Join(b.TempDir(), "wal")))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ev := benchEvent()
			ctx := context.Background()
			benchref.Run(b, n, func() error {
				_, err := s.Write(ctx, ev)
				return err
			})
		})
		b.Run(fmt.Sprintf("reference/writers=%d", n), func(b *testing.B) {
			benchref.Bench(b, b.TempDir(), n, 279)
		})
	}
}

// BenchmarkEmit is BenchmarkWrite through mtlog's sink interface (the
// message is rendered from the template on every call).
func BenchmarkEmit(b *testing.B) {
	for _, n := range []int{64} {
		b.Run(fmt.Sprintf("writers=%d", n), func(b *testing.B) {
			s, err := audit.New(audit.WithWAL(filepath.Join(b.TempDir(), "wal")))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ev := benchEvent()
			le := &core.LogEvent{Timestamp: ev.Timestamp, Level: core.InformationLevel, MessageTemplate: ev.MessageTemplate, Properties: ev.Properties}
			benchref.Run(b, n, func() error {
				s.Emit(le)
				return nil
			})
		})
	}
}
