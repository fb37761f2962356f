package verify

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/ledger"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// ProveInclusion is the root's ProveInclusion.
func ProveInclusion(ctx context.Context, fsys vfs.FS, dir string, seq uint64, checkpoint []byte) (*integrity.InclusionBundle, error) {
	if seq == 0 {
		return nil, errors.New("audit: sequence numbers start at 1")
	}
	if err := checkLogDir(fsys, dir); err != nil {
		return nil, err
	}
	cpRaw, cp, err := pickCheckpoint(fsys, dir, checkpoint)
	if err != nil {
		return nil, err
	}
	index := seq - 1
	if index >= cp.Size {
		return nil, fmt.Errorf("audit: record %d is not covered by the checkpoint (tree size %d); wait for the next checkpoint or pass a later one", seq, cp.Size)
	}
	nodes, err := integrity.OpenNodeReader(fsys, filepath.Join(dir, integrity.NodesFile))
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer nodes.Close()
	if nodes.Leaves() < cp.Size {
		return nil, fmt.Errorf("audit: the stored tree holds %d leaves, fewer than the checkpoint's %d: open the log once to rebuild it", nodes.Leaves(), cp.Size)
	}
	if root, err := nodes.RootAt(cp.Size); err != nil || root != cp.Root {
		return nil, fmt.Errorf("%w: the stored tree does not reproduce the checkpoint's root; run verify", ledger.ErrIntegrity)
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
	rots, err := bundleRotations(ctx, fsys, dir, nodes, cp.Epoch, cp.Size)
	if err != nil {
		return nil, err
	}
	b.SetRotations(rots)
	if err := b.VerifyAgainst(cp.Root, cp.Size); err != nil {
		return nil, fmt.Errorf("%w: record %d does not match the stored tree: %v", ledger.ErrIntegrity, seq, err)
	}
	return b, nil
}

// ProveConsistency is the root's ProveConsistency.
func ProveConsistency(ctx context.Context, fsys vfs.FS, dir string, size1, size2 uint64) (*integrity.ConsistencyBundle, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if size1 > size2 {
		return nil, fmt.Errorf("audit: --from %d is larger than --to %d", size1, size2)
	}
	if err := checkLogDir(fsys, dir); err != nil {
		return nil, err
	}
	cps, err := integrity.ReadCheckpointLog(fsys, filepath.Join(dir, integrity.CheckpointsFile))
	if err != nil {
		return nil, fmt.Errorf("audit: read checkpoints: %w", err)
	}
	find := func(size uint64) ([]byte, integrity.Checkpoint, error) {
		for i := len(cps) - 1; i >= 0; i-- {
			if cp, err := ledger.ParseStored(cps[i]); err == nil && cp.Size == size {
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
	nodes, err := integrity.OpenNodeReader(fsys, filepath.Join(dir, integrity.NodesFile))
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer nodes.Close()
	p, err := integrity.ConsistencyProof(nodes, size1, size2)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	b := integrity.NewConsistencyBundle(size1, size2, p, string(raw1), string(raw2))
	rots, err := bundleRotations(ctx, fsys, dir, nodes, cp2.Epoch, cp2.Size)
	if err != nil {
		return nil, err
	}
	b.SetRotations(rots)
	if err := b.VerifyAgainst(cp1.Root, cp2.Root); err != nil {
		return nil, fmt.Errorf("%w: the stored checkpoints are not consistent: %v", ledger.ErrIntegrity, err)
	}
	return b, nil
}

// checkLogDir returns an error matching fs.ErrNotExist, that says so, if
// the log directory dir does not exist.
func checkLogDir(fsys vfs.FS, dir string) error {
	_, err := fsys.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("audit: the log directory %s does not exist; check the path (%w)", dir, err)
	case err != nil:
		return fmt.Errorf("audit: the log directory %s: %w", dir, err)
	}
	return nil
}

// pickCheckpoint returns the given signed checkpoint (parsed), or the latest
// stored one.
func pickCheckpoint(fsys vfs.FS, dir string, given []byte) ([]byte, integrity.Checkpoint, error) {
	raw := given
	if raw == nil {
		cps, err := integrity.ReadCheckpointLog(fsys, filepath.Join(dir, integrity.CheckpointsFile))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, integrity.Checkpoint{}, fmt.Errorf("audit: read checkpoints: %w", err)
		}
		if len(cps) == 0 {
			return nil, integrity.Checkpoint{}, errors.New("audit: the log has no signed checkpoint yet (configure a signing key)")
		}
		raw = cps[len(cps)-1]
	}
	cp, err := ledger.ParseStored(raw)
	if err != nil {
		return nil, integrity.Checkpoint{}, fmt.Errorf("audit: checkpoint: %w", err)
	}
	return raw, cp, nil
}

// bundleRotations returns the key rotation statements of the log in dir
// from genesis to epoch, each with its consistency proof to the tree of
// size leaves, for a proof bundle (none for epoch 0). It reads the log from
// the start until it has found them.
func bundleRotations(ctx context.Context, fsys vfs.FS, dir string, nodes integrity.NodeReader, epoch, size uint64) ([]integrity.RotationProof, error) {
	if epoch == 0 {
		return nil, nil
	}
	var out []integrity.RotationProof
	for rec, err := range wal.NewReader(fsys, dir).Records(ctx, 1) {
		if err != nil {
			return nil, fmt.Errorf("audit: read the log for its key rotation statements: %w", err)
		}
		if rec.Type != wal.RecordMeta || rec.Seq > size {
			if rec.Seq > size {
				break
			}
			continue
		}
		r, err := integrity.ParseRotation(rec.Payload)
		if err != nil || r.Epoch != uint64(len(out))+1 {
			continue
		}
		p, err := integrity.ConsistencyProof(nodes, r.Size, size)
		if err != nil {
			return nil, fmt.Errorf("audit: key rotation to epoch %d: %w", r.Epoch, err)
		}
		out = append(out, integrity.RotationProof{Statement: string(rec.Payload), Consistency: p})
		if uint64(len(out)) == epoch {
			return out, nil
		}
	}
	return nil, fmt.Errorf("%w: the checkpoint is of key epoch %d, but the log's first %d records hold rotation statements up to epoch %d only; run verify", ledger.ErrIntegrity, epoch, size, len(out))
}

// OpenCheckpoint is the root's OpenCheckpoint.
func OpenCheckpoint(ctx context.Context, fsys vfs.FS, dir string, checkpoint []byte, vkeys ...string) (integrity.Checkpoint, error) {
	trusted, err := integrity.NewGenesisVerifiers(vkeys...)
	if err != nil {
		return integrity.Checkpoint{}, fmt.Errorf("audit: trusted keys: %w", err)
	}
	claimed, err := ledger.ParseStored(checkpoint)
	if err != nil {
		return integrity.Checkpoint{}, fmt.Errorf("audit: checkpoint: %w", err)
	}
	chain := integrity.NewKeyChain(trusted)
	if claimed.Epoch > 0 {
		for rec, err := range wal.NewReader(fsys, dir).Records(ctx, 1) {
			if err != nil {
				return integrity.Checkpoint{}, fmt.Errorf("audit: read the log for its key rotation statements: %w", err)
			}
			if rec.Type != wal.RecordMeta {
				continue
			}
			if r, err := integrity.ParseRotation(rec.Payload); err != nil || r.Epoch != chain.Epoch()+1 {
				continue
			}
			if _, err := chain.Advance(rec.Payload); err != nil {
				if chain.Epoch() == 0 {
					// Not signed by a genesis key given: the wrong key
					// (or, if the key is right, tampering).
					return integrity.Checkpoint{}, fmt.Errorf("audit: record %d: %w", rec.Seq, err)
				}
				return integrity.Checkpoint{}, fmt.Errorf("%w: record %d: %w", ledger.ErrIntegrity, rec.Seq, err)
			}
			if chain.Epoch() == claimed.Epoch {
				break
			}
		}
	}
	return chain.OpenCheckpoint(checkpoint)
}
