package integrity

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// MaxProofHashes is the most hashes any proof can need (a tree of at most
// 2^64 leaves has 64 levels); bundles with longer proofs are rejected before
// any hashing.
const MaxProofHashes = 64

// Proof bundle formats, the "format" field of the JSON files. A v1 bundle
// carries no rotation statements: its checkpoints are signed by the genesis
// key (a log without forward security, or epoch 0). A v2 bundle carries,
// in "rotations", the key rotation statements from genesis to the epoch of
// its (latest) checkpoint, at least one, so that it verifies with only the
// genesis public key; otherwise the two are the same.
const (
	InclusionFormat     = "mtlog-audit-inclusion-proof/v1"
	ConsistencyFormat   = "mtlog-audit-consistency-proof/v1"
	InclusionFormatV2   = "mtlog-audit-inclusion-proof/v2"
	ConsistencyFormatV2 = "mtlog-audit-consistency-proof/v2"
)

// NodeReader reads stored tree nodes; NodeStore implements it. A node at
// level L with index k covers leaves [k·2^L, (k+1)·2^L).
type NodeReader interface {
	Node(level uint, index uint64) (Hash, error)
}

// InclusionProof returns the RFC 6962 inclusion proof (audit path) of leaf
// index in the tree of the first size leaves, reading the nodes it needs
// from nodes. It needs index < size and the nodes of a size-leaf tree.
func InclusionProof(nodes NodeReader, index, size uint64) ([]Hash, error) {
	if index >= size {
		return nil, fmt.Errorf("integrity: inclusion proof: index %d is not below tree size %d", index, size)
	}
	n, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("integrity: inclusion proof: %w", err)
	}
	p, err := fetchProof(nodes, n)
	if err != nil {
		return nil, fmt.Errorf("integrity: inclusion proof of %d in tree of %d: %w", index, size, err)
	}
	return p, nil
}

// ConsistencyProof returns the RFC 6962 consistency proof between the trees
// of the first size1 and the first size2 leaves, reading the nodes it needs
// from nodes. It needs size1 ≤ size2 and the nodes of a size2-leaf tree; the
// proof is empty when size1 is 0 or equals size2.
func ConsistencyProof(nodes NodeReader, size1, size2 uint64) ([]Hash, error) {
	if size1 > size2 {
		return nil, fmt.Errorf("integrity: consistency proof: size1 %d exceeds size2 %d", size1, size2)
	}
	n, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, fmt.Errorf("integrity: consistency proof: %w", err)
	}
	p, err := fetchProof(nodes, n)
	if err != nil {
		return nil, fmt.Errorf("integrity: consistency proof from %d to %d: %w", size1, size2, err)
	}
	return p, nil
}

// fetchProof reads the nodes n names and folds the ones that make up an
// ephemeral node (a subtree that is not yet perfect) into its hash.
func fetchProof(nodes NodeReader, n proof.Nodes) ([]Hash, error) {
	raw := make([][]byte, len(n.IDs))
	for i, id := range n.IDs {
		h, err := nodes.Node(id.Level, id.Index)
		if err != nil {
			return nil, err
		}
		raw[i] = h[:]
	}
	raw, err := n.Rehash(raw, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		return nil, err
	}
	out := make([]Hash, len(raw))
	for i, h := range raw {
		if len(h) != len(Hash{}) {
			return nil, fmt.Errorf("node hash of %d bytes", len(h))
		}
		out[i] = Hash(h)
	}
	return out, nil
}

// inclusionLen is the number of hashes of an inclusion proof of index in a
// tree of size leaves (index < size): one per level below the point where
// the paths to index and to size-1 part, plus one per left sibling above it.
func inclusionLen(index, size uint64) int {
	inner := bits.Len64(index ^ (size - 1))
	return inner + bits.OnesCount64(index>>inner)
}

// consistencyLen is the number of hashes of a consistency proof from size1
// to size2 (size1 ≤ size2).
func consistencyLen(size1, size2 uint64) int {
	if size1 == 0 || size1 == size2 {
		return 0
	}
	shift := bits.TrailingZeros64(size1)
	n := inclusionLen(size1-1, size2) - shift
	if size1 != 1<<shift {
		n++ // the root of the largest perfect subtree ending at size1
	}
	return n
}

// proofHashes converts p for the library.
func proofHashes(p []Hash) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

// libError turns an error from the proof library into an ErrProof error.
func libError(what string, err error) error {
	var mismatch proof.RootMismatchError
	if errors.As(err, &mismatch) {
		return fmt.Errorf("%w: %s: root mismatch: the proof leads to %s, want %s", ErrProof, what,
			base64.StdEncoding.EncodeToString(mismatch.CalculatedRoot), base64.StdEncoding.EncodeToString(mismatch.ExpectedRoot))
	}
	return fmt.Errorf("%w: %s: %v", ErrProof, what, err)
}

