// Package shipcheck checks what the shipper left on a backend against the
// local log, for tests and the torture suite: every object is intact and
// of the layout, every segment object is a prefix of the local segment, no
// two objects differ for one seal, and the cursor claims nothing the
// backend lacks.
package shipcheck

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"

	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/replica"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// Held is what a backend holds, as Check found it.
type Held struct {
	Segments    int // segment objects
	Checkpoints int // checkpoint objects
	// Complete is set when every sealed segment of the local log, through
	// its last durable seal, and every stored checkpoint has its object.
	Complete bool
	// Missing names what keeps it from being complete: "segment N records
	// F-L" and "checkpoint I" (index in the checkpoints file).
	Missing []string
}

// Check compares the objects of b (read directly: pass the honest store,
// not a faulty wrapper) with the log in dir, and the cursor's claims for
// b's name with what b holds (a shipper may be running). It returns an error for anything that must
// never be: an object whose bytes do not match its name, a segment object
// that is not a prefix of the local segment, two objects for one seal, or
// a claim of an object that is not there.
func Check(ctx context.Context, fsys vfs.FS, dir string, b backends.Backend) (Held, error) {
	var h Held
	// The cursor first: a shipper still running may confirm more after
	// the listing, but what it claimed before must be listed.
	cur, err := replica.ReadCursor(fsys, dir)
	if err != nil {
		return h, err
	}
	infos, err := b.List(ctx, "")
	if err != nil {
		return h, err
	}
	seals := map[[3]uint64]string{}
	keys := map[string]bool{}
	for _, info := range infos {
		keys[info.Key] = true
		data, err := b.Get(ctx, info.Key)
		if err != nil {
			return h, err
		}
		sum := sha256.Sum256(data)
		if o, err := replica.ParseSegmentKey(info.Key); err == nil {
			h.Segments++
			if sum != o.SHA256 {
				return h, fmt.Errorf("%s: %s: the bytes do not match the name's hash", b.Name(), info.Key)
			}
			local, err := vfs.ReadFile(fsys, filepath.Join(dir, wal.SegmentName(o.Segment)))
			if err != nil {
				return h, fmt.Errorf("%s: %s: %w", b.Name(), info.Key, err)
			}
			if !bytes.HasPrefix(local, data) {
				return h, fmt.Errorf("%s: %s: not a prefix of the local segment", b.Name(), info.Key)
			}
			id := [3]uint64{o.Segment, o.FirstSeq, o.LastSeq}
			if other, dup := seals[id]; dup {
				return h, fmt.Errorf("%s: two objects for one seal: %s and %s", b.Name(), other, info.Key)
			}
			seals[id] = info.Key
		} else if o, err := replica.ParseCheckpointKey(info.Key); err == nil {
			h.Checkpoints++
			if sum != o.SHA256 {
				return h, fmt.Errorf("%s: %s: the bytes do not match the name's hash", b.Name(), info.Key)
			}
		} else {
			return h, fmt.Errorf("%s: %s: not of the layout: %w", b.Name(), info.Key, err)
		}
	}
	cps, err := integrity.ReadCheckpointLog(fsys, filepath.Join(dir, integrity.CheckpointsFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return h, err
	}
	cpKeys := make([]string, len(cps))
	for i, signed := range cps {
		cp, err := parseStored(signed)
		if err != nil {
			return h, err
		}
		cpKeys[i] = replica.CheckpointObject{Size: cp, SHA256: sha256.Sum256(signed)}.Key()
	}
	// Every seal of the local log, in order, and whether b has it.
	names, err := fsys.List(dir)
	if err != nil {
		return h, err
	}
	var have []bool
	var ids [][3]uint64
	for _, name := range names {
		n, ok := wal.ParseSegmentName(name)
		if !ok {
			continue
		}
		seal, ok, err := wal.ReadSeal(fsys, filepath.Join(dir, name), math.MaxUint64)
		if err != nil {
			return h, err
		}
		if ok {
			id := [3]uint64{n, seal.FirstSeq, seal.LastSeq}
			ids = append(ids, id)
			have = append(have, seals[id] != "")
		}
	}
	for i, ok := range have {
		if !ok {
			h.Missing = append(h.Missing, fmt.Sprintf("segment %d records %d-%d", ids[i][0], ids[i][1], ids[i][2]))
		}
	}
	for i, k := range cpKeys {
		if !keys[k] {
			h.Missing = append(h.Missing, fmt.Sprintf("checkpoint %d", i))
		}
	}
	h.Complete = len(h.Missing) == 0
	bc, ok := cur.Backends[b.Name()]
	if !ok {
		return h, nil
	}
	if bc.SegmentKey != "" && !keys[bc.SegmentKey] {
		return h, fmt.Errorf("%s: the cursor claims %s, which is not there", b.Name(), bc.SegmentKey)
	}
	for i, id := range ids {
		if id[0] < bc.Segment && !have[i] {
			return h, fmt.Errorf("%s: the cursor claims segment %d (through segment %d), which is not there", b.Name(), id[0], bc.Segment)
		}
	}
	for i := uint64(0); i < bc.Checkpoints; i++ {
		if i >= uint64(len(cpKeys)) || !keys[cpKeys[i]] {
			return h, fmt.Errorf("%s: the cursor claims %d checkpoints, but checkpoint %d is not there", b.Name(), bc.Checkpoints, i)
		}
	}
	return h, nil
}

func parseStored(signed []byte) (uint64, error) {
	i := bytes.LastIndex(signed, []byte("\n\n"))
	if i < 0 {
		return 0, errors.New("shipcheck: a stored checkpoint is not a signed note")
	}
	cp, err := integrity.ParseCheckpointBody(string(signed[:i+1]))
	return cp.Size, err
}
