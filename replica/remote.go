package replica

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/integrity"
	"golang.org/x/mod/sumdb/note"
)

// Errors of reading a log's objects from backends (errors.Is).
var (
	// ErrEmptyBackend: a backend holds no object of the log layout (the
	// wrong bucket or prefix, or nothing shipped yet).
	ErrEmptyBackend = errors.New("replica: the backend holds no segment or checkpoint of a log")
	// ErrBadObject: an object's bytes do not match the hash in its name,
	// or it could not be read although it is listed.
	ErrBadObject = errors.New("replica: bad object")
)

// BadObject is an object of a backend that a reader did not take, and why.
type BadObject struct {
	Backend string // the backend's Name
	Key     string // the object's key
	Reason  string // why it was not taken, for people
	Err     error  `json:"-"` // the reason as an error (matches ErrBadObject or ErrObjectKey)
}

// String returns "backend: key: reason".
func (b BadObject) String() string { return b.Backend + ": " + b.Key + ": " + b.Reason }

// remoteObjects is what one backend lists of the log layout.
type remoteObjects struct {
	b    backends.Backend
	segs []SegmentObject
	cps  []CheckpointObject
	bad  []BadObject
}

// listRemote lists the segment and checkpoint objects of b. Keys that are
// not of the layout are reported as bad objects (a reader trusts nothing in
// a bucket), objects outside the two prefixes are ignored.
func listRemote(ctx context.Context, b backends.Backend) (*remoteObjects, error) {
	ro := &remoteObjects{b: b}
	for _, prefix := range []string{SegmentsPrefix, CheckpointsPrefix} {
		infos, err := b.List(ctx, prefix)
		if err != nil {
			return nil, fmt.Errorf("replica: list %s in %s: %w", prefix, b.Name(), err)
		}
		for _, in := range infos {
			if prefix == SegmentsPrefix {
				o, err := ParseSegmentKey(in.Key)
				if err != nil {
					ro.bad = append(ro.bad, BadObject{Backend: b.Name(), Key: in.Key, Reason: err.Error(), Err: err})
					continue
				}
				ro.segs = append(ro.segs, o)
			} else {
				o, err := ParseCheckpointKey(in.Key)
				if err != nil {
					ro.bad = append(ro.bad, BadObject{Backend: b.Name(), Key: in.Key, Reason: err.Error(), Err: err})
					continue
				}
				ro.cps = append(ro.cps, o)
			}
		}
	}
	return ro, nil
}

// fetch returns the object key of b if its bytes have the SHA-256 sum (the
// hash its name carries), else a *BadObject saying why not.
func fetch(ctx context.Context, b backends.Backend, key string, sum [32]byte) ([]byte, *BadObject) {
	data, err := b.Get(ctx, key)
	if err != nil {
		if ctx.Err() != nil {
			return nil, &BadObject{Backend: b.Name(), Key: key, Reason: ctx.Err().Error(), Err: ctx.Err()}
		}
		reason := fmt.Sprintf("listed but cannot be read: %v", err)
		return nil, &BadObject{Backend: b.Name(), Key: key, Reason: reason, Err: fmt.Errorf("%w: %s", ErrBadObject, reason)}
	}
	if got := backends.SHA256(data); got != sum {
		reason := fmt.Sprintf("its %d bytes do not have the SHA-256 its name carries (truncated, altered or stale: the backend returned other bytes than were stored)", len(data))
		return nil, &BadObject{Backend: b.Name(), Key: key, Reason: reason, Err: fmt.Errorf("%w: %s", ErrBadObject, reason)}
	}
	return data, nil
}

