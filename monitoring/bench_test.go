package monitoring

import (
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/wal"
)

// BenchmarkWriteAccounting measures what WithMetrics adds to each Sink.Write
// (WriteStart and WriteDone) with all processors writing at once, and, per
// op, one ObserveBatch as a committer would make per group commit: the
// upper bound of the metrics' cost per event without the disk's noise
// (docs/performance.md, "Metrics").
func BenchmarkWriteAccounting(b *testing.B) {
	m := New(SourceFunc(func() Status { return Status{} }), nil)
	b.Run("write", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.WriteDone(m.WriteStart(), OutcomeOK)
			}
		})
	})
	b.Run("batch", func(b *testing.B) {
		for b.Loop() {
			m.ObserveBatch(wal.BatchStats{Records: 32, Bytes: 32 * 300, Synced: true, Sync: time.Millisecond})
		}
	})
}
