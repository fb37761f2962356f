package cli_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/internal/testutil"
	"github.com/willibrandon/mtlog-audit/wal"
)

// skipTmuxEnv, set to 1, lets a developer without tmux skip the terminal
// UI tests; without it a missing tmux fails them (CI installs it).
const skipTmuxEnv = "MTLOG_AUDIT_SKIP_TMUX"

// tmux is a tmux server of the test's own (its own socket) with one
// session running a command in a window of a fixed size.
type tmux struct {
	t      *testing.T
	socket string
	last   string // the last screen captured
}

// startTmux starts command in a detached session of width×height.
func startTmux(t *testing.T, width, height int, command string) *tmux {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv(skipTmuxEnv) == "1" {
			t.Skipf("tmux is not installed and %s=1", skipTmuxEnv)
		}
		t.Fatalf("tmux is not installed: install it (apt-get install tmux; .ci/run does) or set %s=1 to skip the terminal UI tests", skipTmuxEnv)
	}
	x := &tmux{t: t, socket: fmt.Sprintf("mtlog-audit-test-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"))}
	x.run("new-session", "-d", "-s", "m", "-x", strconv.Itoa(width), "-y", strconv.Itoa(height), command)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last screen:\n%s", x.last)
		}
		exec.Command("tmux", "-L", x.socket, "kill-server").Run()
	})
	return x
}

func (x *tmux) run(args ...string) string {
	x.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", x.socket, "-f", "/dev/null"}, args...)...).CombinedOutput()
	if err != nil {
		x.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// screen captures the pane's text.
func (x *tmux) screen() string {
	x.last = x.run("capture-pane", "-p", "-t", "m")
	return x.last
}

// waitScreen waits until the screen satisfies cond, and returns it.
func (x *tmux) waitScreen(what string, cond func(screen string) bool) string {
	x.t.Helper()
	testutil.WaitFor(x.t, what, func() bool {
		if cond(x.screen()) {
			return true
		}
		time.Sleep(50 * time.Millisecond) // polling another process's screen
		return false
	})
	return x.last
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

var lastSeqRe = regexp.MustCompile(`last seq (\d+)`)

// screenSeq is the last sequence number the screen shows, 0 if none.
func screenSeq(screen string) uint64 {
	m := lastSeqRe.FindStringSubmatch(screen)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

// TestMonitorTUI (issue 20): the monitor's terminal UI, run by the binary
// in a tmux window of 100×30 while this process's sink writes the log,
// shows the live log and follows it; resized to 60×20 it fits the new
// width; a segment file that is not a segment, appearing after the sink
// closed, shows LOG DAMAGED on screen and does not end the UI; q quits
// with status 0.
func TestMonitorTUI(t *testing.T) {
	dir, s := signedSink(t, 20)
	writeLive(t, s, 2, 30, 0)
	x := startTmux(t, 100, 30, fmt.Sprintf("%s monitor --wal %s --interval 100ms; echo monitor exited $?; sleep 3600", shellQuote(bin), shellQuote(dir)))
	x.waitScreen("the first snapshot", func(sc string) bool {
		return strings.Contains(sc, "status:      OK  live:") && screenSeq(sc) >= 60
	})

	stop, acked := writeOn(t, s)
	testutil.WaitFor(t, "events written while monitored", func() bool { return acked.Load() > 200 })
	target := acked.Load()
	sc := x.waitScreen(fmt.Sprintf("seq %d on screen", target), func(sc string) bool { return screenSeq(sc) >= target })
	for _, want := range []string{"mtlog-audit monitor", "events/s:", "error ", "last event:", "live event", "segments:", "checkpoint:", "signed by: monitor.test+", "verified:    ok:", "disk:", "q quit"} {
		if !strings.Contains(sc, want) {
			t.Errorf("screen lacks %q", want)
		}
	}
	t.Logf("screen while the sink writes (go test -v shows it):\n%s", sc)
	stop()

	x.run("resize-window", "-t", "m", "-x", "60", "-y", "20")
	sc = x.waitScreen("the UI redrawn at 60 columns", func(sc string) bool {
		title, _, _ := strings.Cut(sc, "\n")
		return strings.HasPrefix(title, "mtlog-audit monitor") && strings.HasSuffix(strings.TrimRight(title, " "), "…")
	})
	for i, line := range strings.Split(sc, "\n") {
		if n := len([]rune(line)); n > 60 {
			t.Errorf("line %d is %d columns wide after the resize: %q", i, n, line)
		}
	}

	// Damage: after the sink closed (sealing its last segment), a file
	// named as the next segment appears that is no segment.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	n, _ := wal.ParseSegmentName(filepath.Base(segs[len(segs)-1]))
	if err := os.WriteFile(filepath.Join(dir, wal.SegmentName(n+1)), make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	x.run("resize-window", "-t", "m", "-x", "120", "-y", "30")
	sc = x.waitScreen("LOG DAMAGED on screen at 120 columns", func(sc string) bool {
		title, _, _ := strings.Cut(sc, "\n")
		return strings.Contains(sc, "status:      DAMAGED") && strings.HasSuffix(strings.TrimRight(title, " "), "UTC")
	})
	if !strings.Contains(sc, "! LOG DAMAGED") || !strings.Contains(sc, "'mtlog-audit recover'") || !strings.Contains(sc, "q quit") {
		t.Errorf("the damage is not shown as expected")
	}
	t.Logf("screen after the damage:\n%s", sc)
	x.run("send-keys", "-t", "m", "q")
	x.waitScreen("monitor to exit on q", func(sc string) bool { return strings.Contains(sc, "monitor exited") })
	if sc := x.last; !strings.Contains(sc, "monitor exited 0") {
		t.Errorf("monitor did not exit with status 0 on q")
	}
}
