package wal

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
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

// BenchmarkRotation measures what a rotation costs the append that meets
// it: one writer appends 1 KiB records into 256 KiB segments on the
// operating system's filesystem, and the benchmark reports the median and
// the 90th percentile latency of the appends that started a new segment
// (rotate-p50-ms, rotate-p90-ms) beside those of the others (append-p50-ms).
// Compare the metrics across builds in one run of the machine; ns/op mixes
// both kinds of append.
func BenchmarkRotation(b *testing.B) {
	payload := make([]byte, 1024)
	w, err := Open(vfs.OS(), filepath.Join(b.TempDir(), "wal"), Options{SegmentSize: 256 << 10})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	// Latencies in microseconds, 1 µs to 10 s, three significant figures.
	rotating, plain := hdrhistogram.New(1, 10_000_000, 3), hdrhistogram.New(1, 10_000_000, 3)
	for b.Loop() {
		start := w.LastSegmentStart()
		t0 := time.Now()
		if _, err := w.Append(ctx, RecordEvent, 1, payload); err != nil {
			b.Fatal(err)
		}
		h := plain
		if w.LastSegmentStart() != start {
			h = rotating
		}
		_ = h.RecordValue(time.Since(t0).Microseconds())
	}
	ms := func(h *hdrhistogram.Histogram, q float64) float64 { return float64(h.ValueAtQuantile(q)) / 1e3 }
	b.ReportMetric(ms(rotating, 50), "rotate-p50-ms")
	b.ReportMetric(ms(rotating, 90), "rotate-p90-ms")
	b.ReportMetric(ms(plain, 50), "append-p50-ms")
	b.ReportMetric(float64(rotating.TotalCount()), "rotations")
}
