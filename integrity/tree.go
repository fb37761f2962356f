package integrity

import (
	"fmt"
	"math/bits"
)

// maxEdge is the most perfect subtrees a compact range [0, n) can have: one
// per set bit of n.
const maxEdge = 64

// Builder is the streaming hash chain and Merkle tree of a log: it turns
// records, in index order, into leaf hashes and keeps just the right edge of
// the RFC 6962 tree (the roots of the perfect subtrees covering [0, Size),
// one per set bit of Size), enough to compute the root of the current tree
// and to keep growing it.
//
// Append neither allocates nor touches the disk; nodes that should be kept
// for proofs are handed to the OnNode visitor (typically NodeStore.Append).
//
// A Builder is not safe for concurrent use.
type Builder struct {
	size  uint64
	head  Hash
	edge  []Hash // perfect subtree roots of [0, size), left to right (largest first)
	visit func(level uint, index uint64, h Hash)
}

// NewBuilder returns a Builder for an empty log.
func NewBuilder() *Builder {
	return &Builder{edge: make([]Hash, 0, maxEdge)}
}

// ResumeBuilder returns a Builder for a log of size records, continuing
// where a previous Builder (or NodeStore.Edge) left off. edge holds the
// compact range hashes of [0, size): the roots of its perfect subtrees, left
// to right, as Builder.Edge and NodeStore.Edge return them; there are exactly
// as many as size has set bits. head is the leaf hash of index size-1, zero
// when size is 0. ResumeBuilder cannot check that the hashes are right; it
// checks only their number and that head is zero for an empty log.
func ResumeBuilder(size uint64, head Hash, edge []Hash) (*Builder, error) {
	if want := bits.OnesCount64(size); len(edge) != want {
		return nil, fmt.Errorf("integrity: resume builder at size %d: got %d edge hashes, want %d", size, len(edge), want)
	}
	if size == 0 && head != (Hash{}) {
		return nil, fmt.Errorf("integrity: resume builder at size 0: head must be zero, got %s", head)
	}
	b := NewBuilder()
	b.size, b.head = size, head
	b.edge = append(b.edge, edge...)
	return b, nil
}

// OnNode sets fn, which may be nil, to be called by Append with every node
// that becomes complete: the new leaf (level 0) and then each interior node
// it completes, lowest level first. Over the whole life of the log this is
// the post-order of the tree, which is the order NodeStore.Append expects.
// A node at level L with index k covers leaves [k·2^L, (k+1)·2^L).
func (b *Builder) OnNode(fn func(level uint, index uint64, h Hash)) { b.visit = fn }

// Append adds the record with index b.Size(), the given time, type and
// payload hash, chained to the previous leaf (Prev = b.Head()), and returns
// its leaf hash, which becomes the new Head.
func (b *Builder) Append(time int64, typ uint8, payloadHash Hash) Hash {
	h := LeafHash(Record{Index: b.size, Prev: b.head, Time: time, Type: typ, PayloadHash: payloadHash})
	b.appendLeafHash(h)
	return h
}

// appendLeafHash adds a leaf with hash h to the tree and makes it the head.
func (b *Builder) appendLeafHash(h Hash) {
	j := b.size
	if b.visit != nil {
		b.visit(0, j, h)
	}
	b.head = h
	// Leaf j completes one interior node per trailing one bit of j: at each
	// such level the top of the edge is the left sibling of the new node.
	node := h
	for level := uint(0); j>>level&1 == 1; level++ {
		top := len(b.edge) - 1
		node = hashChildren(&b.edge[top], &node)
		b.edge = b.edge[:top]
		if b.visit != nil {
			b.visit(level+1, j>>(level+1), node)
		}
	}
	b.edge = append(b.edge, node)
	b.size = j + 1
}

// Size returns the number of records appended so far (including those
// before ResumeBuilder).
func (b *Builder) Size() uint64 { return b.size }

// Head returns the leaf hash of the last record, zero for an empty log.
func (b *Builder) Head() Hash { return b.head }

// Root returns the RFC 6962 Merkle tree hash of the records [0, Size): the
// hash of the empty string for an empty log. It does not change the Builder.
func (b *Builder) Root() Hash {
	return rootOfEdge(b.edge)
}

// rootOfEdge folds the compact range hashes of [0, n), left to right, into
// the root of the n-leaf tree: the right edge is combined from the smallest
// subtree up, each time as the right child.
func rootOfEdge(edge []Hash) Hash {
	if len(edge) == 0 {
		return emptyRoot
	}
	root := edge[len(edge)-1]
	for i := len(edge) - 2; i >= 0; i-- {
		root = hashChildren(&edge[i], &root)
	}
	return root
}

// Edge returns a copy of the compact range hashes of [0, Size), left to
// right, for ResumeBuilder.
func (b *Builder) Edge() []Hash {
	return append([]Hash(nil), b.edge...)
}
