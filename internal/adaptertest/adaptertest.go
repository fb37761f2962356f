// Package adaptertest holds what the logger adapters' tests share: a sink in
// a temporary directory, replay of everything in it, the SIGKILL harness and
// the 64-goroutine overhead benchmark. It is imported only by tests.
package adaptertest

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
)

// OpenSink opens a sink in a fresh temporary directory, closed at cleanup.
func OpenSink(t testing.TB, opts ...audit.Option) *audit.Sink {
	t.Helper()
	s, err := audit.New(append([]audit.Option{audit.WithWAL(filepath.Join(t.TempDir(), "wal"))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Events replays every event in s.
func Events(t testing.TB, s *audit.Sink) []*audit.Event {
	t.Helper()
	var evs []*audit.Event
	for ev, err := range s.Replay(context.Background(), time.Time{}, time.Time{}) {
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// killRounds is the number of SIGKILL rounds Kill runs.
var killRounds = flag.Int("kill.rounds", 10, "SIGKILL rounds in the adapter kill tests")

// Main is TestMain for an adapter's tests: in a kill-test child (env names
// its WAL directory) it runs child and never returns; otherwise it runs the
// tests.
func Main(m *testing.M, env string, child func(dir string)) {
	if dir := os.Getenv(env); dir != "" {
		child(dir)
		return
	}
	os.Exit(m.Run())
}

// IDProp is the property that carries a call's id in the kill test.
const IDProp = "I"

// ChildWriters is how many goroutines log in a kill-test child.
const ChildWriters = 8

// Child is the body of a kill-test child process: it opens a sink on dir,
// lets setup build the adapter's log function, then calls it from
// ChildWriters goroutines forever, printing each id to stdout after the
// call returned (that is, after the adapter acknowledged it). log must put
// id in the event's IDProp property. Child never returns.
func Child(dir string, setup func(*audit.Sink) (log func(id string) error)) {
	sink, err := audit.New(audit.WithWAL(dir))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	log := setup(sink)
	var mu sync.Mutex
	for g := range ChildWriters {
		go func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("%d-%d", g, i)
				if err := log(id); err != nil {
					fmt.Fprintln(os.Stderr, "child log:", err)
					os.Exit(4)
				}
				mu.Lock()
				os.Stdout.WriteString(id + "\n")
				mu.Unlock()
			}
		}()
	}
	select {}
}

// Kill runs -kill.rounds rounds (default 10) of: start this test binary as a child with env set to
// a fresh WAL directory (TestMain must call Child when env is set), let it
// log for a random 0–150 ms after its first acknowledgement, SIGKILL it,
// reopen the WAL and check that every id the child printed is stored.
func Kill(t *testing.T, env string) {
	rounds := *killRounds
	if testing.Short() {
		t.Skip("spawns processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 9))
	total := 0
	for round := range rounds {
		dir := filepath.Join(t.TempDir(), "wal")
		acked := runAndKill(t, exe, env, dir, time.Duration(rng.IntN(150))*time.Millisecond)
		if len(acked) == 0 {
			t.Fatalf("round %d: nothing acknowledged", round)
		}
		sink, err := audit.New(audit.WithWAL(dir))
		if err != nil {
			t.Fatalf("round %d (seed %d): reopen after SIGKILL: %v", round, seed, err)
		}
		stored := map[string]bool{}
		for _, ev := range Events(t, sink) {
			if id, ok := ev.Properties[IDProp].(string); ok {
				stored[id] = true
			}
		}
		sink.Close()
		for id := range acked {
			if !stored[id] {
				t.Fatalf("round %d (seed %d): acknowledged event %s lost after SIGKILL", round, seed, id)
			}
		}
		total += len(acked)
	}
	t.Logf("%d rounds, %d acknowledged events, all present after SIGKILL", rounds, total)
}

func runAndKill(t *testing.T, exe, env, dir string, delay time.Duration) map[string]bool {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), env+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.AfterFunc(time.Minute, func() { cmd.Process.Signal(syscall.SIGKILL) })
	defer deadline.Stop()
	acked := map[string]bool{}
	var timer *time.Timer
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if timer == nil {
			timer = time.AfterFunc(delay, func() { cmd.Process.Signal(syscall.SIGKILL) })
			defer timer.Stop()
		}
		// A line cut by the kill is not an acknowledgement.
		var g, i int
		if line := sc.Text(); len(line) > 0 {
			if n, _ := fmt.Sscanf(line, "%d-%d", &g, &i); n == 2 && fmt.Sprintf("%d-%d", g, i) == line {
				acked[line] = true
			}
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("child did not die by SIGKILL: %v; stderr: %s", err, stderr.String())
	}
	return acked
}

// Goroutines is the concurrency of the overhead benchmark.
const Goroutines = 64

// Overhead benchmarks an adapter against writing audit.Event values
// directly, in the same run: b.N events through adapter (on its own sink)
// and b.N through direct (on another), each from Goroutines goroutines, in
// forty interleaved rounds that alternate which goes first, so that drift
// in the disk's speed falls on both alike. It reports both rates and
// "ratio" = adapter rate ÷ direct rate, the adapter overhead figure (1 means
// free).
func Overhead(b *testing.B, adapter func(*audit.Sink) func(i int) error, direct func(*audit.Sink) func(i int) error) {
	a := adapter(OpenSink(b))
	d := direct(OpenSink(b))
	const rounds = 40
	var ta, td time.Duration
	b.ResetTimer()
	for r := range rounds {
		n := b.N/rounds + boolInt(r < b.N%rounds)
		if r%2 == 0 {
			ta += parallel(b, n, a)
			td += parallel(b, n, d)
		} else {
			td += parallel(b, n, d)
			ta += parallel(b, n, a)
		}
	}
	b.StopTimer()
	ra := float64(b.N) / ta.Seconds()
	rd := float64(b.N) / td.Seconds()
	b.ReportMetric(ra, "adapter-events/s")
	b.ReportMetric(rd, "direct-events/s")
	b.ReportMetric(ra/rd, "ratio")
}

func boolInt(c bool) int {
	if c {
		return 1
	}
	return 0
}

// DirectWrite is the baseline for Overhead: Sink.Write of an event like
// the one the adapters' benchmarks log (message "user exported records",
// properties user=u-1 and count=i).
func DirectWrite(s *audit.Sink) func(i int) error {
	ctx := context.Background()
	return func(i int) error {
		_, err := s.Write(ctx, &audit.Event{
			Timestamp: time.Now(), Level: audit.LevelInformation,
			MessageTemplate: "user exported records", Message: "user exported records",
			Properties: map[string]any{"user": "u-1", "count": int64(i)},
		})
		return err
	}
}

// parallel runs fn for i in [1, n] from Goroutines goroutines and returns
// the elapsed time.
func parallel(b *testing.B, n int, fn func(i int) error) time.Duration {
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range Goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				if err := fn(int(i)); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
	return el
}
