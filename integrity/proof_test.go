package integrity

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// testTree is the test log of n records with all its nodes and the root of
// every prefix.
type testTree struct {
	recs   []Record
	leaves []Hash
	nodes  memNodes
	roots  []Hash // roots[k] is the root of the first k leaves
}

func newTestTree(n int) *testTree {
	tt := &testTree{nodes: memNodes{}}
	tt.recs, tt.leaves = testLog(n)
	b := NewBuilder()
	b.OnNode(func(level uint, index uint64, h Hash) { tt.nodes[nodeID{level, index}] = h })
	tt.roots = append(tt.roots, b.Root())
	for _, r := range tt.recs {
		b.Append(r.Time, r.Type, r.PayloadHash)
		tt.roots = append(tt.roots, b.Root())
	}
	return tt
}

func hashesEqual(a, b []Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func wantProofErr(t *testing.T, err error, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: accepted", what)
	}
	if !errors.Is(err, ErrProof) {
		t.Fatalf("%s: error %v does not match ErrProof", what, err)
	}
}

func TestProofRFC6962Vectors(t *testing.T) {
	nodes := memNodes{}
	b := NewBuilder()
	b.OnNode(func(level uint, index uint64, h Hash) { nodes[nodeID{level, index}] = h })
	leaves := rfcLeafHashes(t)
	for _, lh := range leaves {
		b.appendLeafHash(lh)
	}
	root := func(size uint64) Hash { return hx(t, rfcRoots[size-1]) }
	hs := func(s ...string) []Hash {
		out := make([]Hash, len(s))
		for i := range s {
			out[i] = hx(t, s[i])
		}
		return out
	}
	inclusion := []struct {
		index, size uint64
		proof       []Hash
	}{
		{0, 1, nil},
		{0, 8, hs("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
			"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
			"6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")},
		{5, 8, hs("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
			"ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
			"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")},
		{2, 3, hs("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")},
		{1, 5, hs("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
			"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
			"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")},
	}
	for _, v := range inclusion {
		p, err := InclusionProof(nodes, v.index, v.size)
		if err != nil || !hashesEqual(p, v.proof) {
			t.Errorf("InclusionProof(%d, %d) = %x, %v; want %x", v.index, v.size, p, err, v.proof)
		}
		if err := VerifyInclusion(v.index, v.size, leaves[v.index], v.proof, root(v.size)); err != nil {
			t.Errorf("VerifyInclusion(%d, %d): %v", v.index, v.size, err)
		}
	}
	consistency := []struct {
		size1, size2 uint64
		proof        []Hash
	}{
		{1, 1, nil},
		{1, 8, hs("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
			"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
			"6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")},
		{6, 8, hs("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
			"ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
			"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")},
		{2, 5, hs("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
			"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")},
		{6, 7, hs("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
			"b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
			"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")},
	}
	for _, v := range consistency {
		p, err := ConsistencyProof(nodes, v.size1, v.size2)
		if err != nil || !hashesEqual(p, v.proof) {
			t.Errorf("ConsistencyProof(%d, %d) = %x, %v; want %x", v.size1, v.size2, p, err, v.proof)
		}
		if err := VerifyConsistency(v.size1, v.size2, v.proof, root(v.size1), root(v.size2)); err != nil {
			t.Errorf("VerifyConsistency(%d, %d): %v", v.size1, v.size2, err)
		}
	}
}

// proofCorruptions returns altered copies of p: each hash with a bit
// flipped, an extra hash appended or prepended, the first or last hash
// dropped.
func proofCorruptions(p []Hash, extra Hash) map[string][]Hash {
	out := map[string][]Hash{}
	for i := range p {
		q := append([]Hash(nil), p...)
		q[i][i%32] ^= 1 << (i % 8)
		out[fmt.Sprintf("hash %d flipped", i)] = q
	}
	out["extra hash appended"] = append(append([]Hash(nil), p...), extra)
	out["extra hash prepended"] = append([]Hash{extra}, p...)
	if len(p) > 0 {
		out["last hash missing"] = append([]Hash(nil), p[:len(p)-1]...)
		out["first hash missing"] = append([]Hash(nil), p[1:]...)
	}
	return out
}

