package replica

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"

	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// rootsResult is what a keyless check of the stored checkpoints' roots
// found (see withStoredRoots).
type rootsResult struct {
	stored     int    // stored checkpoints that parse
	unreadable int    // stored checkpoints that do not parse (skipped)
	checked    int    // stored roots the records reproduced
	size       uint64 // the largest tree size checked
}

// withStoredRoots makes a verification without trusted keys compare the
// records with the roots of the stored checkpoints (parsed, signatures not
// checked: that needs a key), and report in res what it checked. A repair
// without a key uses it to tell which copy holds the records that the log
// signed. It is ignored when trusted keys are given (they check the roots
// and the signatures).
//
// extra are more stored checkpoints to check the records against (the
// entries of the other copies' checkpoints files): a repair must not choose
// the copy whose own checkpoints file was rewritten to match its records.
func withStoredRoots(res *rootsResult, extra [][]byte) VerifyOption {
	return func(c *verifyConfig) { c.storedRoots, c.extraRoots = res, extra }
}

// rootChecker recomputes the tree from the records and compares it with the
// stored checkpoints' roots as each size is reached.
type rootChecker struct {
	b    *integrity.Builder
	cps  []integrity.Checkpoint // sorted by size
	next int
	good uint64 // the largest size whose stored root was reproduced
	res  *rootsResult
}

// newRootChecker reads the stored checkpoints of dir (none if the file does
// not exist).
func newRootChecker(fsys vfs.FS, dir string, res *rootsResult, extra [][]byte) (*rootChecker, error) {
	*res = rootsResult{}
	raw, err := integrity.ReadCheckpointLog(fsys, filepath.Join(dir, checkpointsFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("audit: read checkpoints: %w", err)
	}
	rc := &rootChecker{b: integrity.NewBuilder(), res: res}
	seen := map[integrity.Checkpoint]bool{}
	for _, msg := range slices.Concat(raw, extra) {
		i := bytes.LastIndex(msg, []byte("\n\n"))
		if i < 0 {
			res.unreadable++
			continue
		}
		cp, err := integrity.ParseCheckpointBody(string(msg[:i+1]))
		if err != nil {
			res.unreadable++
			continue
		}
		key := integrity.Checkpoint{Size: cp.Size, Root: cp.Root}
		if seen[key] {
			continue // the same root in several copies
		}
		seen[key] = true
		rc.cps = append(rc.cps, cp)
	}
	res.stored = len(rc.cps)
	slices.SortStableFunc(rc.cps, func(a, b integrity.Checkpoint) int {
		switch {
		case a.Size < b.Size:
			return -1
		case a.Size > b.Size:
			return 1
		}
		return 0
	})
	for len(rc.cps) > rc.next && rc.cps[rc.next].Size == 0 {
		rc.next++ // the empty tree has no records to check
	}
	return rc, nil
}

// add appends a record and checks the stored roots of its tree size.
func (rc *rootChecker) add(rec wal.Record) *Problem {
	rc.b.Append(rec.Time, uint8(rec.Type), integrity.PayloadHash(rec.Payload))
	size := rc.b.Size()
	for rc.next < len(rc.cps) && rc.cps[rc.next].Size == size {
		cp := rc.cps[rc.next]
		rc.next++
		if rc.b.Root() != cp.Root {
			return &Problem{Code: integrity.CodeRecordsAltered, Index: rc.good, Exact: cp.Size == rc.good+1, RangeEnd: cp.Size,
				Detail: fmt.Sprintf("the records do not reproduce the root of the stored checkpoint for tree size %d (checked without a key: its signature was not checked); the stored roots up to tree size %d match, so the first altered record lies in [%d, %d)", cp.Size, rc.good, rc.good, cp.Size)}
		}
		rc.good = size
		rc.res.checked++
		rc.res.size = size
	}
	return nil
}

// finish reports a stored checkpoint that covers more records than the log
// holds.
func (rc *rootChecker) finish() *Problem {
	if rc.next < len(rc.cps) {
		cp := rc.cps[rc.next]
		return &Problem{Code: integrity.CodeTruncated, Index: rc.b.Size(), Exact: true,
			Detail: fmt.Sprintf("a stored checkpoint (signature not checked: no key) covers %d records but the log holds %d", cp.Size, rc.b.Size())}
	}
	return nil
}