// checkNote checks a checkpoint object's bytes: a signed checkpoint whose
// tree size is the one its name carries and, when trusted is not nil, whose
// signature verifies with a trusted (genesis) key. A checkpoint of a later
// key epoch cannot be checked without the log's rotation chain: it is
// accepted here and checked by the log's verification.
func checkNote(data []byte, o CheckpointObject, trusted note.Verifiers) (integrity.Checkpoint, error) {
	cp, err := parseNote(data)
	if err != nil {
		return cp, err
	}
	if cp.Size != o.Size {
		return cp, fmt.Errorf("%w: the note is of tree size %d but its name says %d", ErrBadObject, cp.Size, o.Size)
	}
	if trusted != nil && cp.Epoch == 0 {
		if _, err := integrity.OpenCheckpoint(data, trusted); err != nil {
			return cp, fmt.Errorf("%w: its signature does not verify with the trusted key: %w", ErrBadObject, err)
		}
	}
	return cp, nil
}

// parseNote parses a signed checkpoint's body without checking signatures.
func parseNote(data []byte) (integrity.Checkpoint, error) {
	i := lastBlankLine(data)
	if i < 0 {
		return integrity.Checkpoint{}, fmt.Errorf("%w: not a signed note (no blank line before signatures)", ErrBadObject)
	}
	cp, err := integrity.ParseCheckpointBody(string(data[:i+1]))
	if err != nil {
		return cp, fmt.Errorf("%w: %w", ErrBadObject, err)
	}
	return cp, nil
}

func lastBlankLine(b []byte) int {
	for i := len(b) - 2; i >= 0; i-- {
		if b[i] == '\n' && b[i+1] == '\n' {
			return i
		}
	}
	return -1
}

// genesisVerifiers is integrity.NewGenesisVerifiers of keys, or nil when keys is
// empty.
func genesisVerifiers(keys []string) (note.Verifiers, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	vs, err := integrity.NewGenesisVerifiers(keys...)
	if err != nil {
		return nil, fmt.Errorf("replica: trusted keys: %w", err)
	}
	return vs, nil
}

// NewestCheckpoint returns the newest signed checkpoint that backend b holds
// whose name's hash matches its bytes and whose signature verifies with one
// of keys (the log's genesis public keys; required), with the objects it
// passed over and why. A checkpoint of a later key epoch (forward
// security) is taken without its signature checked here: the log's
// verification checks it against the log's rotation chain. It fails with
// ErrEmptyBackend when b holds no checkpoint, and when none verifies.
func NewestCheckpoint(ctx context.Context, b backends.Backend, keys []string) ([]byte, integrity.Checkpoint, []BadObject, error) {
	if len(keys) == 0 {
		return nil, integrity.Checkpoint{}, nil, errors.New("replica: NewestCheckpoint needs the log's public key: an anchor that is not checked is no anchor")
	}
	trusted, err := genesisVerifiers(keys)
	if err != nil {
		return nil, integrity.Checkpoint{}, nil, err
	}
	ro, err := listRemote(ctx, b)
	if err != nil {
		return nil, integrity.Checkpoint{}, nil, err
	}
	bad := slices.Clone(ro.bad)
	if len(ro.cps) == 0 {
		return nil, integrity.Checkpoint{}, bad, fmt.Errorf("%w: %s holds no object under %s (check the URL's bucket and prefix, and that the sink ships to it)", ErrEmptyBackend, b.Name(), CheckpointsPrefix)
	}
	slices.SortStableFunc(ro.cps, func(x, y CheckpointObject) int { return cmpU64(y.Size, x.Size) })
	for _, o := range ro.cps {
		data, bo := fetch(ctx, b, o.Key(), o.SHA256)
		if bo != nil {
			bad = append(bad, *bo)
			continue
		}
		cp, err := checkNote(data, o, trusted)
		if err != nil {
			bad = append(bad, BadObject{Backend: b.Name(), Key: o.Key(), Reason: err.Error(), Err: err})
			continue
		}
		return data, cp, bad, nil
	}
	return nil, integrity.Checkpoint{}, bad, fmt.Errorf("%w: none of the %d checkpoints in %s verifies with the key given (the wrong --key, or the objects were replaced)", ErrEmptyBackend, len(ro.cps), b.Name())
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
