package audit_test

import (
	"context"
	"path/filepath"
	"testing"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/internal/benchref"
)

// BenchmarkEncryption measures durable Sink.Write of the ~256-byte event of
// BenchmarkWrite with 64 writers, without encryption and with every
// property encrypted (WithEncryption() under the subject's key, UserId
// being the subject property), in the same run: the ratio of the two is
// the encryption overhead of docs/performance.md ("Field encryption").
// Besides events/s it reports the process's CPU time per event
// (cpu-ns/event, user and system, the committer and the GC included; on
// Unix), which other processes on the machine disturb less than the
// throughput.
func BenchmarkEncryption(b *testing.B) {
	const writers = 64
	for _, mode := range []string{"plain", "encrypted"} {
		b.Run(mode+"/writers=64", func(b *testing.B) {
			root := b.TempDir()
			opts := []audit.Option{audit.WithWAL(filepath.Join(root, "wal"))}
			if mode == "encrypted" {
				opts = append(opts, audit.WithKeyring(filepath.Join(root, "keys", "audit.keyring"), nil), audit.WithSubjectProperty("UserId"), audit.WithEncryption())
			}
			s, err := audit.New(opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ev := benchEvent()
			ctx := context.Background()
			cpu := processCPU()
			benchref.Run(b, writers, func() error {
				_, err := s.Write(ctx, ev)
				return err
			})
			if cpu := processCPU() - cpu; cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/event")
			}
		})
	}
}
