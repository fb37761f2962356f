package integrity

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// naiveMTH is the Merkle Tree Hash of RFC 6962 section 2.1, written from
// the definition: MTH of n > 1 leaves splits at the largest power of two
// below n.
func naiveMTH(leaves []Hash) Hash {
	switch n := len(leaves); n {
	case 0:
		return Hash(rfc6962.DefaultHasher.EmptyRoot())
	case 1:
		return leaves[0]
	default:
		k := 1 << (bits.Len(uint(n-1)) - 1)
		l, r := naiveMTH(leaves[:k]), naiveMTH(leaves[k:])
		return Hash(rfc6962.DefaultHasher.HashChildren(l[:], r[:]))
	}
}

// testRecord returns the deterministic record i of the test logs, chained to
// prev.
func testRecord(i uint64, prev Hash) Record {
	return Record{
		Index:       i,
		Prev:        prev,
		Time:        1_700_000_000_000_000_000 + int64(i)*1_000_003,
		Type:        uint8(i%5 + 1),
		PayloadHash: PayloadHash([]byte(fmt.Sprintf("payload of record %d", i))),
	}
}

// testLog returns the records and leaf hashes of the first n records.
func testLog(n int) ([]Record, []Hash) {
	recs := make([]Record, n)
	leaves := make([]Hash, n)
	var prev Hash
	for i := range recs {
		recs[i] = testRecord(uint64(i), prev)
		leaves[i] = LeafHash(recs[i])
		prev = leaves[i]
	}
	return recs, leaves
}

// buildTestLog appends the first n test records to b, checking the chain.
func buildTestLog(t testing.TB, b *Builder, n int) {
	t.Helper()
	for b.Size() < uint64(n) {
		r := testRecord(b.Size(), b.Head())
		if h := b.Append(r.Time, r.Type, r.PayloadHash); h != LeafHash(r) {
			t.Fatalf("Append of record %d returned %x, want %x", r.Index, h, LeafHash(r))
		}
	}
}

func hx(t testing.TB, s string) Hash {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		t.Fatalf("bad test hash %q", s)
	}
	return Hash(b)
}

// The leaf inputs of the RFC 6962 / certificate-transparency test tree.
var rfcLeafInputs = []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}

// rfcLeafHashes returns the leaf hashes of the RFC 6962 test tree.
func rfcLeafHashes(t testing.TB) []Hash {
	out := make([]Hash, len(rfcLeafInputs))
	for i, s := range rfcLeafInputs {
		data, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = Hash(rfc6962.DefaultHasher.HashLeaf(data))
	}
	return out
}

// rfcRoots are the known roots of the RFC 6962 test tree of sizes 1..8.
var rfcRoots = []string{
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}

// rfcNodes are the known complete nodes of the 8-leaf test tree, by level.
var rfcNodes = [][]string{{
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	"0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
	"07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
	"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
	"4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
	"b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
	"46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
}, {
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
	"ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
}, {
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
}, {
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}}

type nodeID struct {
	level uint
	index uint64
}

// memNodes is a NodeReader over a map, fed by Builder.OnNode.
type memNodes map[nodeID]Hash

func (m memNodes) Node(level uint, index uint64) (Hash, error) {
	h, ok := m[nodeID{level, index}]
	if !ok {
		return Hash{}, fmt.Errorf("%w: (%d, %d)", ErrNodeMissing, level, index)
	}
	return h, nil
}

func TestBuilderRFC6962Vectors(t *testing.T) {
	b := NewBuilder()
	nodes := memNodes{}
	b.OnNode(func(level uint, index uint64, h Hash) { nodes[nodeID{level, index}] = h })
	if got := b.Root(); hex.EncodeToString(got[:]) != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Fatalf("empty root %x", got)
	}
	for i, lh := range rfcLeafHashes(t) {
		b.appendLeafHash(lh)
		if got, want := b.Root(), hx(t, rfcRoots[i]); got != want {
			t.Fatalf("root of size %d = %x, want %x", i+1, got, want)
		}
	}
	count := 0
	for level, row := range rfcNodes {
		for index, s := range row {
			count++
			if got, ok := nodes[nodeID{uint(level), uint64(index)}]; !ok || got != hx(t, s) {
				t.Errorf("node (%d, %d) = %x (visited %v), want %s", level, index, got, ok, s)
			}
		}
	}
	if len(nodes) != count {
		t.Errorf("visited %d nodes, want %d", len(nodes), count)
	}
}