// VerifyInclusion checks that p proves that the leaf hash leaf is at index
// in the tree of size leaves whose root is root. Its errors match ErrProof
// and say what is wrong: index not below size, the wrong number of proof
// hashes, or a root mismatch.
func VerifyInclusion(index, size uint64, leaf Hash, p []Hash, root Hash) error {
	what := fmt.Sprintf("inclusion of leaf %d in tree of %d", index, size)
	if index >= size {
		return fmt.Errorf("%w: %s: index %d is not below tree size %d", ErrProof, what, index, size)
	}
	if want := inclusionLen(index, size); len(p) != want {
		return fmt.Errorf("%w: %s: proof has %d hashes, want %d", ErrProof, what, len(p), want)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, leaf[:], proofHashes(p), root[:]); err != nil {
		return libError(what, err)
	}
	return nil
}

// VerifyConsistency checks that p proves that the tree of size1 leaves with
// root root1 is a prefix of the tree of size2 leaves with root root2. Its
// errors match ErrProof and say what is wrong: size1 > size2, the wrong
// number of proof hashes, or which root does not match. For size1 = 0 the
// proof is empty and root1 must be the empty tree's root; for size1 = size2
// the proof is empty and the roots must be equal.
func VerifyConsistency(size1, size2 uint64, p []Hash, root1, root2 Hash) error {
	what := fmt.Sprintf("consistency of tree of %d with tree of %d", size1, size2)
	if size1 > size2 {
		return fmt.Errorf("%w: %s: size1 %d exceeds size2 %d", ErrProof, what, size1, size2)
	}
	if want := consistencyLen(size1, size2); len(p) != want {
		return fmt.Errorf("%w: %s: proof has %d hashes, want %d", ErrProof, what, len(p), want)
	}
	switch {
	case size1 == 0:
		if root1 != emptyRoot {
			return fmt.Errorf("%w: %s: root1 %s is not the empty tree's root %s", ErrProof, what, root1, emptyRoot)
		}
		return nil
	case size1 == size2:
		if root1 != root2 {
			return fmt.Errorf("%w: %s: equal sizes but different roots %s and %s", ErrProof, what, root1, root2)
		}
		return nil
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, size1, size2, proofHashes(p), root1[:], root2[:]); err != nil {
		var mismatch proof.RootMismatchError
		if errors.As(err, &mismatch) {
			which := "root2"
			switch {
			case root1 == root2:
				which = "root1 or root2"
			case bytes.Equal(mismatch.ExpectedRoot, root1[:]):
				which = "root1"
			}
			return libError(what+" ("+which+")", err)
		}
		return libError(what, err)
	}
	return nil
}

// MarshalText encodes h in standard base64 (as String does), so that a Hash
// is a JSON string.
func (h Hash) MarshalText() ([]byte, error) {
	out := make([]byte, base64.StdEncoding.EncodedLen(len(h)))
	base64.StdEncoding.Encode(out, h[:])
	return out, nil
}

// UnmarshalText decodes the standard, padded base64 of exactly 32 bytes, in
// its one canonical spelling (44 characters, as MarshalText writes it); any
// other text is an error matching ErrProof.
func (h *Hash) UnmarshalText(text []byte) error {
	const want = 44 // base64.StdEncoding.EncodedLen(32)
	var buf [33]byte
	if len(text) != want {
		return fmt.Errorf("%w: hash is %d base64 characters, want %d (32 bytes)", ErrProof, len(text), want)
	}
	n, err := base64.StdEncoding.Strict().Decode(buf[:], text)
	if err != nil {
		return fmt.Errorf("%w: hash is not standard base64: %v", ErrProof, err)
	}
	if n != len(h) {
		return fmt.Errorf("%w: hash is %d bytes, want %d", ErrProof, n, len(h))
	}
	// Defence in depth: the decoder skips line breaks, so accept only
	// the text MarshalText would write.
	if canon, _ := Hash(buf[:32]).MarshalText(); !bytes.Equal(canon, text) {
		return fmt.Errorf("%w: hash %q is not in canonical base64", ErrProof, text)
	}
	copy(h[:], buf[:n])
	return nil
}

// LeafJSON is a Record as it appears in an inclusion bundle.
type LeafJSON struct {
	Index       uint64 `json:"index"`
	Prev        Hash   `json:"prev"`
	Time        int64  `json:"time"` // unix nanoseconds
	Type        uint8  `json:"type"`
	PayloadHash Hash   `json:"payload_hash"`
}

