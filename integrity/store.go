package integrity

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// ErrNodeMissing is matched by errors for nodes that a NodeStore does not
// hold (yet): a node is stored once the leaf that completes it and every
// node before it in post-order have been appended.
var ErrNodeMissing = errors.New("integrity: tree node not stored")

// hashSize is the size of one stored node hash.
const hashSize = int64(len(Hash{}))

// storeFlushSize is how many buffered bytes make Append write them out.
const storeFlushSize = 64 << 10

// The node file layout.
//
// The file is a plain array of 32-byte hashes: every complete node of the
// tree, in post-order. Leaf j is followed by the interior nodes it
// completes, lowest level first; leaf j completes exactly t interior nodes,
// where t is the number of trailing one bits of j (the node at level L+1
// above leaf j is complete exactly when bits 0..L of j are all one).
//
// Count. A tree with n leaves has floor(n/2^L) complete nodes at level L,
// so nodes(n) = Σ_{L≥0} floor(n/2^L) complete nodes in all. Writing n in
// binary, n = Σ_i b_i·2^i, each set bit i contributes 2^i + 2^(i-1) + … + 1
// = 2^(i+1) − 1 to that sum, so nodes(n) = Σ_i b_i·(2^(i+1) − 1) = 2n −
// popcount(n).
//
// Position. The nodes stored before leaf j are exactly the complete nodes of
// the tree of its first j leaves (a node is stored right after the leaf that
// completes it, which is its last leaf, and every node whose last leaf is
// below j is complete in the j-leaf tree), so leaf j sits at position
// nodes(j) = 2j − popcount(j), and the node at level L that it completes sits
// L places later. The node (L, k) covers leaves [k·2^L, (k+1)·2^L), so its
// last leaf is j = (k+1)·2^L − 1, and
//
//	P(L, k) = 2j − popcount(j) + L,  j = (k+1)·2^L − 1.
//
// (Check: the group of leaf j has 1 + t entries and indeed nodes(j+1) −
// nodes(j) = 2 − (popcount(j+1) − popcount(j)) = 2 − (1 − t) = 1 + t.)

// treeNodes returns 2n − popcount(n), the number of complete nodes of an
// n-leaf tree. n must be below 2^63.
func treeNodes(n uint64) uint64 { return 2*n - uint64(bits.OnesCount64(n)) }

// nodePos returns P(level, index) and whether the node can exist at all in
// a store of fewer than 2^63 entries (false for absurd coordinates, whose
// position would overflow).
func nodePos(level uint, index uint64) (uint64, bool) {
	if level >= 62 || index >= 1<<(62-level) {
		return 0, false
	}
	j := (index+1)<<level - 1
	return treeNodes(j) + uint64(level), true
}

// leavesFor returns the number n of leaves whose nodes all fit in m entries
// (the largest n with nodes(n) ≤ m) and the number of entries past nodes(n),
// which belong to leaf n and the first of the interior nodes it completes.
func leavesFor(m uint64) (n, extra uint64) {
	// nodes is strictly increasing, and nodes(n) ≥ n, so n ≤ m.
	lo, hi := uint64(0), m // nodes(lo) ≤ m; answer in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if treeNodes(mid) <= m {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo, m - treeNodes(lo)
}

// NodeStore keeps every complete node hash of the tree in one append-only
// file, in post-order (see Builder.OnNode), so that inclusion and
// consistency proofs for any tree size up to Leaves can be read from it and
// a Builder can resume from it. The position of every node is computed, not
// looked up: node (L, k) is hash number 2j − popcount(j) + L of the file,
// where j = (k+1)·2^L − 1, and a tree with n leaves occupies exactly
// 2n − popcount(n) hashes.
//
// Appends are buffered: Flush writes them, Sync makes them durable. Only
// what a Sync covered survives a crash intact; after a crash the bytes past
// the last Sync may be lost, torn, or zero-filled holes, so the caller must
// cut the store back (TruncateLeaves) to a size it knows was synced — or
// recompute that tail from the log — before trusting it. A trailing partial
// hash (file size not a multiple of 32) is never read.
//
// A NodeStore is safe for concurrent use: proofs may be read while nodes
// are appended.
type NodeStore struct {
	mu      sync.RWMutex
	f       vfs.File
	written uint64 // whole hashes in the file
	buf     []byte // hashes appended after the written ones, not yet written
	leaves  uint64 // leavesFor(written + len(buf)/32)
	extra   uint64
}

