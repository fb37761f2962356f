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

// Roots is what a keyless check of the stored checkpoints' roots found
// (see Verifier and RootChecker).
type Roots struct {
	Stored     int    // stored checkpoints that parse
	Unreadable int    // stored checkpoints that do not parse (skipped)
	Checked    int    // stored roots the records reproduced
	Size       uint64 // the largest tree size checked
}

// RootChecker recomputes the tree from the records and compares it with the
// stored checkpoints' roots as each size is reached.
type RootChecker struct {
	b    *integrity.Builder
	cps  []integrity.Checkpoint // sorted by size
	next int
	good uint64 // the largest size whose stored root was reproduced
	res  *Roots
}

// NewRootChecker reads the stored checkpoints of dir (none if the file does
// not exist) and extra (the entries of the other copies' checkpoints files:
// a repair must not choose the copy whose own checkpoints file was
// rewritten to match its records). The checkpoints are parsed, their
// signatures not checked: that needs a key. It reports in res what it
// checked.
func NewRootChecker(fsys vfs.FS, dir string, res *Roots, extra [][]byte) (*RootChecker, error) {
	*res = Roots{}
	raw, err := integrity.ReadCheckpointLog(fsys, filepath.Join(dir, integrity.CheckpointsFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("audit: read checkpoints: %w", err)
	}
	rc := &RootChecker{b: integrity.NewBuilder(), res: res}
	seen := map[integrity.Checkpoint]bool{}
	for _, msg := range slices.Concat(raw, extra) {
		i := bytes.LastIndex(msg, []byte("\n\n"))
		if i < 0 {
			res.Unreadable++
			continue
		}
		cp, err := integrity.ParseCheckpointBody(string(msg[:i+1]))
		if err != nil {
			res.Unreadable++
			continue
		}
		key := integrity.Checkpoint{Size: cp.Size, Root: cp.Root}
		if seen[key] {
			continue // the same root in several copies
		}
		seen[key] = true
		rc.cps = append(rc.cps, cp)
	}
	res.Stored = len(rc.cps)
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

// Add appends a record and checks the stored roots of its tree size.
func (rc *RootChecker) Add(rec wal.Record) *integrity.Problem {
	rc.b.Append(rec.Time, uint8(rec.Type), integrity.PayloadHash(rec.Payload))
	size := rc.b.Size()
	for rc.next < len(rc.cps) && rc.cps[rc.next].Size == size {
		cp := rc.cps[rc.next]
		rc.next++
		if rc.b.Root() != cp.Root {
			return &integrity.Problem{Code: integrity.CodeRecordsAltered, Index: rc.good, Exact: cp.Size == rc.good+1, RangeEnd: cp.Size,
				Detail: fmt.Sprintf("the records do not reproduce the root of the stored checkpoint for tree size %d (checked without a key: its signature was not checked); the stored roots up to tree size %d match, so the first altered record lies in [%d, %d)", cp.Size, rc.good, rc.good, cp.Size)}
		}
		rc.good = size
		rc.res.Checked++
		rc.res.Size = size
	}
	return nil
}

// Finish reports a stored checkpoint that covers more records than the log
// holds.
func (rc *RootChecker) Finish() *integrity.Problem {
	if rc.next < len(rc.cps) {
		cp := rc.cps[rc.next]
		return &integrity.Problem{Code: integrity.CodeTruncated, Index: rc.b.Size(), Exact: true,
			Detail: fmt.Sprintf("a stored checkpoint (signature not checked: no key) covers %d records but the log holds %d", cp.Size, rc.b.Size())}
	}
	return nil
}