// NewLeafJSON returns r for an inclusion bundle.
func NewLeafJSON(r Record) LeafJSON {
	return LeafJSON(r)
}

// Record returns the record l describes.
func (l LeafJSON) Record() Record {
	return Record(l)
}

// InclusionBundle is a self-contained inclusion proof file: it shows that a
// record is leaf Index of the tree of Size leaves that the signed
// checkpoint Checkpoint commits to. A third party checks it offline: verify
// the checkpoint's signature with the log's public key, take its size and
// root, and call VerifyAgainst; the payload itself is checked by hashing it
// and comparing with Leaf.PayloadHash.
type InclusionBundle struct {
	Format     string   `json:"format"` // InclusionFormat
	Index      uint64   `json:"index"`
	Leaf       LeafJSON `json:"leaf"`
	LeafHash   Hash     `json:"leaf_hash"`
	Size       uint64   `json:"size"`
	Proof      []Hash   `json:"proof"`
	Checkpoint string   `json:"checkpoint"` // the signed checkpoint note, verbatim
	// Rotations (v2 only) are the key rotation statements from genesis to
	// the checkpoint's epoch, each with a consistency proof to Size.
	Rotations []RotationProof `json:"rotations,omitempty"`
}

// ConsistencyBundle is a self-contained consistency proof file: it shows
// that the tree of Size1 leaves that the signed checkpoint Checkpoint1
// commits to is a prefix of the tree of Size2 leaves that Checkpoint2
// commits to, i.e. that nothing the first covers was changed or removed.
type ConsistencyBundle struct {
	Format      string `json:"format"` // ConsistencyFormat
	Size1       uint64 `json:"size1"`
	Size2       uint64 `json:"size2"`
	Proof       []Hash `json:"proof"`
	Checkpoint1 string `json:"checkpoint1"` // the signed checkpoint note of Size1, verbatim
	Checkpoint2 string `json:"checkpoint2"` // the signed checkpoint note of Size2, verbatim
	// Rotations (v2 only) are the key rotation statements from genesis to
	// Checkpoint2's epoch, each with a consistency proof to Size2.
	Rotations []RotationProof `json:"rotations,omitempty"`
}

// NewInclusionBundle returns the bundle for record r in the tree of size
// leaves, with its proof and the signed checkpoint of that tree.
func NewInclusionBundle(r Record, size uint64, p []Hash, checkpoint string) *InclusionBundle {
	return &InclusionBundle{Format: InclusionFormat, Index: r.Index, Leaf: NewLeafJSON(r), LeafHash: LeafHash(r),
		Size: size, Proof: append([]Hash{}, p...), Checkpoint: checkpoint}
}

// NewConsistencyBundle returns the bundle for the trees of size1 and size2
// leaves, with the proof and the two signed checkpoints.
func NewConsistencyBundle(size1, size2 uint64, p []Hash, checkpoint1, checkpoint2 string) *ConsistencyBundle {
	return &ConsistencyBundle{Format: ConsistencyFormat, Size1: size1, Size2: size2, Proof: append([]Hash{}, p...),
		Checkpoint1: checkpoint1, Checkpoint2: checkpoint2}
}

// Marshal returns the bundle as indented JSON ending in a newline.
func (b *InclusionBundle) Marshal() ([]byte, error) { return marshalBundle(b) }

// Marshal returns the bundle as indented JSON ending in a newline.
func (b *ConsistencyBundle) Marshal() ([]byte, error) { return marshalBundle(b) }