// OpenNodeStore opens the node file at path, creating an empty one if it
// does not exist. Whatever the file holds is taken as it is: Leaves reports
// how much of a tree it covers, and the caller trims it with TruncateLeaves.
//
// When the file is created, its directory entry is not durable until the
// caller calls SyncDir on its parent directory (after which a Sync of the
// store makes its contents durable).
func OpenNodeStore(fsys vfs.FS, path string) (*NodeStore, error) {
	f, err := fsys.OpenReadWrite(path)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = fsys.Create(path)
	}
	if err != nil {
		return nil, fmt.Errorf("integrity: open node store: %w", err)
	}
	size, err := f.Size()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("integrity: open node store %s: %w", path, err)
	}
	s := &NodeStore{f: f, written: uint64(size / hashSize)}
	s.leaves, s.extra = leavesFor(s.written)
	return s, nil
}

// entries returns the number of hashes stored, written or buffered. s.mu
// must be held.
func (s *NodeStore) entries() uint64 { return s.written + uint64(len(s.buf))/uint64(hashSize) }

// Append adds the node (level, index) with hash h. It must be the next node
// in post-order — leaf Leaves() if no interior node of that leaf is pending,
// else the next interior node it completes — or Append returns an error and
// stores nothing: that catches a caller that skipped or repeated a node. The
// hash is buffered; Append writes the buffer out when it grows past 64 KiB
// and returns the error of that write, in which case the node has been
// accepted all the same and stays buffered for a later Flush to retry.
func (s *NodeStore) Append(level uint, index uint64, h Hash) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return errors.New("integrity: node store: append after close")
	}
	wantLevel, wantIndex := uint(0), s.leaves
	if s.extra > 0 {
		wantLevel, wantIndex = uint(s.extra), s.leaves>>s.extra
	}
	if level != wantLevel || index != wantIndex {
		return fmt.Errorf("integrity: node store: append of node (level %d, index %d) out of order: want (level %d, index %d)",
			level, index, wantLevel, wantIndex)
	}
	s.buf = append(s.buf, h[:]...)
	// Leaf n completes one interior node per trailing one bit of n; after
	// storing the node at level e, its group is done when bit e is zero.
	if s.leaves>>level&1 == 1 {
		s.extra++
	} else {
		s.leaves++
		s.extra = 0
	}
	if len(s.buf) >= storeFlushSize {
		return s.flushLocked()
	}
	return nil
}

// Flush writes the buffered hashes to the file (without syncing it).
func (s *NodeStore) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushLocked()
}

// flushLocked writes s.buf at the end of the whole hashes of the file. A
// partial trailing hash is overwritten: the buffer is at least one hash
// long, and the partial hash shorter than one. s.mu must be held.
func (s *NodeStore) flushLocked() error {
	if len(s.buf) == 0 {
		return nil
	}
	if s.f == nil {
		return errors.New("integrity: node store: flush after close")
	}
	off := int64(s.written) * hashSize
	if _, err := s.f.WriteAt(s.buf, off); err != nil {
		// Nothing is taken as written: the next flush rewrites the same
		// bytes at the same offset, and TruncateLeaves asks the file for
		// its size.
		return fmt.Errorf("integrity: node store: write %s: %w", s.f.Name(), err)
	}
	s.written += uint64(len(s.buf)) / uint64(hashSize)
	s.buf = s.buf[:0]
	return nil
}

// Sync writes the buffered hashes and makes the file's contents and size
// durable (Datasync).
func (s *NodeStore) Sync() error {
	// Write the buffer under the lock, but call fdatasync without it, so
	// that appenders (the log's commit path) never wait for the disk.
	s.mu.Lock()
	if err := s.flushLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	f := s.f
	s.mu.Unlock()
	if f == nil {
		return errors.New("integrity: node store: sync after close")
	}
	if err := f.Datasync(); err != nil {
		return fmt.Errorf("integrity: node store: sync %s: %w", f.Name(), err)
	}
	return nil
}

// Leaves returns the number of leaves whose nodes are all stored (written or
// buffered): the largest n with 2n − popcount(n) ≤ the number of stored
// hashes. Proofs for every tree size up to Leaves can be read.
func (s *NodeStore) Leaves() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.leaves
}