func TestInclusionProofsExhaustive(t *testing.T) {
	const n = 64
	tt := newTestTree(n)
	for size := uint64(1); size <= n; size++ {
		for index := uint64(0); index < size; index++ {
			p, err := InclusionProof(tt.nodes, index, size)
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", index, size, err)
			}
			if len(p) != inclusionLen(index, size) {
				t.Fatalf("InclusionProof(%d, %d) has %d hashes, want %d", index, size, len(p), inclusionLen(index, size))
			}
			leaf, root := tt.leaves[index], tt.roots[size]
			if err := VerifyInclusion(index, size, leaf, p, root); err != nil {
				t.Fatalf("VerifyInclusion(%d, %d): %v", index, size, err)
			}
			what := fmt.Sprintf("inclusion (%d, %d)", index, size)
			for name, q := range proofCorruptions(p, root) {
				wantProofErr(t, VerifyInclusion(index, size, leaf, q, root), what+" "+name)
			}
			wantProofErr(t, VerifyInclusion(size, size, leaf, p, root), what+" index = size")
			wantProofErr(t, VerifyInclusion(size+7, size, leaf, p, root), what+" index > size")
			wrongLeaf := leaf
			wrongLeaf[0] ^= 1
			wantProofErr(t, VerifyInclusion(index, size, wrongLeaf, p, root), what+" wrong leaf")
			wrongRoot := root
			wrongRoot[31] ^= 0x80
			wantProofErr(t, VerifyInclusion(index, size, leaf, p, wrongRoot), what+" wrong root")
			if size > 1 {
				other := (index + 1) % size
				wantProofErr(t, VerifyInclusion(other, size, leaf, p, root), what+" wrong index")
				wantProofErr(t, VerifyInclusion(index, size, leaf, p, tt.roots[size-1]), what+" root of size-1")
			}
			// Claiming another size, with that size's true root, fails
			// unless the proof happens to be that size's proof too.
			for _, s2 := range []uint64{size - 1, size + 1, size * 2} {
				if s2 <= index || s2 > n || s2 == size {
					continue
				}
				real, _ := InclusionProof(tt.nodes, index, s2)
				err := VerifyInclusion(index, s2, leaf, p, tt.roots[s2])
				if hashesEqual(real, p) != (err == nil) {
					t.Fatalf("%s claimed as size %d: %v", what, s2, err)
				}
				if err != nil {
					wantProofErr(t, err, what)
				}
			}
		}
	}
}