func marshalBundle(v any) ([]byte, error) {
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// VerifyAgainst checks the bundle against the root and size of a tree,
// which the caller takes from a checkpoint whose signature it verified
// (normally b.Checkpoint): the leaf hash recomputed from Leaf must equal
// LeafHash, Leaf.Index must equal Index, Size must equal size and the proof
// must lead from the leaf hash to root. Errors match ErrProof.
func (b *InclusionBundle) VerifyAgainst(root Hash, size uint64) error {
	if err := b.check(); err != nil {
		return err
	}
	if b.Leaf.Index != b.Index {
		return fmt.Errorf("%w: inclusion bundle: leaf has index %d but the bundle is for index %d", ErrProof, b.Leaf.Index, b.Index)
	}
	if got := LeafHash(b.Leaf.Record()); got != b.LeafHash {
		return fmt.Errorf("%w: inclusion bundle: the leaf hashes to %s, not to the bundle's leaf_hash %s", ErrProof, got, b.LeafHash)
	}
	if b.Size != size {
		return fmt.Errorf("%w: inclusion bundle: proof is for a tree of %d but the checkpoint is for %d", ErrProof, b.Size, size)
	}
	return VerifyInclusion(b.Index, b.Size, b.LeafHash, b.Proof, root)
}

// VerifyAgainst checks the proof against root1 and root2, the roots of the
// trees of Size1 and Size2 leaves. The caller takes them from checkpoints
// whose signatures it verified (normally b.Checkpoint1 and b.Checkpoint2)
// and must also check that those checkpoints' sizes are Size1 and Size2.
// Errors match ErrProof.
func (b *ConsistencyBundle) VerifyAgainst(root1, root2 Hash) error {
	if err := b.check(); err != nil {
		return err
	}
	return VerifyConsistency(b.Size1, b.Size2, b.Proof, root1, root2)
}

// check validates the bundle's shape (not its proof).
func (b *InclusionBundle) check() error {
	if err := checkFormat("inclusion", b.Format, InclusionFormat, InclusionFormatV2, b.Rotations); err != nil {
		return err
	}
	switch {
	case b.Index >= b.Size:
		return fmt.Errorf("%w: inclusion bundle: index %d is not below tree size %d", ErrProof, b.Index, b.Size)
	case len(b.Proof) > MaxProofHashes:
		return fmt.Errorf("%w: inclusion bundle: proof has %d hashes, at most %d are possible", ErrProof, len(b.Proof), MaxProofHashes)
	}
	return nil
}

// check validates the bundle's shape (not its proof).
func (b *ConsistencyBundle) check() error {
	if err := checkFormat("consistency", b.Format, ConsistencyFormat, ConsistencyFormatV2, b.Rotations); err != nil {
		return err
	}
	switch {
	case b.Size1 > b.Size2:
		return fmt.Errorf("%w: consistency bundle: size1 %d exceeds size2 %d", ErrProof, b.Size1, b.Size2)
	case len(b.Proof) > MaxProofHashes:
		return fmt.Errorf("%w: consistency bundle: proof has %d hashes, at most %d are possible", ErrProof, len(b.Proof), MaxProofHashes)
	}
	return nil
}

// ParseInclusionBundle parses an inclusion proof file. It rejects, with
// errors matching ErrProof, anything but one JSON object of the
// InclusionFormat with no unknown fields, hashes of other than 32 bytes,
// index ≥ size and proofs of more than MaxProofHashes hashes.
func ParseInclusionBundle(data []byte) (*InclusionBundle, error) {
	var b InclusionBundle
	if err := decodeBundle(data, &b, "inclusion", InclusionFormat, InclusionFormatV2); err != nil {
		return nil, err
	}
	if len(b.Rotations) == 0 {
		b.Rotations = nil // "rotations": [] is no rotations
	}
	if err := b.check(); err != nil {
		return nil, err
	}
	return &b, nil
}

// ParseConsistencyBundle parses a consistency proof file. It rejects, with
// errors matching ErrProof, anything but one JSON object of the
// ConsistencyFormat with no unknown fields, hashes of other than 32 bytes,
// size1 > size2 and proofs of more than MaxProofHashes hashes.
func ParseConsistencyBundle(data []byte) (*ConsistencyBundle, error) {
	var b ConsistencyBundle
	if err := decodeBundle(data, &b, "consistency", ConsistencyFormat, ConsistencyFormatV2); err != nil {
		return nil, err
	}
	if len(b.Rotations) == 0 {
		b.Rotations = nil // "rotations": [] is no rotations
	}
	if err := b.check(); err != nil {
		return nil, err
	}
	return &b, nil
}

// maxBundleSize bounds a bundle file: checkpoints are small notes, and a
// proof has at most 64 hashes.
const maxBundleSize = 1 << 20

// decodeBundle decodes exactly one JSON object from data into v, first
// checking its format field so that a file of another kind gets a clear
// error rather than one about an unknown field.
func decodeBundle(data []byte, v any, kind, format, formatV2 string) error {
	if len(data) > maxBundleSize {
		return fmt.Errorf("%w: %s bundle: %d bytes is too large (at most %d)", ErrProof, kind, len(data), maxBundleSize)
	}
	var probe struct {
		Format *string `json:"format"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return fmt.Errorf("%w: %s bundle: not JSON: %v", ErrProof, kind, err)
	}
	if probe.Format == nil {
		return fmt.Errorf("%w: %s bundle: no format field", ErrProof, kind)
	}
	if *probe.Format != format && *probe.Format != formatV2 {
		return fmt.Errorf("%w: %s bundle: unknown format %q, want %q or %q", ErrProof, kind, *probe.Format, format, formatV2)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s bundle: %v", ErrProof, kind, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: %s bundle: data after the JSON object", ErrProof, kind)
	}
	return nil
}
