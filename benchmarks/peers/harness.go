// Package peers runs one durable-logging workload (N concurrent writers,
// events of S bytes, each write acknowledged only when the library says it
// is done) against mtlog-audit, a minimal group-commit reference loop and
// other Go logs and loggers, and measures throughput, acknowledgement
// latency (HDR histogram) and allocations per event. cmd/compare drives it
// over a matrix and prints a Markdown table; bench_test.go exposes the same
// rows as Go benchmarks.
package peers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Target is one row of the comparison: a library used the way its
// documentation shows for durable writes (or as close as it gets).
type Target struct {
	// ID is the short name used on the command line (-targets).
	ID string
	// Name is the row's label in the tables.
	Name string
	// Guarantee says what has happened to an event when the call returns,
	// as read in the library's code ("fdatasync before ack", "fsync before
	// ack", "none: ..."): the same wording is used for every row with the
	// same guarantee, so rows can be grouped by it.
	Guarantee string
	// Detail explains the guarantee and any caveat, for the legend.
	Detail string
	// Open prepares the target in dir (an empty directory of its own) for
	// workload w.
	Open func(dir string, w *Workload) (Instance, error)
}

// Instance is an opened target.
type Instance interface {
	// Writer returns the function one writer goroutine calls repeatedly:
	// each call writes one event of the workload and returns when the
	// target acknowledges it. Each goroutine gets its own function.
	Writer() func() error
	// Close releases the target (it is not timed).
	Close() error
}

// Noter is implemented by instances that have something to add about a
// run (for example events they dropped).
type Noter interface {
	// Mark is called just before the timed run starts.
	Mark()
	// Note is called just after it ends, with the number of acknowledged
	// events; it returns a short remark for the table, or "".
	Note(events uint64) string
}

// Measurement is the outcome of one target × writers × size cell.
type Measurement struct {
	Target          string  `json:"target"`
	Name            string  `json:"name"`
	Guarantee       string  `json:"guarantee"`
	Writers         int     `json:"writers"`
	EventSize       int     `json:"event_size"`
	Events          uint64  `json:"events"`
	Seconds         float64 `json:"seconds"`
	EventsPerSecond float64 `json:"events_per_second"`
	MBPerSecond     float64 `json:"mb_per_second"`
	P50Ms           float64 `json:"p50_ms"`
	P99Ms           float64 `json:"p99_ms"`
	P999Ms          float64 `json:"p999_ms"`
	MaxMs           float64 `json:"max_ms"`
	AllocsPerEvent  float64 `json:"allocs_per_event"`
	// RatioToReference is EventsPerSecond ÷ the reference loop's in the same
	// cell of the same run (0 when the reference was not run).
	RatioToReference float64 `json:"ratio_to_reference"`
	Note             string  `json:"note,omitempty"`
	Error            string  `json:"error,omitempty"`
}

// Histogram range: nanoseconds, 3 significant digits, 1 µs to 1 minute.
const (
	histMin     = 1_000
	histMax     = int64(time.Minute)
	histSigFigs = 3
)

// WarmupWrites is how many writes each writer makes before the timed run.
const WarmupWrites = 2