func TestConsistencyProofsExhaustive(t *testing.T) {
	const n = 64
	tt := newTestTree(n)
	valid := func(s1, s2 uint64, p []Hash) bool {
		real, err := ConsistencyProof(tt.nodes, s1, s2)
		return err == nil && hashesEqual(real, p)
	}
	for size2 := uint64(0); size2 <= n; size2++ {
		for size1 := uint64(0); size1 <= size2; size1++ {
			p, err := ConsistencyProof(tt.nodes, size1, size2)
			if err != nil {
				t.Fatalf("ConsistencyProof(%d, %d): %v", size1, size2, err)
			}
			if len(p) != consistencyLen(size1, size2) {
				t.Fatalf("ConsistencyProof(%d, %d) has %d hashes, want %d", size1, size2, len(p), consistencyLen(size1, size2))
			}
			r1, r2 := tt.roots[size1], tt.roots[size2]
			if err := VerifyConsistency(size1, size2, p, r1, r2); err != nil {
				t.Fatalf("VerifyConsistency(%d, %d): %v", size1, size2, err)
			}
			what := fmt.Sprintf("consistency (%d, %d)", size1, size2)
			for name, q := range proofCorruptions(p, r1) {
				wantProofErr(t, VerifyConsistency(size1, size2, q, r1, r2), what+" "+name)
			}
			bad1, bad2 := r1, r2
			bad1[3] ^= 4
			bad2[5] ^= 8
			wantProofErr(t, VerifyConsistency(size1, size2, p, bad1, r2), what+" wrong root1")
			if size1 > 0 { // any tree is consistent with the empty one
				wantProofErr(t, VerifyConsistency(size1, size2, p, r1, bad2), what+" wrong root2")
			}
			if size1 != size2 && size1 > 0 {
				wantProofErr(t, VerifyConsistency(size1, size2, p, r2, r1), what+" swapped roots")
				wantProofErr(t, VerifyConsistency(size2, size1, p, r2, r1), what+" swapped sizes")
			}
			// Other sizes, each with its true root, fail unless the proof
			// happens to be the proof for those sizes too.
			for _, s := range [][2]uint64{{size1 - 1, size2}, {size1 + 1, size2}, {size1, size2 - 1}, {size1, size2 + 1}, {size1 ^ 2, size2}} {
				s1, s2 := s[0], s[1]
				if s1 > s2 || s2 > n || (s1 == size1 && s2 == size2) {
					continue
				}
				err := VerifyConsistency(s1, s2, p, tt.roots[s1], tt.roots[s2])
				if valid(s1, s2, p) != (err == nil) {
					t.Fatalf("%s claimed as (%d, %d): %v", what, s1, s2, err)
				}
				if err != nil {
					wantProofErr(t, err, what)
				}
			}
		}
	}
}

func TestProofErrorsSayWhatIsWrong(t *testing.T) {
	tt := newTestTree(10)
	p, _ := InclusionProof(tt.nodes, 3, 10)
	cases := []struct {
		err  error
		want string
	}{
		{VerifyInclusion(10, 10, tt.leaves[3], p, tt.roots[10]), "not below"},
		{VerifyInclusion(3, 10, tt.leaves[3], p[1:], tt.roots[10]), "proof has 3 hashes, want 4"},
		{VerifyInclusion(3, 10, tt.leaves[4], p, tt.roots[10]), "root mismatch"},
		{VerifyConsistency(5, 4, nil, tt.roots[5], tt.roots[4]), "exceeds"},
		{VerifyConsistency(0, 4, nil, tt.roots[1], tt.roots[4]), "empty tree"},
		{VerifyConsistency(4, 4, nil, tt.roots[4], tt.roots[5]), "different roots"},
		{VerifyConsistency(3, 10, nil, tt.roots[3], tt.roots[10]), "proof has 0 hashes"},
	}
	for i, c := range cases {
		if !errors.Is(c.err, ErrProof) || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("case %d: error %v, want ErrProof saying %q", i, c.err, c.want)
		}
	}
	cp, _ := ConsistencyProof(tt.nodes, 3, 10)
	bad1 := tt.roots[3]
	bad1[0] ^= 1
	if err := VerifyConsistency(3, 10, cp, bad1, tt.roots[10]); err == nil || !strings.Contains(err.Error(), "root1") {
		t.Errorf("wrong root1: %v", err)
	}
	bad2 := tt.roots[10]
	bad2[0] ^= 1
	if err := VerifyConsistency(3, 10, cp, tt.roots[3], bad2); err == nil || !strings.Contains(err.Error(), "root2") {
		t.Errorf("wrong root2: %v", err)
	}
}

