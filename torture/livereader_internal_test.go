package torture

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"testing"
)

// TestKill9ReadsTheLiveLog: every Kill9DuringWrite round runs a reader
// process beside the writer, which reads the live log at least once
// before the kill, and a false alarm it reports fails the round.
func TestKill9ReadsTheLiveLog(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	it := Iteration{Seed: 14, TempDir: t.TempDir(), ChildCommand: ChildCommand(os.Args[0], "-test.run=^$")}
	out := Kill9DuringWrite{}.Run(context.Background(), it)
	if !out.Pass {
		t.Fatalf("round failed: %s", out.Detail)
	}
	m := regexp.MustCompile(`; (\d+) reads of the live log, no false alarm`).FindStringSubmatch(out.Detail)
	if m == nil {
		t.Fatalf("the round does not report its reads of the live log: %s", out.Detail)
	}
	if n, _ := strconv.Atoi(m[1]); n < 1 {
		t.Fatalf("the reader read the live log %d times before the kill, want at least once: %s", n, out.Detail)
	}

	lr := &liveReads{}
	for _, line := range []string{"ok 12", "alarm verify: wal: corrupt: ...", "ok 1", "alarm replay: second", "alar"} {
		lr.add(line)
	}
	if lr.passes != 2 || lr.alarms != 2 || lr.first != "verify: wal: corrupt: ..." {
		t.Fatalf("liveReads = %+v: want 2 passes, 2 alarms, the first kept (a cut line ignored)", lr)
	}
}
