package audit_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog/core"
)

// benchEvent is a typical audit event whose encoding is about 256 bytes.
func benchEvent() *audit.Event {
	return &audit.Event{
		Timestamp:       time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC),
		Level:           audit.LevelInformation,
		MessageTemplate: "User {UserId} performed {Action} on {Resource}",
		Message:         "User u-1001 performed export on patients/42",
		Properties: map[string]any{
			"UserId": "u-1001", "Action": "export", "Resource": "patients/42",
			"Count": 250, "TraceId": strings.Repeat("f", 32), "Ip": "203.0.113.7",
		},
	}
}

func runParallelWriters(b *testing.B, n int, fn func() error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := fn(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkWrite measures durable Sink.Write of a ~256-byte event with 1, 16,
// 64 and 256 concurrent writers, default options (compare with the wal
// package's BenchmarkReferenceLoop from the same run).
func BenchmarkWrite(b *testing.B) {
	for _, n := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprintf("writers=%d", n), func(b *testing.B) {
			s, err := audit.New(audit.WithWAL(filepath.Join(b.TempDir(), "wal")))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ev := benchEvent()
			ctx := context.Background()
			runParallelWriters(b, n, func() error {
				_, err := s.Write(ctx, ev)
				return err
			})
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
			runParallelWriters(b, n, func() error {
				s.Emit(le)
				return nil
			})
		})
	}
}