func TestProofGenerationErrors(t *testing.T) {
	tt := newTestTree(10)
	if _, err := InclusionProof(tt.nodes, 10, 10); err == nil {
		t.Error("InclusionProof with index = size succeeded")
	}
	if _, err := ConsistencyProof(tt.nodes, 6, 5); err == nil {
		t.Error("ConsistencyProof with size1 > size2 succeeded")
	}
	if _, err := InclusionProof(tt.nodes, 3, 11); !errors.Is(err, ErrNodeMissing) {
		t.Errorf("InclusionProof beyond the stored tree: %v, want ErrNodeMissing", err)
	}
	if _, err := ConsistencyProof(tt.nodes, 3, 12); !errors.Is(err, ErrNodeMissing) {
		t.Errorf("ConsistencyProof beyond the stored tree: %v, want ErrNodeMissing", err)
	}
	for _, c := range [][2]uint64{{0, 10}, {10, 10}, {0, 0}} {
		if p, err := ConsistencyProof(tt.nodes, c[0], c[1]); err != nil || len(p) != 0 {
			t.Errorf("ConsistencyProof(%d, %d) = %v, %v; want empty", c[0], c[1], p, err)
		}
	}
}

func TestProofsFromNodeStore(t *testing.T) {
	const n = 45
	tt := newTestTree(n)
	s, _ := newStoreLog(t, vfs.NewCrashFS(), "nodes", n)
	defer s.Close()
	for size := uint64(1); size <= n; size++ {
		for index := uint64(0); index < size; index++ {
			p1, err1 := InclusionProof(s, index, size)
			p2, _ := InclusionProof(tt.nodes, index, size)
			if err1 != nil || !hashesEqual(p1, p2) {
				t.Fatalf("store inclusion proof (%d, %d) differs: %v", index, size, err1)
			}
		}
		for size1 := uint64(0); size1 <= size; size1++ {
			p1, err1 := ConsistencyProof(s, size1, size)
			p2, _ := ConsistencyProof(tt.nodes, size1, size)
			if err1 != nil || !hashesEqual(p1, p2) {
				t.Fatalf("store consistency proof (%d, %d) differs: %v", size1, size, err1)
			}
		}
	}
}

const testCheckpoint = "example.com/audit\n13\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— example.com/audit Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"

func testInclusionBundle(t testing.TB, tt *testTree, index, size uint64) *InclusionBundle {
	p, err := InclusionProof(tt.nodes, index, size)
	if err != nil {
		t.Fatal(err)
	}
	return NewInclusionBundle(tt.recs[index], size, p, testCheckpoint)
}

func testConsistencyBundle(t testing.TB, tt *testTree, size1, size2 uint64) *ConsistencyBundle {
	p, err := ConsistencyProof(tt.nodes, size1, size2)
	if err != nil {
		t.Fatal(err)
	}
	return NewConsistencyBundle(size1, size2, p, testCheckpoint, strings.Replace(testCheckpoint, "13", "14", 1))
}

