package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/internal/cli"
	"github.com/willibrandon/mtlog-audit/internal/testutil"
)

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// followSeqs parses replay --json output: the seq of every complete line.
func followSeqs(t *testing.T, out string) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, line := range strings.Split(out, "\n") {
		if line == "" {
			continue
		}
		var ev struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			// The last line may be half written.
			if !strings.HasSuffix(out, line) {
				t.Fatalf("line %q: %v", line, err)
			}
			continue
		}
		seqs = append(seqs, ev.Seq)
	}
	return seqs
}

// writeLive writes events to s from several goroutines until each has
// written n (or, if d > 0, for d), and returns the acknowledged sequence
// numbers.
func writeLive(t *testing.T, s *audit.Sink, writers, n int, d time.Duration) map[uint64]bool {
	t.Helper()
	var mu sync.Mutex
	acked := map[uint64]bool{}
	var wg sync.WaitGroup
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; (d == 0 && i < n) || (d > 0 && time.Since(start) < d); i++ {
				r, err := s.Write(context.Background(), &audit.Event{Timestamp: time.Now(), Level: audit.LevelInformation,
					MessageTemplate: "writer {W} event {I}", Properties: map[string]any{"W": w, "I": i, "Pad": strings.Repeat("x", 200)}})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[r.Seq] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return acked
}

// checkFollowed checks that seqs are strictly increasing and hold every
// acknowledged event exactly once, and no other.
func checkFollowed(t *testing.T, seqs []uint64, acked map[uint64]bool) {
	t.Helper()
	seen := map[uint64]bool{}
	for i, s := range seqs {
		if i > 0 && s <= seqs[i-1] {
			t.Fatalf("seq %d after %d: not in sequence order", s, seqs[i-1])
		}
		if !acked[s] {
			t.Errorf("seq %d printed but not acknowledged", s)
		}
		seen[s] = true
	}
	for s := range acked {
		if !seen[s] {
			t.Errorf("acknowledged seq %d not printed", s)
		}
	}
}

func maxSeq(acked map[uint64]bool) uint64 {
	var m uint64
	for s := range acked {
		m = max(m, s)
	}
	return m
}

func hasSeq(out string, seq uint64) bool {
	return strings.Contains(out, fmt.Sprintf(`{"seq":%d,`, seq))
}

// TestFollowLiveRotations (issue 15): replay --follow --json, run in this
// process while a sink here writes from several goroutines and rotates
// its segments, prints every acknowledged event exactly once, in sequence
// order, with no error, and exits 0 when its context is canceled.
func TestFollowLiveRotations(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	s, err := audit.New(audit.WithWAL(dir, audit.WithSegmentSize(16<<10)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int)
	go func() {
		done <- cli.Run(ctx, []string{"replay", "--wal", dir, "--follow", "--json", "--poll", "5ms"}, nil, &out, &errb)
	}()
	acked := writeLive(t, s, 4, 150, 0)
	last := maxSeq(acked)
	testutil.WaitFor(t, fmt.Sprintf("seq %d in the output", last), func() bool { return hasSeq(out.String(), last) })
	cancel()
	if code := <-done; code != 0 || errb.String() != "" {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	checkFollowed(t, followSeqs(t, out.String()), acked)
	if segs := segments(t, dir); len(segs) < 3 {
		t.Errorf("%d segments: fewer than 2 rotations", len(segs))
	}
}

// TestFollowOtherProcess (issue 15): the mtlog-audit binary follows, for a
// few seconds, a log that this process writes (so reader and writer are
// two processes, and the reader sees writes half done), with no false
// alarm; SIGINT ends it with status 0 after printing everything.
func TestFollowOtherProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	s, err := audit.New(audit.WithWAL(dir, audit.WithSegmentSize(32<<10)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cmd := exec.Command(bin, "replay", "--wal", dir, "-f", "--json", "--poll", "1ms")
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	acked := writeLive(t, s, 3, 0, 3*time.Second)
	last := maxSeq(acked)
	testutil.WaitFor(t, fmt.Sprintf("seq %d in the output", last), func() bool { return hasSeq(out.String(), last) || errb.String() != "" })
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if err != nil || errb.String() != "" {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	checkFollowed(t, followSeqs(t, out.String()), acked)
	if segs := segments(t, dir); len(segs) < 3 {
		t.Errorf("%d segments: fewer than 2 rotations", len(segs))
	}
}

// TestFollowUsage (issue 15): --follow on a directory that is not a log
// is a usage error (2), as are flags that make no sense with it.
func TestFollowUsage(t *testing.T) {
	for _, dir := range []string{notALogDir(t), t.TempDir()} {
		r := run(t, "", "replay", "--wal", dir, "--follow")
		if r.code != 2 || !strings.Contains(r.stderr, "is not an mtlog-audit log (no segment files)") {
			t.Errorf("not a log: exit %d\n%s", r.code, r.stderr)
		}
	}
	for _, args := range [][]string{
		{"--follow", "--output", filepath.Join(t.TempDir(), "x")},
		{"--follow", "--until", "1h"},
		{"--follow", "--poll", "0s"},
		{"--poll", "1s"},
	} {
		r := run(t, "", append([]string{"replay", "--wal", "wal"}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, "--help") {
			t.Errorf("%v: exit %d\n%s", args, r.code, r.stderr)
		}
	}
}

// TestFollowDamage (issue 15): damage that cannot be a write in progress
// ends --follow with status 1 after every event before it: in a segment
// that another follows at once, and in the last segment (a later batch
// was written after the damaged one) after a poll or two.
func TestFollowDamage(t *testing.T) {
	for _, which := range []int{0, 2} {
		dir := copyFixture(t)
		seg := segments(t, dir)[which]
		data, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		data[1024+100] ^= 0x01 // inside the second batch
		if err := os.WriteFile(seg, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r := run(t, "", "replay", "--wal", dir, "--follow", "--json", "--poll", "10ms")
		if r.code != 1 || !strings.Contains(r.stderr, "corrupt") || !strings.Contains(r.stderr, "not a write in progress") {
			t.Errorf("segment %d: exit %d\n%s", which+1, r.code, r.stderr)
		}
		seqs := followSeqs(t, r.stdout)
		if len(seqs) == 0 {
			t.Errorf("segment %d: nothing printed before the damage", which+1)
		}
	}
}

// TestFollowCancel (issue 15): canceling --follow (Ctrl-C) exits 0 with
// everything read so far printed; --last N prints the last N first.
func TestFollowCancel(t *testing.T) {
	dir := copyFixture(t)
	for _, tc := range []struct {
		args []string
		want int
	}{{nil, 40}, {[]string{"--last", "5"}, 5}, {[]string{"--filter", "level >= ERROR"}, 4}, {[]string{"--since", "2026-01-02T03:40:00Z"}, 4}} {
		ctx, cancel := context.WithCancel(t.Context())
		var out, errb syncBuffer
		done := make(chan int)
		go func() {
			done <- cli.Run(ctx, append([]string{"replay", "--wal", dir, "--follow", "--json"}, tc.args...), nil, &out, &errb)
		}()
		testutil.WaitFor(t, "the fixture's events", func() bool { return len(followSeqs(t, out.String())) >= tc.want })
		cancel()
		if code := <-done; code != 0 || errb.String() != "" {
			t.Fatalf("%v: exit %d\n%s", tc.args, code, errb.String())
		}
		if seqs := followSeqs(t, out.String()); len(seqs) != tc.want || seqs[len(seqs)-1] != 42 {
			t.Errorf("%v: %v", tc.args, seqs)
		}
	}
}