// Measure opens t in a new directory under parent, warms it up, runs
// writers goroutines calling their writer for d, closes t and removes the
// directory. With rate 0 each writer calls again as soon as a call returns;
// with rate > 0 the calls follow a fixed schedule of rate calls per second
// spread over the writers (open loop: a writer that falls behind makes its
// late calls at once). Latency is the time each call took; allocations are
// the process's heap allocations during the timed run ÷ events.
func Measure(ctx context.Context, t Target, parent string, w *Workload, writers int, d time.Duration, rate int) (m Measurement, err error) {
	m = Measurement{Target: t.ID, Name: t.Name, Guarantee: t.Guarantee, Writers: writers, EventSize: w.Size}
	if writers < 1 || rate < 0 {
		return m, fmt.Errorf("peers: %d writers at rate %d: need at least 1 writer and a rate ≥ 0", writers, rate)
	}
	var interval time.Duration
	if rate > 0 {
		interval = max(time.Second/time.Duration(rate), 1)
	}
	dir, err := os.MkdirTemp(parent, t.ID+"-*")
	if err != nil {
		return m, fmt.Errorf("peers: %s: %w", t.ID, err)
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = fmt.Errorf("peers: %s: remove %s: %w", t.ID, dir, rerr)
		}
	}()
	inst, err := t.Open(dir, w)
	if err != nil {
		return m, fmt.Errorf("peers: open %s: %w", t.ID, err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = inst.Close()
		}
	}()

	fns := make([]func() error, writers)
	for i := range fns {
		fns[i] = inst.Writer()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var firstErr error
	var once sync.Once
	fail := func(err error) { once.Do(func() { firstErr = err; cancel() }) }

	var wg sync.WaitGroup
	for _, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range WarmupWrites {
				if err := fn(); err != nil {
					fail(fmt.Errorf("peers: %s: warm-up: %w", t.ID, err))
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return m, firstErr
	}

	type state struct {
		events uint64
		hist   *hdrhistogram.Histogram
		_      [48]byte
	}
	states := make([]state, writers)
	for i := range states {
		states[i].hist = hdrhistogram.New(histMin, histMax, histSigFigs)
	}
	noter, _ := inst.(Noter)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if noter != nil {
		noter.Mark()
	}
	start := time.Now()
	deadline := start.Add(d)
	for i, fn := range fns {
		wg.Add(1)
		go func(st *state) {
			defer wg.Done()
			for k := int64(0); ctx.Err() == nil; k++ {
				if interval > 0 {
					at := start.Add(time.Duration(k*int64(writers)+int64(i)) * interval)
					if !at.Before(deadline) {
						return
					}
					if dd := time.Until(at); dd > 0 {
						time.Sleep(dd)
					}
				}
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				if err := fn(); err != nil {
					fail(fmt.Errorf("peers: %s: %w", t.ID, err))
					return
				}
				ns := time.Since(t0).Nanoseconds()
				_ = st.hist.RecordValue(min(max(ns, histMin), histMax))
				st.events++
			}
		}(&states[i])
	}
	wg.Wait()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)

	hist := hdrhistogram.New(histMin, histMax, histSigFigs)
	for i := range states {
		m.Events += states[i].events
		hist.Merge(states[i].hist)
	}
	if noter != nil {
		m.Note = noter.Note(m.Events)
	}
	closed = true
	cerr := inst.Close()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = fmt.Errorf("peers: %s: interrupted: %w", t.ID, context.Cause(ctx))
	}
	if firstErr == nil && cerr != nil {
		firstErr = fmt.Errorf("peers: close %s: %w", t.ID, cerr)
	}

	m.Seconds = elapsed.Seconds()
	m.EventsPerSecond = float64(m.Events) / m.Seconds
	m.MBPerSecond = m.EventsPerSecond * float64(w.Size) / 1e6
	if m.Events > 0 {
		m.P50Ms = ms(hist.ValueAtQuantile(50))
		m.P99Ms = ms(hist.ValueAtQuantile(99))
		m.P999Ms = ms(hist.ValueAtQuantile(99.9))
		m.MaxMs = ms(hist.Max())
		m.AllocsPerEvent = float64(after.Mallocs-before.Mallocs) / float64(m.Events)
	}
	if firstErr != nil {
		m.Error = firstErr.Error()
	}
	return m, firstErr
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// Median returns the measurement with the median events/s of ms (the lower
// middle one for an even count), or an error if ms is empty.
func Median(ms []Measurement) (Measurement, error) {
	if len(ms) == 0 {
		return Measurement{}, errors.New("peers: no measurements")
	}
	s := append([]Measurement(nil), ms...)
	sort.Slice(s, func(i, j int) bool { return s[i].EventsPerSecond < s[j].EventsPerSecond })
	return s[(len(s)-1)/2], nil
}