func TestInclusionBundleRoundTrip(t *testing.T) {
	tt := newTestTree(20)
	b := testInclusionBundle(t, tt, 5, 13)
	data, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, want := range []string{
		`"format": "mtlog-audit-inclusion-proof/v1"`, `"index": 5`, `"size": 13`,
		`"leaf_hash": "` + tt.leaves[5].String() + `"`, `"prev": "` + tt.leaves[4].String() + `"`,
		`"payload_hash": "` + tt.recs[5].PayloadHash.String() + `"`,
		"\n  \"leaf\": {\n", `"checkpoint": `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("bundle JSON lacks %s:\n%s", want, text)
		}
	}
	got, err := ParseInclusionBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b) {
		t.Fatalf("round trip changed the bundle:\n got %+v\nwant %+v", got, b)
	}
	if got.Leaf.Record() != tt.recs[5] || got.Checkpoint != testCheckpoint {
		t.Fatal("round trip lost the record or the checkpoint")
	}
	if err := got.VerifyAgainst(tt.roots[13], 13); err != nil {
		t.Fatalf("VerifyAgainst: %v", err)
	}
	wantProofErr(t, got.VerifyAgainst(tt.roots[14], 13), "wrong root")
	wantProofErr(t, got.VerifyAgainst(tt.roots[14], 14), "wrong size")
	alter := map[string]func(b *InclusionBundle){
		"time":        func(b *InclusionBundle) { b.Leaf.Time++ },
		"type":        func(b *InclusionBundle) { b.Leaf.Type++ },
		"payload":     func(b *InclusionBundle) { b.Leaf.PayloadHash[0] ^= 1 },
		"prev":        func(b *InclusionBundle) { b.Leaf.Prev[0] ^= 1 },
		"leaf index":  func(b *InclusionBundle) { b.Leaf.Index++ },
		"index":       func(b *InclusionBundle) { b.Index++ },
		"leaf hash":   func(b *InclusionBundle) { b.LeafHash[0] ^= 1 },
		"proof":       func(b *InclusionBundle) { b.Proof[1][7] ^= 1 },
		"short proof": func(b *InclusionBundle) { b.Proof = b.Proof[1:] },
		"format":      func(b *InclusionBundle) { b.Format = ConsistencyFormat },
		"size":        func(b *InclusionBundle) { b.Size = 5 },
	}
	mixed, _ := ParseInclusionBundle(data)
	mixed.Leaf.Index = 6
	if err := mixed.VerifyAgainst(tt.roots[13], 13); !errors.Is(err, ErrProof) || !strings.Contains(err.Error(), "leaf has index 6 but the bundle is for index 5") {
		t.Errorf("bundle whose leaf is for another index: %v", err)
	}
	for name, f := range alter {
		c, _ := ParseInclusionBundle(data)
		f(c)
		wantProofErr(t, c.VerifyAgainst(tt.roots[13], 13), "bundle with altered "+name)
		// A consistently re-hashed altered leaf is still caught by the proof.
		c.LeafHash = LeafHash(c.Leaf.Record())
		if name != "leaf hash" {
			wantProofErr(t, c.VerifyAgainst(tt.roots[13], 13), "bundle with altered "+name+" and matching leaf_hash")
		}
	}
}

func TestConsistencyBundleRoundTrip(t *testing.T) {
	tt := newTestTree(20)
	for _, c := range [][2]uint64{{6, 13}, {0, 13}, {13, 13}, {8, 16}} {
		b := testConsistencyBundle(t, tt, c[0], c[1])
		data, err := b.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte(`"format": "mtlog-audit-consistency-proof/v1"`)) ||
			!bytes.Contains(data, []byte(fmt.Sprintf(`"size1": %d`, c[0]))) || !bytes.HasSuffix(data, []byte("}\n")) {
			t.Errorf("bundle JSON:\n%s", data)
		}
		got, err := ParseConsistencyBundle(data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, b) {
			t.Fatalf("round trip changed the bundle:\n got %+v\nwant %+v", got, b)
		}
		if err := got.VerifyAgainst(tt.roots[c[0]], tt.roots[c[1]]); err != nil {
			t.Fatalf("%v: VerifyAgainst: %v", c, err)
		}
		wantProofErr(t, got.VerifyAgainst(tt.roots[c[0]+1], tt.roots[c[1]]), fmt.Sprintf("%v wrong root1", c))
		if c[0] > 0 {
			wantProofErr(t, got.VerifyAgainst(tt.roots[c[0]], tt.roots[c[1]+1]), fmt.Sprintf("%v wrong root2", c))
		}
		if len(got.Proof) > 0 {
			got.Proof[0][0] ^= 1
			wantProofErr(t, got.VerifyAgainst(tt.roots[c[0]], tt.roots[c[1]]), fmt.Sprintf("%v altered proof", c))
		}
	}
}

func TestBundleVerifyChecksShape(t *testing.T) {
	tt := newTestTree(20)
	c := testConsistencyBundle(t, tt, 6, 13)
	c.Format = InclusionFormat
	wantProofErr(t, c.VerifyAgainst(tt.roots[6], tt.roots[13]), "consistency bundle of the wrong format")
	c = testConsistencyBundle(t, tt, 6, 13)
	c.Size1, c.Size2 = 13, 6
	wantProofErr(t, c.VerifyAgainst(tt.roots[13], tt.roots[6]), "consistency bundle with size1 > size2")
	c = testConsistencyBundle(t, tt, 6, 13)
	for len(c.Proof) <= MaxProofHashes {
		c.Proof = append(c.Proof, Hash{})
	}
	wantProofErr(t, c.VerifyAgainst(tt.roots[6], tt.roots[13]), "consistency bundle with 65 hashes")
	i := testInclusionBundle(t, tt, 5, 13)
	i.Index = 13
	wantProofErr(t, i.VerifyAgainst(tt.roots[13], 13), "inclusion bundle with index = size")
}