func TestBuilderMatchesReference(t *testing.T) {
	const maxN = 300
	_, leaves := testLog(2100)
	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	cr := rf.NewEmptyRange(0)
	b := NewBuilder()
	check := func(n int) {
		t.Helper()
		want := naiveMTH(leaves[:n])
		if got := b.Root(); got != want {
			t.Fatalf("size %d: Builder root %x, naive MTH %x", n, got, want)
		}
		lib, err := cr.GetRootHash(nil)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 && !bytes.Equal(lib, want[:]) {
			t.Fatalf("size %d: compact.Range root %x, naive MTH %x", n, lib, want)
		}
		edge := b.Edge()
		if len(edge) != len(cr.Hashes()) {
			t.Fatalf("size %d: edge has %d hashes, compact range %d", n, len(edge), len(cr.Hashes()))
		}
		for i := range edge {
			if !bytes.Equal(edge[i][:], cr.Hashes()[i]) {
				t.Fatalf("size %d: edge hash %d differs from compact range", n, i)
			}
		}
	}
	grow := func(n int) {
		for b.Size() < uint64(n) {
			lh := leaves[b.Size()]
			r := testRecord(b.Size(), b.Head())
			if h := b.Append(r.Time, r.Type, r.PayloadHash); h != lh {
				t.Fatalf("leaf %d: Append = %x, want %x", b.Size()-1, h, lh)
			}
			if err := cr.Append(lh[:], nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	for n := 0; n <= maxN; n++ {
		grow(n)
		check(n)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := maxN; n < len(leaves); n += 1 + rng.IntN(200) {
		grow(n)
		check(n)
	}
}

func TestBuilderChainAndHead(t *testing.T) {
	b := NewBuilder()
	if b.Size() != 0 || b.Head() != (Hash{}) {
		t.Fatalf("new builder: size %d head %x", b.Size(), b.Head())
	}
	recs, leaves := testLog(20)
	for i, r := range recs {
		if b.Head() != r.Prev {
			t.Fatalf("record %d: Head %x, want Prev %x", i, b.Head(), r.Prev)
		}
		if h := b.Append(r.Time, r.Type, r.PayloadHash); h != leaves[i] || b.Head() != h || b.Size() != uint64(i+1) {
			t.Fatalf("record %d: Append = %x, Head %x, Size %d", i, h, b.Head(), b.Size())
		}
	}
	// Root does not change the builder.
	r1 := b.Root()
	if r2 := b.Root(); r1 != r2 || b.Size() != 20 || b.Head() != leaves[19] {
		t.Fatalf("Root changed the builder")
	}
	// Edge returns a copy.
	e := b.Edge()
	e[0] = Hash{}
	if b.Root() != r1 {
		t.Fatalf("modifying Edge() changed the builder")
	}
}

func TestBuilderOnNodePostOrder(t *testing.T) {
	const n = 200
	_, leaves := testLog(n)
	b := NewBuilder()
	var pos uint64
	b.OnNode(func(level uint, index uint64, h Hash) {
		p, ok := nodePos(level, index)
		if !ok || p != pos {
			t.Fatalf("node (%d, %d) visited as number %d, post-order position %d", level, index, pos, p)
		}
		pos++
		lo := index << level
		if want := naiveMTH(leaves[lo : lo+1<<level]); h != want {
			t.Fatalf("node (%d, %d) = %x, want %x", level, index, h, want)
		}
	})
	buildTestLog(t, b, n)
	if pos != treeNodes(n) {
		t.Fatalf("visited %d nodes, want %d", pos, treeNodes(n))
	}
}

func TestResumeBuilder(t *testing.T) {
	const n = 100
	full := NewBuilder()
	buildTestLog(t, full, n)
	want := full.Root()
	for k := 0; k <= n; k++ {
		part := NewBuilder()
		buildTestLog(t, part, k)
		rb, err := ResumeBuilder(part.Size(), part.Head(), part.Edge())
		if err != nil {
			t.Fatalf("resume at %d: %v", k, err)
		}
		if rb.Root() != part.Root() || rb.Size() != uint64(k) || rb.Head() != part.Head() {
			t.Fatalf("resume at %d: state differs", k)
		}
		buildTestLog(t, rb, n)
		if rb.Root() != want || rb.Head() != full.Head() {
			t.Fatalf("resumed at %d: root %x, want %x", k, rb.Root(), want)
		}
	}
	if _, err := ResumeBuilder(5, Hash{1}, make([]Hash, 1)); err == nil {
		t.Error("ResumeBuilder accepted 1 edge hash for size 5 (needs 2)")
	}
	if _, err := ResumeBuilder(4, Hash{1}, make([]Hash, 2)); err == nil {
		t.Error("ResumeBuilder accepted 2 edge hashes for size 4 (needs 1)")
	}
	if _, err := ResumeBuilder(0, Hash{1}, nil); err == nil {
		t.Error("ResumeBuilder accepted a non-zero head for size 0")
	}
	// The caller's slice is copied.
	part := NewBuilder()
	buildTestLog(t, part, 7)
	edge := part.Edge()
	rb, err := ResumeBuilder(7, part.Head(), edge)
	if err != nil {
		t.Fatal(err)
	}
	edge[0] = Hash{}
	if rb.Root() != part.Root() {
		t.Error("ResumeBuilder kept the caller's edge slice")
	}
}

func TestBuilderAppendAllocs(t *testing.T) {
	b := NewBuilder()
	buildTestLog(t, b, 1000)
	ph := PayloadHash([]byte("x"))
	if n := testing.AllocsPerRun(1000, func() { b.Append(1, 2, ph) }); n != 0 {
		t.Fatalf("Append allocates %v times per call, want 0", n)
	}
	visited := 0
	b.OnNode(func(uint, uint64, Hash) { visited++ })
	if n := testing.AllocsPerRun(1000, func() { b.Append(1, 2, ph) }); n != 0 {
		t.Fatalf("Append with a visitor allocates %v times per call, want 0", n)
	}
	if visited < 1000 {
		t.Fatalf("visitor called %d times for 1000+ appends", visited)
	}
}

func BenchmarkBuilderAppend(b *testing.B) {
	bl := NewBuilder()
	ph := PayloadHash([]byte("benchmark payload"))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bl.Append(int64(i), 1, ph)
	}
}

func BenchmarkBuilderRoot(b *testing.B) {
	bl := NewBuilder()
	ph := PayloadHash([]byte("benchmark payload"))
	for i := 0; i < 1<<20-1; i++ {
		bl.Append(int64(i), 1, ph)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = bl.Root()
	}
}
