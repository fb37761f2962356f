package torture

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// Environment variables through which ChildCommand tells a process to be a
// Kill9DuringWrite child (see MaybeChild).
const (
	ChildDirEnv  = "MTLOG_AUDIT_TORTURE_CHILD_DIR"
	ChildSeedEnv = "MTLOG_AUDIT_TORTURE_CHILD_SEED"
)

// ChildCommand returns a Config.ChildCommand that runs the program exe with
// args, telling it through the environment (ChildDirEnv, ChildSeedEnv) to
// run ChildMain. The program must call MaybeChild first thing: a test
// binary in its TestMain (with args "-test.run=^$"), the mtlog-audit
// command in main.
func ChildCommand(exe string, args ...string) func(dir string, seed int64) *exec.Cmd {
	return func(dir string, seed int64) *exec.Cmd {
		cmd := exec.Command(exe, args...)
		cmd.Env = append(os.Environ(), ChildDirEnv+"="+dir, ChildSeedEnv+"="+strconv.FormatInt(seed, 10))
		return cmd
	}
}

// MaybeChild returns at once unless the environment says this process is
// a Kill9DuringWrite child (see ChildCommand); then it runs ChildMain (or
// ReaderMain, for the reader process beside it) and never returns.
func MaybeChild() {
	dir := os.Getenv(ChildDirEnv)
	if dir == "" {
		return
	}
	seed, err := strconv.ParseInt(os.Getenv(ChildSeedEnv), 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "torture child: bad %s: %v\n", ChildSeedEnv, err)
		os.Exit(2)
	}
	if os.Getenv(ChildReaderEnv) == "1" {
		ReaderMain(dir, seed)
	}
	ChildMain(dir, seed)
}

// childSetup is what a child's seed determines.
type childSetup struct {
	goroutines int
	segSize    int64
	cpEvery    int
	skey, vkey string
}

func childParams(seed int64) childSetup {
	rng := newRand(uint64(seed) ^ 0xc41d)
	skey, vkey := keyPair(seed)
	return childSetup{goroutines: 4 + rng.IntN(29), segSize: 16<<10 + rng.Int64N(64<<10), cpEvery: 1 + rng.IntN(32), skey: skey, vkey: vkey}
}

// childEvent is event i of goroutine g of the child with this seed; the
// parent rebuilds it to compare bytes.
func childEvent(seed int64, g, i int) *audit.Event {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(g)<<32|uint64(i)))
	return makeEvent(rng, g, i, time.Unix(1_700_000_000+int64(i), int64(g)).UTC())
}