func TestParseBundleRejects(t *testing.T) {
	tt := newTestTree(20)
	inc, _ := testInclusionBundle(t, tt, 5, 13).Marshal()
	con, _ := testConsistencyBundle(t, tt, 6, 13).Marshal()
	h := tt.leaves[0].String()
	edit := func(data []byte, old, new string) []byte {
		if !bytes.Contains(data, []byte(old)) {
			t.Fatalf("test bundle lacks %q", old)
		}
		return bytes.Replace(data, []byte(old), []byte(new), 1)
	}
	long := make([]string, 65)
	for i := range long {
		long[i] = `"` + h + `"`
	}
	longProof := "[" + strings.Join(long, ",") + "]"
	incCases := map[string][]byte{
		"empty":             nil,
		"not JSON":          []byte("format: v1"),
		"array":             []byte("[]"),
		"null":              []byte("null"),
		"no format":         []byte(`{"index": 1, "size": 2}`),
		"unknown format":    edit(inc, InclusionFormat, "mtlog-audit-inclusion-proof/v2"),
		"other kind":        con,
		"unknown field":     edit(inc, `"index": 5,`, `"index": 5, "extra": 1,`),
		"unknown leaf key":  edit(inc, `"type":`, `"kind": 1, "type":`),
		"short hash":        edit(inc, `"leaf_hash": "`+tt.leaves[5].String()+`"`, `"leaf_hash": "AAAA"`),
		"31-byte hash":      edit(inc, `"leaf_hash": "`+tt.leaves[5].String()+`"`, `"leaf_hash": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="`),
		"33-byte hash":      edit(inc, `"leaf_hash": "`+tt.leaves[5].String()+`"`, `"leaf_hash": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"`),
		"non-canonical b64": edit(inc, `"leaf_hash": "`+tt.leaves[5].String()+`"`, `"leaf_hash": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB="`),
		"line break in b64": edit(inc, `"leaf_hash": "`+tt.leaves[5].String()+`"`, `"leaf_hash": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nA="`),
		"hex hash":          edit(inc, `"leaf_hash": "`+tt.leaves[5].String()+`"`, `"leaf_hash": "`+hex.EncodeToString(tt.leaves[5][:])+`"`),
		"hash as number":    edit(inc, `"leaf_hash": "`+tt.leaves[5].String()+`"`, `"leaf_hash": 5`),
		"index = size":      edit(inc, `"size": 13`, `"size": 5`),
		"index > size":      edit(inc, `"size": 13`, `"size": 2`),
		"negative size":     edit(inc, `"size": 13`, `"size": -13`),
		"type > 255":        edit(inc, `"type": 1`, `"type": 256`),
		"65 hashes":         edit(inc, `"proof": [`, `"proof": `+longProof+`, "x": [`),
		"trailing data":     append(append([]byte(nil), inc...), []byte("{}")...),
		"trailing garbage":  append(append([]byte(nil), inc...), ']'),
	}
	// "65 hashes" above also has an unknown field; make one that is only
	// too long.
	var b InclusionBundle
	if err := json.Unmarshal(inc, &b); err != nil {
		t.Fatal(err)
	}
	for len(b.Proof) <= MaxProofHashes {
		b.Proof = append(b.Proof, tt.leaves[0])
	}
	incCases["only 65 hashes"], _ = b.Marshal()
	for name, data := range incCases {
		got, err := ParseInclusionBundle(data)
		if err == nil {
			t.Errorf("ParseInclusionBundle accepted %s: %+v", name, got)
			continue
		}
		if !errors.Is(err, ErrProof) {
			t.Errorf("%s: error %v does not match ErrProof", name, err)
		}
	}
	if _, err := ParseInclusionBundle(inc); err != nil {
		t.Fatalf("the unedited bundle is rejected: %v", err)
	}
	var cb ConsistencyBundle
	if err := json.Unmarshal(con, &cb); err != nil {
		t.Fatal(err)
	}
	for len(cb.Proof) <= MaxProofHashes {
		cb.Proof = append(cb.Proof, tt.leaves[0])
	}
	longCon, _ := cb.Marshal()
	conCases := map[string][]byte{
		"other kind":     inc,
		"unknown format": edit(con, ConsistencyFormat, "mtlog-audit-consistency-proof/v0"),
		"unknown field":  edit(con, `"size1": 6,`, `"size1": 6, "size3": 7,`),
		"size1 > size2":  edit(con, `"size1": 6`, `"size1": 14`),
		"short hash":     edit(con, `"proof": [`+"\n    \"", `"proof": ["AAAA", "`),
		"65 hashes":      longCon,
		"trailing data":  append(append([]byte(nil), con...), []byte("[]")...),
	}
	for name, data := range conCases {
		got, err := ParseConsistencyBundle(data)
		if err == nil {
			t.Errorf("ParseConsistencyBundle accepted %s: %+v", name, got)
			continue
		}
		if !errors.Is(err, ErrProof) {
			t.Errorf("%s: error %v does not match ErrProof", name, err)
		}
	}
	if _, err := ParseConsistencyBundle(con); err != nil {
		t.Fatalf("the unedited bundle is rejected: %v", err)
	}
	// Errors name the problem.
	for data, want := range map[string]string{
		string(edit(inc, InclusionFormat, "x/v9")):                  `unknown format "x/v9"`,
		string(edit(inc, `"size": 13`, `"size": 5`)):                "index 5 is not below tree size 5",
		string(incCases["only 65 hashes"]):                          "65 hashes",
		string(edit(inc, `"index": 5,`, `"index": 5, "extra": 1,`)): `unknown field "extra"`,
	} {
		if _, err := ParseInclusionBundle([]byte(data)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}

// fuzzTreeSize is the size of the test log the fuzz target checks bundles
// against.
const fuzzTreeSize = 16

// FuzzParseProofBundle feeds arbitrary bytes to both bundle parsers. What
// parses must survive a Marshal/Parse round trip unchanged, and its
// VerifyAgainst must not panic, must return ErrProof errors, must agree with
// the merkle library's own root computation, and against the roots of the
// test log must succeed exactly for the true proofs.
func FuzzParseProofBundle(f *testing.F) {
	tt := newTestTree(fuzzTreeSize)
	for _, c := range [][2]uint64{{0, 1}, {5, 13}, {15, 16}} {
		data, _ := testInclusionBundle(f, tt, c[0], c[1]).Marshal()
		f.Add(data)
	}
	for _, c := range [][2]uint64{{0, 3}, {6, 13}, {7, 7}, {4, 16}} {
		data, _ := testConsistencyBundle(f, tt, c[0], c[1]).Marshal()
		f.Add(data)
	}
	// v2 bundles, with rotation statements (see chainTestBundles).
	inc2, con2 := chainTestBundles(f, tt)
	for _, b := range []interface{ Marshal() ([]byte, error) }{inc2, con2} {
		data, _ := b.Marshal()
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if b, err := ParseInclusionBundle(data); err != nil {
			if !errors.Is(err, ErrProof) {
				t.Fatalf("ParseInclusionBundle error %v does not match ErrProof", err)
			}
		} else {
			fuzzInclusion(t, tt, b)
		}
		if b, err := ParseConsistencyBundle(data); err != nil {
			if !errors.Is(err, ErrProof) {
				t.Fatalf("ParseConsistencyBundle error %v does not match ErrProof", err)
			}
		} else {
			fuzzConsistency(t, tt, b)
		}
	})
}

func fuzzInclusion(t *testing.T, tt *testTree, b *InclusionBundle) {
	out, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b2, err := ParseInclusionBundle(out)
	if err != nil || !reflect.DeepEqual(b, b2) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, b, b2)
	}
	leafOK := b.Leaf.Index == b.Index && LeafHash(b.Leaf.Record()) == b.LeafHash
	check := func(err error, want bool, what string) {
		if (err == nil) != want {
			t.Fatalf("%s: VerifyAgainst = %v, want success %v (bundle %+v)", what, err, want, b)
		}
		if err != nil && !errors.Is(err, ErrProof) {
			t.Fatalf("%s: error %v does not match ErrProof", what, err)
		}
	}
	check(b.VerifyAgainst(Hash{}, b.Size), false, "zero root")
	if root, err := proof.RootFromInclusionProof(rfc6962.DefaultHasher, b.Index, b.Size, b.LeafHash[:], proofHashes(b.Proof)); err == nil {
		check(b.VerifyAgainst(Hash(root), b.Size), leafOK, "library root")
		check(b.VerifyAgainst(Hash(root), b.Size+1), false, "library root, other size")
	}
	if b.Size <= fuzzTreeSize {
		real, _ := InclusionProof(tt.nodes, b.Index, b.Size)
		want := leafOK && b.LeafHash == tt.leaves[b.Index] && hashesEqual(real, b.Proof)
		check(b.VerifyAgainst(tt.roots[b.Size], b.Size), want, "test log root")
	}
}

