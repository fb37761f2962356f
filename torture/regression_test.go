package torture_test

import (
	"context"
	"testing"

	"github.com/willibrandon/mtlog-audit/torture"
)

// Regressions found by the suite, each replayed by its seed. Each ran in
// the suite's own pass criteria before it was fixed in the library.
var regressions = []struct {
	scenario string
	seed     int64
	runs     int // repeats: the failure also depended on timing
	what     string
}{
	// A full disk during a tree-node flush or a checkpoint append left a
	// sticky error in the integrity layer: the next commit failed the WAL
	// for good, so freeing space did not let the Sink resume. Seed 1 failed
	// 8 of 8 runs before the fix (internal/ledger: a full disk only delays the
	// tree and the checkpoint; integrity/cplog.go: a failed write is undone
	// and may be retried).
	{"DiskFull", 1, 20, "ENOSPC in tree.nodes or checkpoints failed the Sink for good"},
	// The short-write rule of recovery (a header sector that is zero after
	// the header is a torn tail) sliced a sector that a truncation had cut
	// shorter than the header: a panic in Open and Verify. These seeds
	// panicked before the fix (wal/scan.go: the rule needs a whole sector).
	{"RandomCorruption", 2449617286158061776, 1, "recovery panicked on a segment truncated inside a batch header"},
	{"RandomCorruption", -8457471309136789687, 1, "recovery panicked on a segment truncated inside a batch header"},
	{"RandomCorruption", 2564728244612581659, 1, "recovery panicked on a segment truncated inside a batch header"},
	// A write cut short by a full disk after the batch header (in a record
	// or the padding), into zeros filled ahead, and power lost before the
	// failed write was undone: recovery called it damage (commit bcaf944,
	// iteration 163,634 of the million). The seed depends on timing and did
	// not fail in 10 replays; wal.TestShortWriteAfterHeader reproduces the
	// failure deterministically (wal/scan.go: shortWrite).
	{"DiskFull", 2931935842362945523, 20, "a write cut short after its batch header read as damage"},
	// After healing, WaitShipped returned while no backend held the sealed
	// segments (the clean-clone CI pass of 2026-12-02, 1 of 100). The
	// shipper remembered a segment as unsealed, and WaitHeld measured what
	// to wait for from that memory (replica/shipper.go: WaitHeld reads the
	// seals from the files; a seal read after a notification is kept). The
	// seed depends on timing and did not fail in replays;
	// replica.TestWaitHeldSeesSealTheTargetsMissed reproduces it
	// deterministically.
	{"ByzantineBackend", -3710304253121626114, 10, "WaitShipped returned before the quorum held the sealed segments"},
	// After healing, WaitShipped returned while every backend lacked the
	// newest checkpoint (iteration 1,318 of 3,000 on a loaded machine,
	// after the fix above). A checkpoint notified while the shipper was
	// loading the checkpoints file was dropped, and WaitHeld counted the
	// checkpoints to wait for in memory (replica/shipper.go: notifications
	// during the load are kept; WaitHeld reads the file). Timing again;
	// replica.TestWaitHeldSeesCheckpointTheTargetsMissed reproduces it.
	{"NetworkPartition", -1983303817412837017, 10, "WaitShipped returned before the quorum held the newest checkpoint"},
	// The same signature, in a 7,103-iteration run on a branch without the
	// two fixes above (iteration 1,004, seed 20261202).
	{"NetworkPartition", -8350029258139648420, 10, "WaitShipped returned before the quorum held everything"},
	// A power cut after retention had deleted exactly the records the last
	// signed checkpoint covered, with later records not signed yet (the
	// checkpointer had fallen behind on a loaded CI machine): open read
	// "the last covered record" again, got the first retained one, and
	// refused the healthy log as one whose end was replaced
	// (internal/ledger/tag.go: the chain resumes at the retention
	// checkpoint). Timing again; audit.TestRetentionPrunedThroughLastCheckpoint
	// builds the state deterministically.
	{"RetentionCrash", -3901056821111587982, 10, "open refused a log pruned through its last signed checkpoint"},
	// After the crash, a backend held a sealed segment the crashed machine
	// never had (the clean-clone CI rehearsal of 2026-12-02, 1 of 100):
	// the scenario's network weather could heal a backend between the
	// crash cutting every network and marking the crash, so the shipper,
	// still running in the simulation after the simulated power cut,
	// shipped what Close sealed afterwards. A fault of the harness, not of
	// the shipper (torture/shipping.go: the weather never heals a network
	// the crash cut). Timing again.
	{"NetworkPartition", -6810585326875106178, 10, "a backend held a segment sealed after the simulated crash"},
	// Three mirrors, quorum 3: mirror1's disk filled 6 bytes before the
	// end of the batch of the second event, whose write then failed (the
	// quorum was lost) and was undone in the primary only: mirror1, stale,
	// kept the batch, which reads as damage (a write cut short needs 8 zero
	// bytes to be called torn), so no copy held record 2 whole, yet
	// aggressive salvage read it. Reopening refused with ErrDiverged (the
	// clean-clone CI rehearsal of 2026-12-02; deterministic). Fixed in
	// replica/reconcile_drop.go: with a quorum of 2 or more, a record no
	// copy holds whole and the primary verifies without is left out as
	// never acknowledged, and reported.
	// replica.TestReconcileDropsRecordCutShortInAStaleMirror builds the state.
	{"HungMirror", -8696822878235521766, 3, "reopen refused a record cut short in a stale mirror, never acknowledged"},
}

func TestRegressions(t *testing.T) {
	for _, r := range regressions {
		scen, err := torture.Lookup([]string{r.scenario})
		if err != nil {
			t.Fatal(err)
		}
		for i := range r.runs {
			out := scen[0].Run(context.Background(), torture.Iteration{Seed: r.seed, Index: 0, TempDir: t.TempDir()})
			if !out.Pass && !out.Skipped {
				t.Fatalf("%s seed %d run %d (%s): %s", r.scenario, r.seed, i, r.what, out.Detail)
			}
		}
	}
}
