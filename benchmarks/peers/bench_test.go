package peers

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// BenchmarkPeers runs every row with 1, 16, 64 and 256 writers and 256-byte
// and 4 KiB events: b.N events split across the writers, after a warm-up of
// WarmupWrites per writer. Besides ns/op and allocs/op (whole process, per
// event) it reports events/s and the p50/p99/p99.9 acknowledgement latency.
// Filter with -bench, e.g. -bench 'Peers/size=256/writers=64/'. The log
// lives in b.TempDir(), so TMPDIR picks the disk.
func BenchmarkPeers(b *testing.B) {
	for _, size := range []int{256, 4096} {
		w, err := NewWorkload(size)
		if err != nil {
			b.Fatal(err)
		}
		for _, writers := range []int{1, 16, 64, 256} {
			for _, t := range All() {
				b.Run(fmt.Sprintf("size=%d/writers=%d/%s", size, writers, t.ID), func(b *testing.B) {
					benchTarget(b, t, w, writers)
				})
			}
		}
	}
}

func benchTarget(b *testing.B, t Target, w *Workload, writers int) {
	inst, err := t.Open(b.TempDir(), w)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := inst.Close(); err != nil {
			b.Error(err)
		}
	}()
	fns := make([]func() error, writers)
	for i := range fns {
		fns[i] = inst.Writer()
	}
	var wg sync.WaitGroup
	for _, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range WarmupWrites {
				if err := fn(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	hists := make([]*hdrhistogram.Histogram, writers)
	for i := range hists {
		hists[i] = hdrhistogram.New(histMin, histMax, histSigFigs)
	}
	var next atomic.Int64
	b.SetBytes(int64(w.Size))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i, fn := range fns {
		wg.Add(1)
		go func(h *hdrhistogram.Histogram) {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if err := fn(); err != nil {
					b.Error(err)
					return
				}
				_ = h.RecordValue(min(max(time.Since(t0).Nanoseconds(), histMin), histMax))
			}
		}(hists[i])
	}
	wg.Wait()
	b.StopTimer()
	elapsed := time.Since(start)
	merged := hdrhistogram.New(histMin, histMax, histSigFigs)
	for _, h := range hists {
		merged.Merge(h)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(ms(merged.ValueAtQuantile(50)), "p50-ms")
	b.ReportMetric(ms(merged.ValueAtQuantile(99)), "p99-ms")
	b.ReportMetric(ms(merged.ValueAtQuantile(99.9)), "p99.9-ms")
}
