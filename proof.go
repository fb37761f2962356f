package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/verify"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// ProveInclusion builds a self-contained inclusion proof that the record
// with sequence number seq is in the log of dir, against the stored signed
// checkpoint checkpoint (nil: the latest stored one). The bundle's Marshal
// gives a file a third party checks with VerifyProof and the public key.
func ProveInclusion(ctx context.Context, fsys vfs.FS, dir string, seq uint64, checkpoint []byte) (*integrity.InclusionBundle, error) {
	if err := RecordRead(ctx, fsys, dir, "ProveInclusion", fmt.Sprintf("seq %d", seq), ""); err != nil {
		return nil, err
	}
	return verify.ProveInclusion(ctx, fsys, dir, seq, checkpoint)
}

// ProveConsistency builds a self-contained proof that the stored signed
// checkpoint of tree size size2 extends the one of size size1 (the log only
// grew between them). It stops with ctx.Err() when ctx ends.
func ProveConsistency(ctx context.Context, fsys vfs.FS, dir string, size1, size2 uint64) (*integrity.ConsistencyBundle, error) {
	if err := RecordRead(ctx, fsys, dir, "ProveConsistency", fmt.Sprintf("tree sizes %d .. %d", size1, size2), ""); err != nil {
		return nil, err
	}
	return verify.ProveConsistency(ctx, fsys, dir, size1, size2)
}

// VerifyProof checks a proof file made by ProveInclusion or
// ProveConsistency, offline, with only the genesis public keys (for a log
// without forward security, its key): a v2 bundle's rotation statements
// must lead from a genesis key to the epoch of its checkpoints, the
// checkpoints must carry a valid signature by the key of the epoch they
// claim, and the proof must verify against their roots and sizes. Keys are
// taken as integrity.NewGenesisVerifiers does.
func VerifyProof(data []byte, vkeys ...string) error {
	if len(vkeys) == 0 {
		return errors.New("audit: verifying a proof needs the log's public key")
	}
	trusted, err := integrity.NewGenesisVerifiers(vkeys...)
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
	case integrity.InclusionFormat, integrity.InclusionFormatV2:
		b, err := integrity.ParseInclusionBundle(data)
		if err != nil {
			return err
		}
		_, err = b.Verify(trusted)
		return err
	case integrity.ConsistencyFormat, integrity.ConsistencyFormatV2:
		b, err := integrity.ParseConsistencyBundle(data)
		if err != nil {
			return err
		}
		_, _, err = b.Verify(trusted)
		return err
	}
	return fmt.Errorf("%w: unknown proof format %q", integrity.ErrProof, head.Format)
}

// OpenCheckpoint verifies a signed checkpoint of the log in dir (a stored
// one, or one handed out as an anchor) with only the log's genesis public
// keys: with forward security, the key of the epoch the checkpoint claims
// is established by following the rotation statements the log holds, each
// signed by the previous epoch's key (see integrity.KeyChain). It checks
// signatures only: whether the records reproduce the checkpoint's root is
// what Verify checks.
func OpenCheckpoint(ctx context.Context, fsys vfs.FS, dir string, checkpoint []byte, vkeys ...string) (integrity.Checkpoint, error) {
	return verify.OpenCheckpoint(ctx, fsys, dir, checkpoint, vkeys...)
}
