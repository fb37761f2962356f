package integrity

import (
	"fmt"

	"golang.org/x/mod/sumdb/note"
)

// maxBundleRotations bounds the rotation statements of a bundle (a
// statement is a few hundred bytes; bundles are at most 1 MiB anyway).
const maxBundleRotations = 4096

// RotationProof is a key rotation statement carried by a v2 proof bundle,
// with the consistency proof from the tree it commits to (its Size and
// Root) to the tree of the bundle's (latest) checkpoint.
type RotationProof struct {
	Statement   string `json:"statement"`   // the signed rotation note, verbatim
	Consistency []Hash `json:"consistency"` // from the statement's tree to the checkpoint's
}

// checkFormat checks a bundle's format against its rotations: v1 carries
// none, v2 at least one.
func checkFormat(kind, format, v1, v2 string, rots []RotationProof) error {
	switch {
	case format == v1 && len(rots) > 0:
		return fmt.Errorf("%w: %s bundle: format %q carries no rotation statements (they need %q)", ErrProof, kind, v1, v2)
	case format == v2 && len(rots) == 0:
		return fmt.Errorf("%w: %s bundle: format %q needs at least one rotation statement (without, use %q)", ErrProof, kind, v2, v1)
	case format != v1 && format != v2:
		return fmt.Errorf("%w: %s bundle: format %q, want %q or %q", ErrProof, kind, format, v1, v2)
	case len(rots) > maxBundleRotations:
		return fmt.Errorf("%w: %s bundle: %d rotation statements, at most %d are accepted", ErrProof, kind, len(rots), maxBundleRotations)
	}
	for i, r := range rots {
		if len(r.Consistency) > MaxProofHashes {
			return fmt.Errorf("%w: %s bundle: rotation %d: consistency proof has %d hashes, at most %d are possible", ErrProof, kind, i, len(r.Consistency), MaxProofHashes)
		}
	}
	return nil
}

// SetRotations attaches the rotation statements from genesis to the
// checkpoint's epoch (none: a v1 bundle) and sets the format accordingly.
func (b *InclusionBundle) SetRotations(rots []RotationProof) {
	b.Rotations = append([]RotationProof(nil), rots...)
	b.Format = InclusionFormat
	if len(rots) > 0 {
		b.Format = InclusionFormatV2
	}
}

// SetRotations attaches the rotation statements from genesis to
// Checkpoint2's epoch (none: a v1 bundle) and sets the format accordingly.
func (b *ConsistencyBundle) SetRotations(rots []RotationProof) {
	b.Rotations = append([]RotationProof(nil), rots...)
	b.Format = ConsistencyFormat
	if len(rots) > 0 {
		b.Format = ConsistencyFormatV2
	}
}

// followRotations verifies rots in order from the genesis keys: rotation i
// must be signed by the key of epoch i (the genesis key for i = 0, then the
// key rotation i-1 names) and name epoch i+1; its tree must be smaller than
// the checkpoint's tree of size size (the checkpoint covers the statement)
// and a prefix of it, by its consistency proof to root. The checkpoint's
// root and size are taken unverified: the caller then verifies the
// checkpoint with the chain (KeyChain.OpenCheckpoint) and compares.
func followRotations(genesis note.Verifiers, rots []RotationProof, size uint64, root Hash) (*KeyChain, error) {
	c := NewKeyChain(genesis)
	for i, rp := range rots {
		r, err := c.Advance([]byte(rp.Statement))
		if err != nil {
			return nil, fmt.Errorf("%w: rotation statement %d (to epoch %d): %w", ErrProof, i, i+1, err)
		}
		if r.Size >= size {
			return nil, fmt.Errorf("%w: rotation to epoch %d commits to tree size %d, but the checkpoint (tree size %d) must cover the statement", ErrProof, r.Epoch, r.Size, size)
		}
		if err := VerifyConsistency(r.Size, size, rp.Consistency, r.Root, root); err != nil {
			return nil, fmt.Errorf("rotation to epoch %d is not consistent with the checkpoint: %w", r.Epoch, err)
		}
	}
	return c, nil
}

// openBundleCheckpoint verifies the bundle's (latest) checkpoint with only
// the genesis keys: it follows rots and checks that they end at the
// checkpoint's epoch.
func openBundleCheckpoint(genesis note.Verifiers, raw string, rots []RotationProof) (*KeyChain, Checkpoint, error) {
	body, err := noteBody([]byte(raw))
	if err != nil {
		return nil, Checkpoint{}, err
	}
	claimed, err := ParseCheckpointBody(body)
	if err != nil {
		return nil, Checkpoint{}, err
	}
	if claimed.Epoch != uint64(len(rots)) {
		return nil, Checkpoint{}, fmt.Errorf("%w: the checkpoint claims key epoch %d but the bundle carries %d rotation statements (one per epoch from genesis is needed)", ErrProof, claimed.Epoch, len(rots))
	}
	c, err := followRotations(genesis, rots, claimed.Size, claimed.Root)
	if err != nil {
		return nil, Checkpoint{}, err
	}
	cp, err := c.OpenCheckpoint([]byte(raw))
	if err != nil {
		return nil, Checkpoint{}, err
	}
	return c, cp, nil
}

// Verify checks the bundle offline with only the genesis public keys: the
// rotation statements from genesis to the checkpoint's epoch (each signed
// by the previous epoch's key, each committing to a prefix of the
// checkpoint's tree), the checkpoint's signature by its epoch's key, and
// the inclusion proof. It returns the checkpoint.
func (b *InclusionBundle) Verify(genesis note.Verifiers) (Checkpoint, error) {
	if err := b.check(); err != nil {
		return Checkpoint{}, err
	}
	_, cp, err := openBundleCheckpoint(genesis, b.Checkpoint, b.Rotations)
	if err != nil {
		return Checkpoint{}, err
	}
	return cp, b.VerifyAgainst(cp.Root, cp.Size)
}

// Verify checks the bundle offline with only the genesis public keys: the
// rotation statements from genesis to Checkpoint2's epoch, both
// checkpoints' signatures by the keys of the epochs they claim (which must
// fit the rotations: a checkpoint of epoch e lies after rotation e and not
// after rotation e+1), their sizes and origins, and the consistency proof.
func (b *ConsistencyBundle) Verify(genesis note.Verifiers) (Checkpoint, Checkpoint, error) {
	if err := b.check(); err != nil {
		return Checkpoint{}, Checkpoint{}, err
	}
	c, cp2, err := openBundleCheckpoint(genesis, b.Checkpoint2, b.Rotations)
	if err != nil {
		return Checkpoint{}, Checkpoint{}, err
	}
	cp1, err := c.OpenCheckpoint([]byte(b.Checkpoint1))
	if err != nil {
		return Checkpoint{}, Checkpoint{}, err
	}
	if cp1.Size != b.Size1 || cp2.Size != b.Size2 || cp1.Origin != cp2.Origin {
		return Checkpoint{}, Checkpoint{}, fmt.Errorf("%w: the proof's sizes or origins do not match its checkpoints", ErrProof)
	}
	if cp1.Epoch > cp2.Epoch {
		return Checkpoint{}, Checkpoint{}, fmt.Errorf("%w: checkpoint 1 is of key epoch %d, after checkpoint 2's epoch %d", ErrProof, cp1.Epoch, cp2.Epoch)
	}
	return cp1, cp2, b.VerifyAgainst(cp1.Root, cp2.Root)
}
