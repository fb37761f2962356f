package replica

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// The remote object layout (docs/replication.md, "Object layout"): the
// keys of the objects the shipper puts on a backend, relative to the
// backend's own prefix. Restore, anchoring and remote verification parse
// them with the functions below, so that writer and readers share one
// definition.
const (
	// SegmentsPrefix begins the key of every segment object.
	SegmentsPrefix = "segments/"
	// CheckpointsPrefix begins the key of every checkpoint object.
	CheckpointsPrefix = "checkpoints/"

	segmentSuffix    = ".wal"
	checkpointSuffix = ".note"
)

// SegmentObject names a segment object: the bytes of segment Segment from
// offset 0 through the end of the seal record LastSeq, whose SHA-256 is
// SHA256.
type SegmentObject struct {
	Segment  uint64
	FirstSeq uint64
	LastSeq  uint64
	SHA256   [32]byte
}

// Key returns the object's key:
// segments/<segment, 10 digits>-<first seq, 20>-<last seq, 20>-<sha256 hex>.wal.
func (o SegmentObject) Key() string {
	return fmt.Sprintf("%s%010d-%020d-%020d-%x%s", SegmentsPrefix, o.Segment, o.FirstSeq, o.LastSeq, o.SHA256, segmentSuffix)
}

// CheckpointObject names a checkpoint object: one signed checkpoint of tree
// size Size whose bytes have the SHA-256 SHA256.
type CheckpointObject struct {
	Size   uint64
	SHA256 [32]byte
}

// Key returns the object's key: checkpoints/<tree size, 20 digits>-<sha256 hex>.note.
func (o CheckpointObject) Key() string {
	return fmt.Sprintf("%s%020d-%x%s", CheckpointsPrefix, o.Size, o.SHA256, checkpointSuffix)
}

// ErrObjectKey is matched (errors.Is) by the errors of ParseSegmentKey and
// ParseCheckpointKey for a key that is not of the layout.
var ErrObjectKey = fmt.Errorf("replica: not an object key of the log layout")

// ParseSegmentKey parses the key of a segment object (see SegmentObject.Key).
// It checks the form only: the bytes are the reader's to check against the
// hash.
func ParseSegmentKey(key string) (SegmentObject, error) {
	rest, ok := strings.CutPrefix(key, SegmentsPrefix)
	if ok {
		rest, ok = strings.CutSuffix(rest, segmentSuffix)
	}
	parts := strings.Split(rest, "-")
	if !ok || len(parts) != 4 {
		return SegmentObject{}, fmt.Errorf("%w: %q: want segments/NNNNNNNNNN-FIRST-LAST-SHA256.wal", ErrObjectKey, key)
	}
	var o SegmentObject
	var err error
	if o.Segment, err = decimal(parts[0], 10); err == nil {
		if o.FirstSeq, err = decimal(parts[1], 20); err == nil {
			if o.LastSeq, err = decimal(parts[2], 20); err == nil {
				o.SHA256, err = sha(parts[3])
			}
		}
	}
	if err == nil && o.LastSeq < o.FirstSeq {
		err = fmt.Errorf("last sequence number %d before first %d", o.LastSeq, o.FirstSeq)
	}
	if err != nil {
		return SegmentObject{}, fmt.Errorf("%w: %q: %w", ErrObjectKey, key, err)
	}
	return o, nil
}

// ParseCheckpointKey parses the key of a checkpoint object (see
// CheckpointObject.Key).
func ParseCheckpointKey(key string) (CheckpointObject, error) {
	rest, ok := strings.CutPrefix(key, CheckpointsPrefix)
	if ok {
		rest, ok = strings.CutSuffix(rest, checkpointSuffix)
	}
	size, hash, cut := strings.Cut(rest, "-")
	if !ok || !cut {
		return CheckpointObject{}, fmt.Errorf("%w: %q: want checkpoints/SIZE-SHA256.note", ErrObjectKey, key)
	}
	var o CheckpointObject
	var err error
	if o.Size, err = decimal(size, 20); err == nil {
		o.SHA256, err = sha(hash)
	}
	if err != nil {
		return CheckpointObject{}, fmt.Errorf("%w: %q: %w", ErrObjectKey, key, err)
	}
	return o, nil
}

func decimal(s string, digits int) (uint64, error) {
	if len(s) != digits || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not %d decimal digits", s, digits)
	}
	return strconv.ParseUint(s, 10, 64)
}

func sha(s string) ([32]byte, error) {
	var h [32]byte
	if len(s) != 64 || strings.ToLower(s) != s {
		return h, fmt.Errorf("%q is not 64 lower-case hex digits", s)
	}
	_, err := hex.Decode(h[:], []byte(s))
	return h, err
}

// SegmentKey returns the key of the segment object o (see SegmentObject.Key).
func SegmentKey(o SegmentObject) string { return o.Key() }

// CheckpointKey returns the key of the checkpoint object o (see
// CheckpointObject.Key).
func CheckpointKey(o CheckpointObject) string { return o.Key() }