// Node returns the hash of the node at level and index. It returns an error
// matching ErrNodeMissing if that node is not stored.
func (s *NodeStore) Node(level uint, index uint64) (Hash, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.nodeLocked(level, index)
}

// nodeLocked is Node with s.mu held (for reading at least).
func (s *NodeStore) nodeLocked(level uint, index uint64) (Hash, error) {
	var h Hash
	pos, ok := nodePos(level, index)
	if !ok || pos >= s.entries() {
		return h, fmt.Errorf("%w: (level %d, index %d) beyond %d stored leaves", ErrNodeMissing, level, index, s.leaves)
	}
	if pos >= s.written {
		off := (pos - s.written) * uint64(hashSize)
		copy(h[:], s.buf[off:])
		return h, nil
	}
	if s.f == nil {
		return h, errors.New("integrity: node store: read after close")
	}
	n, err := s.f.ReadAt(h[:], int64(pos)*hashSize)
	if n == len(h) {
		return h, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return Hash{}, fmt.Errorf("integrity: node store: read node (level %d, index %d) from %s: %w", level, index, s.f.Name(), err)
}

// TruncateLeaves cuts the store to exactly the nodes of an n-leaf tree,
// dropping buffered and written hashes beyond them and a partial trailing
// hash. n must not exceed Leaves. The file's new size is durable only after
// Sync. Use it on open to drop a torn or unneeded tail.
func (s *NodeStore) TruncateLeaves(n uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n > s.leaves {
		return fmt.Errorf("integrity: node store: truncate to %d leaves: only %d stored", n, s.leaves)
	}
	if s.f == nil {
		return errors.New("integrity: node store: truncate after close")
	}
	size, err := s.f.Size()
	if err != nil {
		return fmt.Errorf("integrity: node store: truncate %s: %w", s.f.Name(), err)
	}
	m := treeNodes(n)
	written := min(m, s.written)
	// Cut the file after the hashes kept (dropping a partial hash too);
	// buffered hashes that are kept stay buffered.
	if want := int64(written) * hashSize; size != want {
		if err := s.f.Truncate(want); err != nil {
			return fmt.Errorf("integrity: node store: truncate %s: %w", s.f.Name(), err)
		}
	}
	s.buf = s.buf[:(m-written)*uint64(hashSize)]
	s.written = written
	s.leaves, s.extra = n, 0
	return nil
}

// Edge returns the compact range hashes of [0, size): the roots of the
// perfect subtrees covering it, left to right, as ResumeBuilder takes them.
// size must not exceed Leaves (else the error matches ErrNodeMissing).
func (s *NodeStore) Edge(size uint64) ([]Hash, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := compact.RangeNodes(0, size, make([]compact.NodeID, 0, bits.OnesCount64(size)))
	edge := make([]Hash, len(ids))
	for i, id := range ids {
		h, err := s.nodeLocked(id.Level, id.Index)
		if err != nil {
			return nil, fmt.Errorf("integrity: node store: edge of %d leaves: %w", size, err)
		}
		edge[i] = h
	}
	return edge, nil
}

// RootAt returns the RFC 6962 root of the tree of the first size leaves.
// size must not exceed Leaves (else the error matches ErrNodeMissing).
func (s *NodeStore) RootAt(size uint64) (Hash, error) {
	edge, err := s.Edge(size)
	if err != nil {
		return Hash{}, err
	}
	return rootOfEdge(edge), nil
}

// Close writes the buffered hashes (without syncing them) and closes the
// file. The store must not be used afterwards.
func (s *NodeStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return errors.New("integrity: node store: already closed")
	}
	err := s.flushLocked()
	if cerr := s.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("integrity: node store: close %s: %w", s.f.Name(), cerr)
	}
	s.f = nil
	s.buf = nil
	return err
}

// OpenNodeReader opens an existing node file read-only, for verifiers that
// must not modify the log directory. Only the read methods (Node, Leaves,
// Edge, RootAt) may be used; Close releases it.
func OpenNodeReader(fsys vfs.FS, path string) (*NodeStore, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return nil, fmt.Errorf("integrity: open node file: %w", err)
	}
	size, err := f.Size()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("integrity: open node file %s: %w", path, err)
	}
	s := &NodeStore{f: f, written: uint64(size / hashSize)}
	s.leaves, s.extra = leavesFor(s.written)
	return s, nil
}
