package torture

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
)

// ChildReaderEnv, set to "1" beside ChildDirEnv and ChildSeedEnv, makes
// MaybeChild run ReaderMain instead of ChildMain.
const ChildReaderEnv = "MTLOG_AUDIT_TORTURE_CHILD_READER"

// ReaderMain is the reader process of Kill9DuringWrite: it reads the log
// in dir, which the child with this seed is writing, over and over, as an
// auditor would while the application runs: audit.Verify with the child's
// public key, audit.Verify without a key, and audit.Replay of every event.
// After each pass it prints one line on standard output: "ok RECORDS" when
// every read succeeded, or "alarm WHAT: ERROR" for the first that reported
// a problem (a false alarm: the writer only ever writes good data). It
// runs until it is killed (or for two minutes), and never returns.
func ReaderMain(dir string, seed int64) {
	time.AfterFunc(2*time.Minute, func() { os.Exit(5) })
	p := childParams(seed)
	ctx := context.Background()
	for {
		line := readOnce(ctx, dir, p.vkey)
		if _, err := os.Stdout.WriteString(line + "\n"); err != nil {
			os.Exit(6) // the parent is gone
		}
	}
}

// readOnce reads the live log once in each way ReaderMain does.
func readOnce(ctx context.Context, dir, vkey string) string {
	rep, err := audit.Verify(ctx, dir, audit.WithTrustedKeys(vkey))
	if err != nil || !rep.OK {
		return fmt.Sprintf("alarm verify --key: %v", alarmText(rep, err))
	}
	records := rep.Records
	if rep, err = audit.Verify(ctx, dir); err != nil || !rep.OK {
		return fmt.Sprintf("alarm verify: %v", alarmText(rep, err))
	}
	for _, err := range audit.Replay(ctx, dir, time.Time{}, time.Time{}) {
		if err != nil {
			return fmt.Sprintf("alarm replay: %v", err)
		}
	}
	return fmt.Sprintf("ok %d", records)
}

func alarmText(rep *audit.IntegrityReport, err error) string {
	if err != nil {
		return strings.ReplaceAll(err.Error(), "\n", " ")
	}
	return fmt.Sprintf("not OK: %+v", rep)
}

// liveReads is what the reader process beside a Kill9DuringWrite child
// reported.
type liveReads struct {
	mu     sync.Mutex
	passes int    // reads that succeeded
	alarms int    // reads that reported a problem
	first  string // the first alarm
}

// startReader starts cmd as a reader process (ReaderMain) and collects
// its reports, calling first once at the first (or when the reader ends
// without one), until stop is called, which kills it with SIGKILL, waits
// for it and returns what it reported.
func startReader(cmd *exec.Cmd, first func()) (stop func() (*liveReads, error), err error) {
	cmd.Env = append(cmd.Env, ChildReaderEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the reader: %w", err)
	}
	lr := &liveReads{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var once sync.Once
		defer once.Do(first)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lr.add(sc.Text())
			once.Do(first)
		}
		io.Copy(io.Discard, stdout)
	}()
	return func() (*liveReads, error) {
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			return lr, fmt.Errorf("the reader process ended by itself: %v; stderr: %s", err, strings.TrimSpace(stderr.String()))
		}
		return lr, nil
	}, nil
}

func (lr *liveReads) add(line string) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	switch {
	case strings.HasPrefix(line, "ok "):
		lr.passes++
	case strings.HasPrefix(line, "alarm "):
		lr.alarms++
		if lr.first == "" {
			lr.first = strings.TrimPrefix(line, "alarm ")
		}
	}
	// A line cut by the kill was never fully reported.
}
