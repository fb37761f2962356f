package integrity

import (
	"errors"
	"math/bits"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// bruteForcePositions enumerates the complete nodes of an n-leaf tree in the
// order the store keeps them, straight from the definition: after leaf j,
// each node whose last leaf is j, lowest level first.
func bruteForcePositions(n uint64) map[nodeID]uint64 {
	pos := map[nodeID]uint64{}
	var next uint64
	for j := uint64(0); j < n; j++ {
		for level := uint(0); level < 64; level++ {
			width := uint64(1) << level
			if (j+1)%width != 0 {
				break // no node of this level (or above) ends at leaf j
			}
			pos[nodeID{level, (j+1)/width - 1}] = next
			next++
		}
	}
	return pos
}

func TestNodePositionsBruteForce(t *testing.T) {
	const n = 1100
	pos := bruteForcePositions(n)
	for id, want := range pos {
		got, ok := nodePos(id.level, id.index)
		if !ok || got != want {
			t.Fatalf("nodePos(%d, %d) = %d, %v; want %d", id.level, id.index, got, ok, want)
		}
	}
	// The count formula and its inverse, for every prefix.
	counts := make([]uint64, n+1) // nodes of an m-leaf tree
	for id := range pos {
		for m := (id.index + 1) << id.level; m <= n; m++ {
			counts[m]++
		}
	}
	for m := uint64(0); m <= n; m++ {
		if got := treeNodes(m); got != counts[m] || got != 2*m-uint64(bits.OnesCount64(m)) {
			t.Fatalf("treeNodes(%d) = %d, brute force %d", m, got, counts[m])
		}
	}
	for e := uint64(0); e < treeNodes(n); e++ {
		leaves, extra := leavesFor(e)
		if treeNodes(leaves) > e || treeNodes(leaves+1) <= e || extra != e-treeNodes(leaves) {
			t.Fatalf("leavesFor(%d) = %d, %d", e, leaves, extra)
		}
	}
	for _, c := range []struct {
		level uint
		index uint64
	}{{62, 0}, {63, 1}, {200, 0}, {0, 1 << 62}, {10, 1 << 52}, {0, ^uint64(0)}} {
		if _, ok := nodePos(c.level, c.index); ok {
			t.Errorf("nodePos(%d, %d) claims an absurd node can exist", c.level, c.index)
		}
	}
}

// newStoreLog builds the n-record test log into a new store at path.
func newStoreLog(t *testing.T, fsys vfs.FS, path string, n int) (*NodeStore, *Builder) {
	t.Helper()
	s, err := OpenNodeStore(fsys, path)
	if err != nil {
		t.Fatal(err)
	}
	b := NewBuilder()
	b.OnNode(storeVisitor(t, s))
	buildTestLog(t, b, n)
	return s, b
}

func storeVisitor(t *testing.T, s *NodeStore) func(uint, uint64, Hash) {
	return func(level uint, index uint64, h Hash) {
		if err := s.Append(level, index, h); err != nil {
			t.Fatalf("store append (%d, %d): %v", level, index, err)
		}
	}
}

// checkAllNodes compares every node of the first n leaves with the naive
// computation, and the first node beyond with ErrNodeMissing.
func checkAllNodes(t *testing.T, s NodeReader, leaves []Hash, n uint64) {
	t.Helper()
	for level := uint(0); uint64(1)<<level <= n; level++ {
		for k := uint64(0); (k+1)<<level <= n; k++ {
			h, err := s.Node(level, k)
			lo := k << level
			if want := naiveMTH(leaves[lo : lo+1<<level]); err != nil || h != want {
				t.Fatalf("Node(%d, %d) = %x, %v; want %x", level, k, h, err, want)
			}
		}
		k := n >> level
		if _, err := s.Node(level, k); !errors.Is(err, ErrNodeMissing) {
			t.Fatalf("Node(%d, %d) beyond %d leaves: err %v, want ErrNodeMissing", level, k, n, err)
		}
	}
}

func TestNodeStoreAppendReadReopen(t *testing.T) {
	const n = 777
	_, leaves := testLog(n)
	fsys := vfs.NewCrashFS()
	s, err := OpenNodeStore(fsys, "nodes")
	if err != nil {
		t.Fatal(err)
	}
	if s.Leaves() != 0 {
		t.Fatalf("new store has %d leaves", s.Leaves())
	}
	b := NewBuilder()
	b.OnNode(storeVisitor(t, s))
	rng := rand.New(rand.NewPCG(3, 4))
	for b.Size() < n {
		buildTestLog(t, b, min(n, int(b.Size())+1+rng.IntN(40)))
		if s.Leaves() != b.Size() {
			t.Fatalf("Leaves %d after %d appends", s.Leaves(), b.Size())
		}
		if rng.IntN(2) == 0 {
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		// Reads see buffered and written nodes alike.
		r, err := s.RootAt(b.Size())
		if err != nil || r != b.Root() {
			t.Fatalf("RootAt(%d) = %x, %v; builder root %x", b.Size(), r, err, b.Root())
		}
	}
	size := b.Size()
	checkAllNodes(t, s, leaves, size)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Stat("nodes")
	if err != nil || f.Size() != int64(treeNodes(size))*32 {
		t.Fatalf("file size %v (%v), want %d", f.Size(), err, treeNodes(size)*32)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err == nil {
		t.Error("second Close succeeded")
	}
	if err := s.Append(0, size, Hash{}); err == nil {
		t.Error("Append after Close succeeded")
	}

	// Reopen: everything is there, from the file alone.
	s2, err := OpenNodeStore(fsys, "nodes")
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.Leaves() != size {
		t.Fatalf("reopened store has %d leaves, want %d", s2.Leaves(), size)
	}
	checkAllNodes(t, s2, leaves, size)
	// And it continues where it was.
	b2, err := ResumeBuilder(size, b.Head(), mustEdge(t, s2, size))
	if err != nil {
		t.Fatal(err)
	}
	b2.OnNode(storeVisitor(t, s2))
	buildTestLog(t, b2, n+100)
	_, leaves = testLog(n + 100)
	checkAllNodes(t, s2, leaves, n+100)
	if r, err := s2.RootAt(n + 100); err != nil || r != naiveMTH(leaves) {
		t.Fatalf("RootAt after resume = %x, %v", r, err)
	}
}

func mustEdge(t *testing.T, s *NodeStore, size uint64) []Hash {
	t.Helper()
	e, err := s.Edge(size)
	if err != nil {
		t.Fatalf("Edge(%d): %v", size, err)
	}
	return e
}

func TestNodeStoreEdgeResumeEverySize(t *testing.T) {
	const n = 130
	s, full := newStoreLog(t, vfs.NewCrashFS(), "nodes", n)
	defer s.Close()
	for k := uint64(0); k <= n; k++ {
		part := NewBuilder()
		buildTestLog(t, part, int(k))
		edge := mustEdge(t, s, k)
		if len(edge) != len(part.Edge()) {
			t.Fatalf("Edge(%d) has %d hashes, want %d", k, len(edge), len(part.Edge()))
		}
		for i := range edge {
			if edge[i] != part.Edge()[i] {
				t.Fatalf("Edge(%d)[%d] differs from the builder's", k, i)
			}
		}
		if r, err := s.RootAt(k); err != nil || r != part.Root() {
			t.Fatalf("RootAt(%d) = %x, %v; want %x", k, r, err, part.Root())
		}
		rb, err := ResumeBuilder(k, part.Head(), edge)
		if err != nil {
			t.Fatal(err)
		}
		buildTestLog(t, rb, n)
		if rb.Root() != full.Root() {
			t.Fatalf("builder resumed from Edge(%d) reaches a different root", k)
		}
	}
	if _, err := s.Edge(n + 1); !errors.Is(err, ErrNodeMissing) {
		t.Fatalf("Edge beyond the store: %v, want ErrNodeMissing", err)
	}
	if _, err := s.RootAt(n + 1); !errors.Is(err, ErrNodeMissing) {
		t.Fatalf("RootAt beyond the store: %v, want ErrNodeMissing", err)
	}
}

func TestNodeStoreRejectsOutOfOrder(t *testing.T) {
	s, _ := newStoreLog(t, vfs.NewCrashFS(), "nodes", 11) // leaf 11 completes (1,5) and (2,2)
	defer s.Close()
	bad := []nodeID{{0, 10}, {0, 12}, {1, 5}, {1, 4}, {3, 0}}
	for _, id := range bad {
		if err := s.Append(id.level, id.index, Hash{1}); err == nil {
			t.Fatalf("Append(%d, %d) accepted; next is (0, 11)", id.level, id.index)
		}
	}
	if s.Leaves() != 11 {
		t.Fatalf("rejected appends changed Leaves to %d", s.Leaves())
	}
	// Leaf 11, then (1, 5) is required before (2, 2).
	if err := s.Append(0, 11, Hash{1}); err != nil {
		t.Fatal(err)
	}
	if s.Leaves() != 11 {
		t.Fatalf("Leaves %d with leaf 11's parents pending, want 11", s.Leaves())
	}
	if err := s.Append(2, 2, Hash{2}); err == nil {
		t.Fatal("Append(2, 2) accepted before (1, 5)")
	}
	if err := s.Append(0, 12, Hash{2}); err == nil {
		t.Fatal("Append(0, 12) accepted before leaf 11's parents")
	}
	if err := s.Append(1, 5, Hash{2}); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(2, 2, Hash{3}); err != nil {
		t.Fatal(err)
	}
	if s.Leaves() != 12 {
		t.Fatalf("Leaves %d, want 12", s.Leaves())
	}
	if h, err := s.Node(2, 2); err != nil || h != (Hash{3}) {
		t.Fatalf("Node(2, 2) = %x, %v", h, err)
	}
}

func TestNodeStoreTornTail(t *testing.T) {
	const n = 37
	_, leaves := testLog(n + 5)
	fsys := vfs.NewCrashFS()
	s, b := newStoreLog(t, fsys, "nodes", n)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	// Leaf 37 completes (1, 18): store the leaf but not its parent, then a
	// torn half hash.
	if err := s.Append(0, n, leaves[n]); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := fsys.OpenReadWrite("nodes")
	if err != nil {
		t.Fatal(err)
	}
	whole := int64(treeNodes(n)+1) * 32
	if _, err := f.WriteAt(make([]byte, 13), whole); err != nil {
		t.Fatal(err)
	}
	f.Close()

	s, err = OpenNodeStore(fsys, "nodes")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Leaves() != n {
		t.Fatalf("torn store reports %d leaves, want %d", s.Leaves(), n)
	}
	if h, err := s.Node(0, n); err != nil || h != leaves[n] {
		t.Fatalf("the stored lone leaf %d: %x, %v", n, h, err)
	}
	if _, err := s.Node(1, n/2); !errors.Is(err, ErrNodeMissing) {
		t.Fatalf("Node(1, %d) from the torn hash: %v, want ErrNodeMissing", n/2, err)
	}
	// The next node must be leaf 37's parent; a new leaf is refused.
	if err := s.Append(0, n+1, leaves[n+1]); err == nil {
		t.Fatal("store with a pending parent accepted the next leaf")
	}
	if err := s.TruncateLeaves(n + 1); err == nil {
		t.Fatal("TruncateLeaves beyond Leaves succeeded")
	}
	if err := s.TruncateLeaves(n); err != nil {
		t.Fatal(err)
	}
	if st, _ := fsys.Stat("nodes"); st.Size() != int64(treeNodes(n))*32 {
		t.Fatalf("after TruncateLeaves file is %d bytes, want %d", st.Size(), treeNodes(n)*32)
	}
	if _, err := s.Node(0, n); !errors.Is(err, ErrNodeMissing) {
		t.Fatalf("leaf %d survived truncation: %v", n, err)
	}
	checkAllNodes(t, s, leaves, n)
	// It grows again from there, identically.
	b.OnNode(storeVisitor(t, s))
	buildTestLog(t, b, n+5)
	checkAllNodes(t, s, leaves, n+5)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if st, _ := fsys.Stat("nodes"); st.Size() != int64(treeNodes(n+5))*32 {
		t.Fatalf("file is %d bytes, want %d", st.Size(), treeNodes(n+5)*32)
	}
}

func TestNodeStoreTruncateBufferedAndWritten(t *testing.T) {
	const n = 300
	_, leaves := testLog(n)
	for _, cut := range []uint64{0, 1, 64, 100, 199, 200, 250, 300} {
		fsys := vfs.NewCrashFS()
		s, err := OpenNodeStore(fsys, "nodes")
		if err != nil {
			t.Fatal(err)
		}
		b := NewBuilder()
		b.OnNode(storeVisitor(t, s))
		buildTestLog(t, b, 200)
		if err := s.Flush(); err != nil { // 200 leaves written, 100 buffered
			t.Fatal(err)
		}
		buildTestLog(t, b, n)
		if err := s.TruncateLeaves(cut); err != nil {
			t.Fatal(err)
		}
		if s.Leaves() != cut {
			t.Fatalf("cut %d: Leaves %d", cut, s.Leaves())
		}
		checkAllNodes(t, s, leaves, cut)
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		if st, _ := fsys.Stat("nodes"); st.Size() != int64(treeNodes(cut))*32 {
			t.Fatalf("cut %d: file is %d bytes, want %d", cut, st.Size(), treeNodes(cut)*32)
		}
		s.Close()
	}
}

func TestNodeStoreCrashKeepsSynced(t *testing.T) {
	const synced, n = 500, 900
	_, leaves := testLog(n)
	fsys := vfs.NewCrashFS()
	if err := fsys.MkdirAll("d", 0o750); err != nil {
		t.Fatal(err)
	}
	s, b := newStoreLog(t, fsys, "d/nodes", synced)
	for _, dir := range []string{".", "d"} {
		if err := fsys.SyncDir(dir); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	b.OnNode(storeVisitor(t, s))
	buildTestLog(t, b, n)
	if err := s.Flush(); err != nil { // written, not synced
		t.Fatal(err)
	}
	for seed := int64(0); seed < 20; seed++ {
		crashed := fsys.CrashClone(vfs.CrashOptions{Seed: seed, KeepSectorProb: 0.5, KeepDirOpProb: 0.5})
		cs, err := OpenNodeStore(crashed, "d/nodes")
		if err != nil {
			t.Fatal(err)
		}
		if cs.Leaves() < synced {
			t.Fatalf("seed %d: only %d leaves survived a crash after syncing %d", seed, cs.Leaves(), synced)
		}
		// The caller cuts back to what it knows was synced.
		if err := cs.TruncateLeaves(synced); err != nil {
			t.Fatal(err)
		}
		checkAllNodes(t, cs, leaves, synced)
		cs.Close()
	}
}

func TestNodeStoreAutoFlush(t *testing.T) {
	fsys := vfs.NewCrashFS()
	s, _ := newStoreLog(t, fsys, "nodes", 2000) // 3994 hashes, more than 64 KiB
	defer s.Close()
	st, err := fsys.Stat("nodes")
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() < storeFlushSize || st.Size()%32 != 0 {
		t.Fatalf("after 2000 leaves without Flush the file is %d bytes; want at least %d written", st.Size(), storeFlushSize)
	}
}

func TestNodeStoreOS(t *testing.T) {
	const n = 321
	_, leaves := testLog(n)
	path := filepath.Join(t.TempDir(), "nodes")
	s, b := newStoreLog(t, vfs.OS(), path, n)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := OpenNodeStore(vfs.OS(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkAllNodes(t, s, leaves, n)
	if r, err := s.RootAt(n); err != nil || r != b.Root() {
		t.Fatalf("RootAt = %x, %v; want %x", r, err, b.Root())
	}
}

func BenchmarkBuilderAppendWithStore(b *testing.B) {
	s, err := OpenNodeStore(vfs.OS(), filepath.Join(b.TempDir(), "nodes"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	bl := NewBuilder()
	bl.OnNode(func(level uint, index uint64, h Hash) {
		if err := s.Append(level, index, h); err != nil {
			b.Fatal(err)
		}
	})
	ph := PayloadHash([]byte("benchmark payload"))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bl.Append(int64(i), 1, ph)
	}
	if err := s.Flush(); err != nil {
		b.Fatal(err)
	}
}

func TestNodeStoreWriteFaults(t *testing.T) {
	const n = 300
	_, leaves := testLog(n)
	mem := vfs.NewCrashFS()
	ffs := vfs.NewFaultFS(mem)
	s, b := newStoreLog(t, ffs, "nodes", 100)
	defer s.Close()
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	b.OnNode(storeVisitor(t, s))
	buildTestLog(t, b, 200)
	// The disk fills up in the middle of a hash: the flush fails, keeps
	// everything buffered and readable, and a retry completes the file.
	ffs.SetWriteBudget(32*50 + 7)
	if err := s.Flush(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Flush on a full disk: %v, want ENOSPC", err)
	}
	if s.Leaves() != 200 {
		t.Fatalf("Leaves %d after a failed flush, want 200", s.Leaves())
	}
	checkAllNodes(t, s, leaves, 200)
	ffs.FailSyncs(syscall.EIO)
	ffs.SetWriteBudget(-1)
	if err := s.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync with failing fsync: %v, want EIO", err)
	}
	ffs.FailSyncs(nil)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if st, _ := mem.Stat("nodes"); st.Size() != int64(treeNodes(200))*32 {
		t.Fatalf("file is %d bytes after the retry, want %d", st.Size(), treeNodes(200)*32)
	}
	// A failed write of a torn hash past the end is cut by TruncateLeaves.
	buildTestLog(t, b, 203)
	ffs.SetWriteBudget(40)
	if err := s.Flush(); err == nil {
		t.Fatal("Flush on a full disk succeeded")
	}
	ffs.SetWriteBudget(-1)
	if err := s.TruncateLeaves(200); err != nil {
		t.Fatal(err)
	}
	if st, _ := mem.Stat("nodes"); st.Size() != int64(treeNodes(200))*32 {
		t.Fatalf("file is %d bytes after TruncateLeaves, want %d", st.Size(), treeNodes(200)*32)
	}
	b2, err := ResumeBuilder(200, leaves[199], mustEdge(t, s, 200))
	if err != nil {
		t.Fatal(err)
	}
	b2.OnNode(storeVisitor(t, s))
	buildTestLog(t, b2, n)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenNodeStore(mem, "nodes")
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	checkAllNodes(t, s2, leaves, n)
}