// ChildMain is the child process of Kill9DuringWrite. It opens a Sink on
// the directory dir of the operating system's filesystem, with a signing
// key, segment size, checkpoint frequency and number of goroutines all
// derived from seed, and writes events from every goroutine as fast as the
// log acknowledges them. For each acknowledgement it prints a line
// "SEQ G I SHA256" (the sequence number, the goroutine, the event's number
// in it, and the hex SHA-256 of the stored bytes) on standard output, with
// one write, after Write returned. It runs until it is killed (or for two
// minutes, in case the parent is gone), and never returns.
func ChildMain(dir string, seed int64) {
	time.AfterFunc(2*time.Minute, func() { os.Exit(5) })
	p := childParams(seed)
	sink, err := audit.New(audit.WithWAL(dir, audit.WithSegmentSize(p.segSize)), audit.WithSigningKey(p.skey),
		audit.WithCheckpoints(p.cpEvery, 5*time.Millisecond, time.Hour))
	if err != nil {
		fmt.Fprintln(os.Stderr, "torture child:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	for g := range p.goroutines {
		go func() {
			for i := 0; ; i++ {
				ev := childEvent(seed, g, i)
				r, err := sink.Write(context.Background(), ev)
				if err != nil {
					fmt.Fprintln(os.Stderr, "torture child: write:", err)
					os.Exit(4)
				}
				sum := sha256.Sum256(encode(ev))
				line := fmt.Sprintf("%d %d %d %s\n", r.Seq, g, i, hex.EncodeToString(sum[:]))
				mu.Lock()
				_, err = os.Stdout.WriteString(line)
				mu.Unlock()
				if err != nil {
					os.Exit(6) // the parent is gone
				}
			}
		}()
	}
	select {}
}

// Kill9DuringWrite runs a real child process (ChildMain) that writes
// through a Sink from many goroutines, with small segments and a signed
// checkpoint every few records, and reports every acknowledged event on
// its standard output; it is killed with SIGKILL at a random moment after
// its first acknowledgement (often during a rotation or a checkpoint).
// Beside it, from its first acknowledgement until it is killed, a second
// process (ReaderMain) reads the live log over and over with
// audit.Verify (with and without the key) and audit.Replay.
//
// Pass: the reader never reports a problem (the writer writes only good
// data, so any is a false alarm); the killed log verifies with the public
// key as it is (read only); it reopens without error; every acknowledged
// event is present under its sequence number, byte-identical to the event
// the child wrote and to the hash it reported; and after Close the log
// verifies with every record covered by a signed checkpoint.
type Kill9DuringWrite struct{}

// Name returns "Kill9DuringWrite".
func (Kill9DuringWrite) Name() string { return "Kill9DuringWrite" }

// Doc describes the scenario and its pass criteria.
func (Kill9DuringWrite) Doc() string {
	return "A child process writes through a Sink on the real filesystem from 4-32 goroutines (small segments, signed checkpoints every " +
		"few records) and reports each acknowledged seq and payload hash; it is SIGKILLed at a random moment after its first " +
		"acknowledgement. Beside it a reader process loops Verify (with and without the key) and Replay over the live log. " +
		"Pass: the reader never reports a problem (no false alarm on a live log); the killed log verifies with the key as it is; it reopens; " +
		"every acknowledged event is present and byte-identical (to the rebuilt event and the reported hash); after Close it verifies " +
		"with every record covered."
}

type childAck struct {
	g, i int
	hash string
}

// Run runs one iteration.
func (Kill9DuringWrite) Run(ctx context.Context, it Iteration) Outcome {
	if it.ChildCommand == nil {
		return skipped("no way to start a child process: set Config.ChildCommand (torture.ChildCommand) and call torture.MaybeChild in the program")
	}
	rng := it.Rand()
	delay := time.Duration(rng.IntN(200)) * time.Millisecond
	p := childParams(it.Seed)
	setup := fmt.Sprintf("%d goroutines, segment size %d, checkpoint every %d, SIGKILL %v after the first acknowledgement", p.goroutines, p.segSize, p.cpEvery, delay)
	tmp, err := os.MkdirTemp(it.TempDir, "torture-kill9-")
	if err != nil {
		return skipped("temporary directory: %v", err)
	}
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(tmp)
		}
	}()
	dir := filepath.Join(tmp, "wal")
	acked, reads, err := runAndKill(ctx, it.ChildCommand(dir, it.Seed), it.ChildCommand(dir, it.Seed), delay)
	if ctx.Err() != nil {
		return skipped("cancelled")
	}
	if err != nil {
		keep = true
		return failed(1, len(acked), "%v (%s; log kept in %s)", err, setup, dir)
	}
	if len(acked) == 0 {
		return failed(1, 0, "the child acknowledged nothing (%s)", setup)
	}
	if reads.alarms > 0 {
		keep = true
		return failed(1, len(acked), "false alarm: %d of %d reads of the live log reported a problem; the first: %s (%s; log kept in %s)",
			reads.alarms, reads.alarms+reads.passes, reads.first, setup, dir)
	}
	if msg := checkKilled(ctx, dir, it.Seed, p, acked); msg != "" {
		keep = true
		return failed(1, len(acked), "%s (%s; log kept in %s)", msg, setup, dir)
	}
	return passed(1, len(acked), "%d acknowledged events survived SIGKILL; %d reads of the live log, no false alarm (%s)", len(acked), reads.passes, setup)
}

