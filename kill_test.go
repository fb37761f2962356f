package audit_test

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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

var killRounds = flag.Int("kill.rounds", 50, "SIGKILL rounds in TestKill9")

const childEnv = "MTLOG_AUDIT_KILL_CHILD"

// killEvent is the event a child writes as number i of goroutine g: the
// parent rebuilds it to compare bytes.
func killEvent(g, i int) *audit.Event {
	return &audit.Event{
		Timestamp:       time.Unix(1_700_000_000+int64(i), int64(g)).UTC(),
		Level:           audit.LevelInformation,
		MessageTemplate: "User {UserId} did {Action} #{N}",
		Message:         fmt.Sprintf("User u-%d did write #%d", g, i),
		Properties: map[string]any{
			"UserId": fmt.Sprintf("u-%d", g), "Action": "write", "N": i,
			"Blob": bytes.Repeat([]byte{byte(g)}, i%200), "Amount": float64(i) / 3,
		},
	}
}

// TestMain turns the test binary into the child process when asked.
func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		killChild(dir)
		return
	}
	if dir := os.Getenv(liveChildEnv); dir != "" {
		liveChild(dir)
		return
	}
	if dir := os.Getenv(shipChildEnv); dir != "" {
		shipChild(dir)
		return
	}
	if dir := os.Getenv(shredChildEnv); dir != "" {
		shredChild(dir)
		return
	}
	os.Exit(m.Run())
}

// killChild writes events from many goroutines and reports each
// acknowledged one on stdout as "seq g i". It runs until killed.
func killChild(dir string) {
	seg, _ := strconv.ParseInt(os.Getenv(childEnv+"_SEG"), 10, 64)
	sink, err := audit.New(audit.WithWAL(dir, audit.WithSegmentSize(seg)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	out := bufio.NewWriterSize(os.Stdout, 0)
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				r, err := sink.Write(context.Background(), killEvent(g, i))
				if err != nil {
					fmt.Fprintln(os.Stderr, "child write:", err)
					os.Exit(4)
				}
				mu.Lock()
				fmt.Fprintf(out, "%d %d %d\n", r.Seq, g, i)
				out.Flush()
				mu.Unlock()
			}
		}(g)
	}
	wg.Wait()
}

// TestKill9 runs a real child process that writes through audit.Sink and
// reports each acknowledged sequence number over a pipe, kills it with
// SIGKILL at a random moment (often during segment rotation, as segments are
// small), reopens the log and checks that every acknowledged event is
// present, byte for byte, and that the log verifies.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	for round := 0; round < *killRounds; round++ {
		dir := filepath.Join(t.TempDir(), "wal")
		delay := time.Duration(rng.IntN(150)) * time.Millisecond
		seg := int64(16<<10 + rng.IntN(64<<10))
		acked := runAndKill(t, exe, dir, seg, delay)
		if len(acked) == 0 {
			t.Fatalf("round %d: child acknowledged nothing in %v", round, delay)
		}
		sink, err := audit.New(audit.WithWAL(dir))
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		rep, err := sink.VerifyIntegrity()
		if err != nil || !rep.OK {
			t.Fatalf("round %d: verify after SIGKILL: %v %+v", round, err, rep)
		}
		sink.Close()
		stored := map[uint64][]byte{}
		if _, err := wal.Check(context.Background(), vfs.OS(), dir, func(r wal.Record) error {
			if r.Type == wal.RecordEvent {
				stored[r.Seq] = bytes.Clone(r.Payload)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for seq, gi := range acked {
			want, _ := event.AppendEncode(nil, killEvent(gi[0], gi[1]))
			if !bytes.Equal(stored[seq], want) {
				t.Fatalf("round %d: acknowledged event %d (goroutine %d, #%d) lost or altered after SIGKILL", round, seq, gi[0], gi[1])
			}
		}
	}
}

func runAndKill(t *testing.T, exe, dir string, seg int64, delay time.Duration) map[uint64][2]int {
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir, fmt.Sprintf("%s_SEG=%d", childEnv, seg))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[uint64][2]int{}
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// The kill comes at a random moment after the child's first
	// acknowledgement (a slow start, as under the race detector, must not
	// make a round test nothing); a deadline guards against a child that
	// never writes.
	deadline := time.AfterFunc(time.Minute, func() { cmd.Process.Signal(syscall.SIGKILL) })
	defer deadline.Stop()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for line := range lines {
		if timer == nil {
			timer = time.AfterFunc(delay, func() { cmd.Process.Signal(syscall.SIGKILL) })
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			continue // a line cut by the kill was never fully reported
		}
		seq, _ := strconv.ParseUint(f[0], 10, 64)
		g, _ := strconv.Atoi(f[1])
		i, _ := strconv.Atoi(f[2])
		acked[seq] = [2]int{g, i}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("child did not die by SIGKILL: %v; stderr: %s", err, stderr.String())
	}
	return acked
}
