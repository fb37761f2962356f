package wal

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/willibrandon/mtlog-audit/internal/benchref"
	"github.com/willibrandon/mtlog-audit/vfs"
)

const benchEventSize = 256

// BenchmarkAppend measures durable appends of 256-byte records with 1, 16,
// 64 and 256 concurrent writers, in the default SyncDurable mode on the
// operating system's filesystem (TMPDIR decides which disk), each followed
// by the reference loop (internal/benchref) with the same writers, so the
// ratio is measured in one run.
func BenchmarkAppend(b *testing.B) {
	payload := make([]byte, benchEventSize)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	for _, n := range benchref.Writers {
		b.Run(fmt.Sprintf("wal/writers=%d", n), func(b *testing.B) {
			w, err := Open(vfs.OS(), filepath.Join(b.TempDir(), "wal"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			ctx := context.Background()
			benchref.Run(b, n, func() error {
				_, err := w.Append(ctx, RecordEvent, 1, payload)
				return err
			})
		})
		b.Run(fmt.Sprintf("reference/writers=%d", n), func(b *testing.B) {
			benchref.Bench(b, b.TempDir(), n, benchEventSize)
		})
	}
}
