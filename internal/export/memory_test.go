package export

import (
	"encoding/base64"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/event"
)

// heapSampler records the peak runtime.MemStats.HeapInuse, sampled every
// millisecond by a goroutine and whenever sample is called.
type heapSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	wg   sync.WaitGroup
}

func startHeapSampler() *heapSampler {
	s := &heapSampler{stop: make(chan struct{})}
	s.sample()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *heapSampler) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	for {
		p := s.peak.Load()
		if ms.HeapInuse <= p || s.peak.CompareAndSwap(p, ms.HeapInuse) {
			return
		}
	}
}

// Stop ends sampling and returns the peak.
func (s *heapSampler) Stop() uint64 {
	close(s.stop)
	s.wg.Wait()
	s.sample()
	return s.peak.Load()
}

// eventSource makes large events with random text, so that compression
// cannot shrink them much, one at a time: nothing is retained between
// events except a 2 MiB pool of random text the strings are cut from.
type eventSource struct {
	pool    string
	rng     *rand.Rand
	msgLen  int
	propLen int
	base    time.Time
}

func newEventSource(msgLen, propLen int) *eventSource {
	seed := [32]byte{1, 2, 3}
	raw := make([]byte, 3<<19)
	_, _ = rand.NewChaCha8(seed).Read(raw)
	return &eventSource{
		pool:    base64.StdEncoding.EncodeToString(raw),
		rng:     rand.New(rand.NewPCG(1, 2)),
		msgLen:  msgLen,
		propLen: propLen,
		base:    time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

func (s *eventSource) cut(n int) string {
	i := s.rng.IntN(len(s.pool) - n)
	return s.pool[i : i+n]
}

func (s *eventSource) event(i int) *event.Event {
	ev := &event.Event{
		Timestamp:       s.base.Add(time.Duration(i) * time.Millisecond),
		Level:           event.Level(i % 6),
		MessageTemplate: "User {UserId} did {Action} with {Count} items",
		Message:         s.cut(s.msgLen),
		Properties: map[string]any{
			"UserId":  "u-" + strconv.Itoa(i%1000),
			"Action":  s.cut(s.propLen),
			"Count":   int64(i),
			"Elapsed": time.Duration(i) * time.Microsecond,
		},
	}
	if i%10 == 0 {
		ev.Exception = &event.ErrorValue{Message: s.cut(64)}
	}
	return ev
}

// exportMeasured exports n events from src to a counting writer, sampling
// the heap, and returns the peak HeapInuse and the bytes written.
func exportMeasured(t testing.TB, w Writer, cw *countWriter, src *eventSource, n int) (peak uint64) {
	t.Helper()
	runtime.GC()
	s := startHeapSampler()
	for i := range n {
		if err := w.Write(uint64(i+1), src.event(i)); err != nil {
			t.Fatalf("Write %d: %v", i, err)
		}
		if i%1024 == 0 {
			s.sample()
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return s.Stop()
}

// memoryBound is the most HeapInuse a Parquet export may reach, whatever
// the number of events.
const memoryBound = 64 << 20

func TestParquetMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("exports hundreds of MiB")
	}
	// Size the events so the output is at least 160 MiB: far above the
	// bound, so a writer that buffered everything would exceed it.
	const total = 160 << 20
	per := total / memoryTestEvents
	src := newEventSource(per/2, per/2)
	cw := &countWriter{}
	w, err := NewWriter(Parquet, cw)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	peak := exportMeasured(t, w, cw, src, memoryTestEvents)
	t.Logf("%d events, %d MiB of Parquet in %v; peak HeapInuse %.1f MiB (bound %d MiB)",
		memoryTestEvents, cw.n>>20, time.Since(start).Round(time.Millisecond), float64(peak)/(1<<20), memoryBound>>20)
	if cw.n < 2*memoryBound {
		t.Fatalf("only %d bytes written: the test cannot tell buffering everything from streaming", cw.n)
	}
	if peak > memoryBound {
		t.Errorf("peak HeapInuse %d MiB exceeds %d MiB", peak>>20, memoryBound>>20)
	}
}

// TestParquetMemoryControl shows that the measurement catches a writer that
// buffers: with row groups that never fill, the peak exceeds the bound.
func TestParquetMemoryControl(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("buffers hundreds of MiB")
	}
	const total = 160 << 20
	per := total / memoryTestEvents
	src := newEventSource(per/2, per/2)
	cw := &countWriter{}
	w := newParquetWriter(cw, 1<<62, 1<<62)
	peak := exportMeasured(t, w, cw, src, memoryTestEvents)
	t.Logf("unbounded row group: peak HeapInuse %.1f MiB", float64(peak)/(1<<20))
	if peak <= memoryBound {
		t.Errorf("peak HeapInuse %d MiB with one row group: the bound %d MiB would not catch buffering", peak>>20, memoryBound>>20)
	}
}

// TestParquetMemoryManual is the large measurement of the report, run by
// hand: MTLOG_EXPORT_MEASURE_MIB=1024 go test -run TestParquetMemoryManual -v
// ./internal/export/ exports events until their JSON lines would total that
// many MiB, and logs the peak HeapInuse.
func TestParquetMemoryManual(t *testing.T) {
	mib, _ := strconv.Atoi(os.Getenv("MTLOG_EXPORT_MEASURE_MIB"))
	if mib <= 0 {
		t.Skip("set MTLOG_EXPORT_MEASURE_MIB to run")
	}
	src := newEventSource(1024, 512)
	// The JSON size of one event, measured on a sample.
	var sample int
	for i := range 1000 {
		b, err := JSON(uint64(i+1), src.event(i))
		if err != nil {
			t.Fatal(err)
		}
		sample += len(b) + 1
	}
	n := int(int64(mib) << 20 * 1000 / int64(sample))
	cw := &countWriter{}
	w, err := NewWriter(Parquet, cw)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	peak := exportMeasured(t, w, cw, src, n)
	t.Logf("%d events (≈%d MiB as JSON lines) -> %d MiB of Parquet in %v; peak HeapInuse %.1f MiB",
		n, int64(n)*int64(sample)/1000>>20, cw.n>>20, time.Since(start).Round(time.Millisecond), float64(peak)/(1<<20))
}