func fuzzConsistency(t *testing.T, tt *testTree, b *ConsistencyBundle) {
	out, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b2, err := ParseConsistencyBundle(out)
	if err != nil || !reflect.DeepEqual(b, b2) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, b, b2)
	}
	if err := b.VerifyAgainst(Hash{}, Hash{1}); err != nil && !errors.Is(err, ErrProof) {
		t.Fatalf("error %v does not match ErrProof", err)
	}
	if b.Size2 <= fuzzTreeSize {
		real, _ := ConsistencyProof(tt.nodes, b.Size1, b.Size2)
		err := b.VerifyAgainst(tt.roots[b.Size1], tt.roots[b.Size2])
		if want := hashesEqual(real, b.Proof); (err == nil) != want {
			t.Fatalf("VerifyAgainst test log roots = %v, want success %v (bundle %+v)", err, want, b)
		}
		if err != nil && !errors.Is(err, ErrProof) {
			t.Fatalf("error %v does not match ErrProof", err)
		}
	}
}

// readFuzzSeed reads a "go test fuzz v1" file holding one []byte value.
func readFuzzSeed(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
		t.Fatalf("%s is not a go test fuzz v1 file of one []byte", path)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}

// TestFuzzCorpusHasValidBundles keeps the committed seed corpus meaningful:
// its valid-* files must parse and verify against the test log.
func TestFuzzCorpusHasValidBundles(t *testing.T) {
	tt := newTestTree(fuzzTreeSize)
	dir := filepath.Join("testdata", "fuzz", "FuzzParseProofBundle")
	var inc, con int
	for _, name := range []string{"valid-inclusion", "valid-consistency"} {
		data := readFuzzSeed(t, filepath.Join(dir, name))
		if b, err := ParseInclusionBundle(data); err == nil {
			if err := b.VerifyAgainst(tt.roots[b.Size], b.Size); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			inc++
		}
		if b, err := ParseConsistencyBundle(data); err == nil {
			if err := b.VerifyAgainst(tt.roots[b.Size1], tt.roots[b.Size2]); err != nil || b.Size1 == 0 || b.Size1 == b.Size2 {
				t.Errorf("%s: %v (sizes %d, %d)", name, err, b.Size1, b.Size2)
			}
			con++
		}
	}
	if inc != 1 || con != 1 {
		t.Fatalf("corpus holds %d valid inclusion and %d valid consistency bundles, want 1 each", inc, con)
	}
}
