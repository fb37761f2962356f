package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// ProveInclusion builds a self-contained inclusion proof that the record
// with sequence number seq is in the log of dir, against the stored signed
// checkpoint checkpoint (nil: the latest stored one). The bundle's Marshal
// gives a file a third party checks with VerifyProof and the public key.
func ProveInclusion(ctx context.Context, fsys vfs.FS, dir string, seq uint64, checkpoint []byte) (*integrity.InclusionBundle, error) {
	if seq == 0 {
		return nil, errors.New("audit: sequence numbers start at 1")
	}
	cpRaw, cp, err := pickCheckpoint(fsys, dir, checkpoint)
	if err != nil {
		return nil, err
	}
	index := seq - 1
	if index >= cp.Size {
		return nil, fmt.Errorf("audit: record %d is not covered by the checkpoint (tree size %d); wait for the next checkpoint or pass a later one", seq, cp.Size)
	}
	nodes, err := integrity.OpenNodeReader(fsys, filepath.Join(dir, nodesFile))
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer nodes.Close()
	if nodes.Leaves() < cp.Size {
		return nil, fmt.Errorf("audit: the stored tree holds %d leaves, fewer than the checkpoint's %d: open the log once to rebuild it", nodes.Leaves(), cp.Size)
	}
	if root, err := nodes.RootAt(cp.Size); err != nil || root != cp.Root {
		return nil, fmt.Errorf("%w: the stored tree does not reproduce the checkpoint's root; run verify", ErrIntegrity)
	}
	var rec *wal.Record
	for r, err := range wal.NewReader(fsys, dir).Records(ctx, seq) {
		if err != nil {
			return nil, fmt.Errorf("audit: read record %d: %w", seq, err)
		}
		rec = &r
		break
	}
	if rec == nil || rec.Seq != seq {
		return nil, fmt.Errorf("audit: record %d is not in the log", seq)
	}
	leaf := integrity.Record{Index: index, Time: rec.Time, Type: uint8(rec.Type), PayloadHash: integrity.PayloadHash(rec.Payload)}
	if index > 0 {
		if leaf.Prev, err = nodes.Node(0, index-1); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
	}
	p, err := integrity.InclusionProof(nodes, index, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	b := integrity.NewInclusionBundle(leaf, cp.Size, p, string(cpRaw))
	if err := b.VerifyAgainst(cp.Root, cp.Size); err != nil {
		return nil, fmt.Errorf("%w: record %d does not match the stored tree: %v", ErrIntegrity, seq, err)
	}
	return b, nil
}

// ProveConsistency builds a self-contained proof that the stored signed
// checkpoint of tree size size2 extends the one of size size1 (the log only
// grew between them).
func ProveConsistency(fsys vfs.FS, dir string, size1, size2 uint64) (*integrity.ConsistencyBundle, error) {
	if size1 > size2 {
		return nil, fmt.Errorf("audit: --from %d is larger than --to %d", size1, size2)
	}
	cps, err := integrity.ReadCheckpointLog(fsys, filepath.Join(dir, checkpointsFile))
	if err != nil {
		return nil, fmt.Errorf("audit: read checkpoints: %w", err)
	}
	find := func(size uint64) ([]byte, integrity.Checkpoint, error) {
		for i := len(cps) - 1; i >= 0; i-- {
			if cp, err := parseStored(cps[i]); err == nil && cp.Size == size {
				return cps[i], cp, nil
			}
		}
		return nil, integrity.Checkpoint{}, fmt.Errorf("audit: no stored checkpoint has tree size %d (the stored checkpoints are in the log directory's checkpoints file)", size)
	}
	raw1, cp1, err := find(size1)
	if err != nil {
		return nil, err
	}
	raw2, cp2, err := find(size2)
	if err != nil {
		return nil, err
	}
	nodes, err := integrity.OpenNodeReader(fsys, filepath.Join(dir, nodesFile))
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer nodes.Close()
	p, err := integrity.ConsistencyProof(nodes, size1, size2)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	b := integrity.NewConsistencyBundle(size1, size2, p, string(raw1), string(raw2))
	if err := b.VerifyAgainst(cp1.Root, cp2.Root); err != nil {
		return nil, fmt.Errorf("%w: the stored checkpoints are not consistent: %v", ErrIntegrity, err)
	}
	return b, nil
}

// pickCheckpoint returns the given signed checkpoint (parsed), or the latest
// stored one.
func pickCheckpoint(fsys vfs.FS, dir string, given []byte) ([]byte, integrity.Checkpoint, error) {
	raw := given
	if raw == nil {
		cps, err := integrity.ReadCheckpointLog(fsys, filepath.Join(dir, checkpointsFile))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, integrity.Checkpoint{}, fmt.Errorf("audit: read checkpoints: %w", err)
		}
		if len(cps) == 0 {
			return nil, integrity.Checkpoint{}, errors.New("audit: the log has no signed checkpoint yet (configure a signing key)")
		}
		raw = cps[len(cps)-1]
	}
	cp, err := parseStored(raw)
	if err != nil {
		return nil, integrity.Checkpoint{}, fmt.Errorf("audit: checkpoint: %w", err)
	}
	return raw, cp, nil
}

// VerifyProof checks a proof file made by ProveInclusion or
// ProveConsistency, offline, with only public keys: the embedded
// checkpoints must carry a valid signature by one of vkeys, and the proof
// must verify against their roots and sizes.
func VerifyProof(data []byte, vkeys ...string) error {
	if len(vkeys) == 0 {
		return errors.New("audit: verifying a proof needs the log's public key")
	}
	trusted, err := integrity.NewVerifiers(vkeys...)
	if err != nil {
		return fmt.Errorf("audit: trusted keys: %w", err)
	}
	var head struct {
		Format string `json:"format"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return fmt.Errorf("%w: not a proof file: %v", integrity.ErrProof, err)
	}
	switch head.Format {
	case integrity.InclusionFormat:
		b, err := integrity.ParseInclusionBundle(data)
		if err != nil {
			return err
		}
		cp, err := integrity.OpenCheckpoint([]byte(b.Checkpoint), trusted)
		if err != nil {
			return err
		}
		return b.VerifyAgainst(cp.Root, cp.Size)
	case integrity.ConsistencyFormat:
		b, err := integrity.ParseConsistencyBundle(data)
		if err != nil {
			return err
		}
		cp1, err := integrity.OpenCheckpoint([]byte(b.Checkpoint1), trusted)
		if err != nil {
			return err
		}
		cp2, err := integrity.OpenCheckpoint([]byte(b.Checkpoint2), trusted)
		if err != nil {
			return err
		}
		if cp1.Size != b.Size1 || cp2.Size != b.Size2 || !bytes.Equal([]byte(cp1.Origin), []byte(cp2.Origin)) {
			return fmt.Errorf("%w: the proof's sizes or origins do not match its checkpoints", integrity.ErrProof)
		}
		return b.VerifyAgainst(cp1.Root, cp2.Root)
	}
	return fmt.Errorf("%w: unknown proof format %q", integrity.ErrProof, head.Format)
}
