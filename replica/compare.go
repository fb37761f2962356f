package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"

	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// DiffKind is the kind of a difference between a local log and a backend.
type DiffKind string

// The differences Compare reports.
const (
	// DiffMissingRemote: a local segment or checkpoint the backend does not
	// hold.
	DiffMissingRemote DiffKind = "missing-remote"
	// DiffMissingLocal: an object of the backend whose segment or
	// checkpoint the local log does not hold (a rollback or deletion).
	DiffMissingLocal DiffKind = "missing-local"
	// DiffBytes: the remote object is not a prefix of the local segment
	// (the local or the remote bytes were altered; Offset is the first
	// byte that differs).
	DiffBytes DiffKind = "bytes-differ"
	// DiffLocalShorter: the local segment is a strict prefix of the remote
	// object (the local log was truncated).
	DiffLocalShorter DiffKind = "local-shorter"
	// DiffBadObject: the object cannot be read, or its bytes do not match
	// the hash its name carries.
	DiffBadObject DiffKind = "bad-object"
)

// Diff is one difference between a local log and a backend.
type Diff struct {
	Kind    DiffKind
	Segment uint64 // the segment number (0 for a checkpoint)
	Key     string // the object's key ("" when the backend holds none)
	Offset  int64  // DiffBytes: the first differing byte
	Detail  string // for people
}

// Comparison is the result of Compare.
type Comparison struct {
	Backend  string
	Segments int    // segment numbers compared
	Matching int    // segments whose every remote version is a prefix of the local file
	Diffs    []Diff // every difference, by segment number
	// Pending is set when the last local segment is not (yet) shipped: it
	// is shipped when sealed, so this is not a difference.
	Pending uint64
}

// Compare compares the log in dir with what backend b holds, segment by
// segment and checkpoint by checkpoint, and names every difference: a
// segment or checkpoint missing on either side, a remote version that is
// not a byte prefix of the local segment (a shorter remote version of a
// segment continued after an interior seal is a prefix, and no
// difference), and an object whose bytes do not match its name.
func Compare(ctx context.Context, fsys vfs.FS, dir string, b backends.Backend) (*Comparison, error) {
	names, err := fsys.List(dir)
	if err != nil {
		return nil, fmt.Errorf("replica: compare: %w", err)
	}
	var local []uint64
	for _, n := range names {
		if num, ok := wal.ParseSegmentName(n); ok {
			local = append(local, num)
		}
	}
	slices.Sort(local)
	ro, err := listRemote(ctx, b)
	if err != nil {
		return nil, err
	}
	if len(ro.segs)+len(ro.cps)+len(ro.bad) == 0 {
		return nil, fmt.Errorf("%w: %s holds no object under %s or %s (check the URL's bucket and prefix, and that the sink ships to it)", ErrEmptyBackend, b.Name(), SegmentsPrefix, CheckpointsPrefix)
	}
	c := &Comparison{Backend: b.Name()}
	for _, bo := range ro.bad {
		c.Diffs = append(c.Diffs, Diff{Kind: DiffBadObject, Key: bo.Key, Detail: bo.Reason})
	}
	remote := map[uint64][]SegmentObject{}
	for _, o := range ro.segs {
		remote[o.Segment] = append(remote[o.Segment], o)
	}
	all := slices.Sorted(func(yield func(uint64) bool) {
		seen := map[uint64]bool{}
		for _, n := range local {
			seen[n] = true
		}
		for n := range remote {
			seen[n] = true
		}
		for n := range seen {
			if !yield(n) {
				return
			}
		}
	})
	for _, n := range all {
		c.Segments++
		var data []byte
		if slices.Contains(local, n) {
			if data, err = vfs.ReadFile(fsys, filepath.Join(dir, wal.SegmentName(n))); err != nil {
				return nil, fmt.Errorf("replica: compare: %w", err)
			}
		}
		objs := remote[n]
		if data == nil {
			for _, o := range objs {
				c.Diffs = append(c.Diffs, Diff{Kind: DiffMissingLocal, Segment: n, Key: o.Key(), Detail: fmt.Sprintf("the backend holds segment %d (sequence %d to %d) but the local log does not: records were deleted or the log rolled back", n, o.FirstSeq, o.LastSeq)})
			}
			continue
		}
		if len(objs) == 0 {
			if n == local[len(local)-1] {
				c.Pending = n
				continue
			}
			c.Diffs = append(c.Diffs, Diff{Kind: DiffMissingRemote, Segment: n, Detail: fmt.Sprintf("local segment %d is sealed but the backend holds no version of it (not shipped)", n)})
			continue
		}
		good := true
		for _, o := range objs {
			obj, bo := fetch(ctx, b, o.Key(), o.SHA256)
			switch {
			case bo != nil:
				c.Diffs = append(c.Diffs, Diff{Kind: DiffBadObject, Segment: n, Key: o.Key(), Detail: bo.Reason})
			case bytes.HasPrefix(data, obj):
				continue
			case bytes.HasPrefix(obj, data):
				c.Diffs = append(c.Diffs, Diff{Kind: DiffLocalShorter, Segment: n, Key: o.Key(), Offset: int64(len(data)), Detail: fmt.Sprintf("the local segment has %d bytes, the backend's version %d of which the local ones are a prefix: the local segment was truncated", len(data), len(obj))})
			default:
				off := firstDiff(data, obj)
				c.Diffs = append(c.Diffs, Diff{Kind: DiffBytes, Segment: n, Key: o.Key(), Offset: off, Detail: fmt.Sprintf("the local segment and the backend's version differ from byte %d on: one of them was altered", off)})
			}
			good = false
		}
		if good {
			c.Matching++
		}
	}
	if err := compareCheckpoints(ctx, fsys, dir, b, ro, c); err != nil {
		return nil, err
	}
	return c, ctx.Err()
}

// compareCheckpoints adds the checkpoints held on one side only.
func compareCheckpoints(ctx context.Context, fsys vfs.FS, dir string, b backends.Backend, ro *remoteObjects, c *Comparison) error {
	entries, err := integrity.ReadCheckpointLog(fsys, filepath.Join(dir, integrity.CheckpointsFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replica: compare: %w", err)
	}
	local := map[string]bool{}
	for _, e := range entries {
		local[string(e)] = true
	}
	remote := map[string]bool{}
	for _, o := range ro.cps {
		data, bo := fetch(ctx, b, o.Key(), o.SHA256)
		if bo != nil {
			c.Diffs = append(c.Diffs, Diff{Kind: DiffBadObject, Key: o.Key(), Detail: bo.Reason})
			continue
		}
		remote[string(data)] = true
		if !local[string(data)] {
			c.Diffs = append(c.Diffs, Diff{Kind: DiffMissingLocal, Key: o.Key(), Detail: fmt.Sprintf("the backend holds a signed checkpoint of tree size %d that the local checkpoints file does not: checkpoints were deleted or the log rolled back", o.Size)})
		}
	}
	for _, e := range entries {
		if !remote[string(e)] {
			size := "?"
			if cp, err := parseNote(e); err == nil {
				size = fmt.Sprint(cp.Size)
			}
			c.Diffs = append(c.Diffs, Diff{Kind: DiffMissingRemote, Detail: fmt.Sprintf("the local signed checkpoint of tree size %s is not in the backend (not shipped, or written locally by someone else)", size)})
		}
	}
	return nil
}

func firstDiff(a, b []byte) int64 {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return int64(i)
		}
	}
	return int64(n)
}