// runAndKill starts cmd, kills it with SIGKILL delay after its first
// acknowledgement (and the reader's first report), and returns what it
// acknowledged. From that first
// acknowledgement until cmd is dead, reader runs as a reader process
// (ReaderMain) beside it; runAndKill then kills the reader too (before
// anything reopens the log) and returns what it reported.
func runAndKill(ctx context.Context, cmd, reader *exec.Cmd, delay time.Duration) (map[uint64]childAck, *liveReads, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start the child: %w", err)
	}
	kill := func() { cmd.Process.Signal(syscall.SIGKILL) }
	// A child that never writes must not hang the run.
	deadline := time.AfterFunc(time.Minute, kill)
	defer deadline.Stop()
	stopCtx := context.AfterFunc(ctx, kill)
	defer stopCtx()
	acked := map[uint64]childAck{}
	var timer *time.Timer
	sc := bufio.NewScanner(stdout)
	var stopReader func() (*liveReads, error)
	var readerErr error
	// The kill waits for the delay and for the reader's first report, so
	// that every round reads the live log at least once.
	var pending atomic.Int32
	pending.Store(2)
	arm := func() {
		if pending.Add(-1) == 0 {
			kill()
		}
	}
	for sc.Scan() {
		if timer == nil {
			timer = time.AfterFunc(delay, arm)
			defer timer.Stop()
			if stopReader, readerErr = startReader(reader, arm); readerErr != nil {
				arm()
			}
		}
		f := strings.Fields(sc.Text())
		if len(f) != 4 || len(f[3]) != 64 {
			continue // a line cut by the kill was never fully reported
		}
		seq, err1 := strconv.ParseUint(f[0], 10, 64)
		g, err2 := strconv.Atoi(f[1])
		i, err3 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		acked[seq] = childAck{g, i, f[3]}
	}
	err = cmd.Wait()
	reads := &liveReads{}
	if stopReader != nil {
		reads, readerErr = stopReader()
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		return acked, reads, fmt.Errorf("the child did not die by SIGKILL: %v; stderr: %s", err, strings.TrimSpace(stderr.String()))
	}
	return acked, reads, readerErr
}

// checkKilled checks the log a killed child left.
func checkKilled(ctx context.Context, dir string, seed int64, p childSetup, acked map[uint64]childAck) string {
	fsys := vfs.OS()
	if _, err := verify(ctx, fsys, dir, p.vkey, false); err != nil {
		return fmt.Sprintf("the killed log, as it is: %v", err)
	}
	sink, err := audit.New(audit.WithWAL(dir), audit.WithSigningKey(p.skey))
	if err != nil {
		return fmt.Sprintf("reopen after SIGKILL: %v", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Sprintf("close after reopening: %v", err)
	}
	if _, err := verify(ctx, fsys, dir, p.vkey, true); err != nil {
		return fmt.Sprintf("after reopen and close: %v", err)
	}
	got, _, err := readLog(ctx, fsys, dir)
	if err != nil {
		return fmt.Sprintf("read after reopen: %v", err)
	}
	for seq, a := range acked {
		r, ok := got[seq]
		if !ok {
			return fmt.Sprintf("acknowledged event %d (goroutine %d, #%d) is missing (the log holds %d records)", seq, a.g, a.i, len(got))
		}
		sum := sha256.Sum256(r.Payload)
		if hex.EncodeToString(sum[:]) != a.hash {
			return fmt.Sprintf("acknowledged event %d (goroutine %d, #%d) was altered: its hash differs from the one the child reported", seq, a.g, a.i)
		}
		if !bytes.Equal(r.Payload, encode(childEvent(seed, a.g, a.i))) {
			return fmt.Sprintf("acknowledged event %d (goroutine %d, #%d) differs from the event the child wrote", seq, a.g, a.i)
		}
	}
	return ""
}
