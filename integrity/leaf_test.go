package integrity

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
)

func fill(b byte) (h Hash) {
	for i := range h {
		h[i] = b + byte(i)
	}
	return h
}

func sampleRecord() Record {
	return Record{Index: 0x0102030405060708, Prev: fill(0x20), Time: -2, Type: 0xfe, PayloadHash: fill(0x80)}
}

func TestAppendLeafLayout(t *testing.T) {
	r := sampleRecord()
	prefix := []byte("xyz")
	out := AppendLeaf(append([]byte(nil), prefix...), r)
	if !bytes.Equal(out[:3], prefix) {
		t.Fatalf("AppendLeaf clobbered dst: %x", out[:3])
	}
	leaf := out[3:]
	if len(leaf) != 82 || LeafSize != 82 {
		t.Fatalf("leaf is %d bytes (LeafSize %d), want 82", len(leaf), LeafSize)
	}
	if leaf[0] != 0x01 {
		t.Errorf("version byte %#x, want 0x01", leaf[0])
	}
	if got := binary.BigEndian.Uint64(leaf[1:9]); got != r.Index {
		t.Errorf("index %#x, want %#x", got, r.Index)
	}
	if !bytes.Equal(leaf[9:41], r.Prev[:]) {
		t.Errorf("prev %x, want %x", leaf[9:41], r.Prev)
	}
	if !bytes.Equal(leaf[41:49], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}) {
		t.Errorf("time %x, want big-endian two's complement of -2", leaf[41:49])
	}
	if leaf[49] != 0xfe {
		t.Errorf("type %#x, want 0xfe", leaf[49])
	}
	if !bytes.Equal(leaf[50:82], r.PayloadHash[:]) {
		t.Errorf("payload hash %x, want %x", leaf[50:82], r.PayloadHash)
	}
	// A golden encoding pins the layout against accidental change.
	const golden = "01" + "0102030405060708" +
		"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f" +
		"fffffffffffffffe" + "fe" +
		"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
	if got := hex.EncodeToString(leaf); got != golden {
		t.Errorf("leaf encoding\n got %s\nwant %s", got, golden)
	}
}

func TestLeafHash(t *testing.T) {
	r := sampleRecord()
	leaf := AppendLeaf(nil, r)
	want := sha256.Sum256(append([]byte{0x00}, leaf...))
	if got := LeafHash(r); got != Hash(want) {
		t.Fatalf("LeafHash = %x, want SHA-256(0x00 ‖ leaf) = %x", got, want)
	}
	if got := LeafHash(r); !bytes.Equal(got[:], rfc6962.DefaultHasher.HashLeaf(leaf)) {
		t.Fatalf("LeafHash differs from rfc6962 HashLeaf")
	}
	// Every field is committed to.
	mods := map[string]func(*Record){
		"index":   func(r *Record) { r.Index++ },
		"prev":    func(r *Record) { r.Prev[31] ^= 1 },
		"time":    func(r *Record) { r.Time++ },
		"type":    func(r *Record) { r.Type++ },
		"payload": func(r *Record) { r.PayloadHash[0] ^= 0x80 },
	}
	base := LeafHash(r)
	for name, mod := range mods {
		m := r
		mod(&m)
		if LeafHash(m) == base {
			t.Errorf("changing %s does not change the leaf hash", name)
		}
	}
}

func TestEmptyRoot(t *testing.T) {
	const want = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if got := EmptyRoot(); hex.EncodeToString(got[:]) != want {
		t.Fatalf("EmptyRoot = %x, want %s", got, want)
	}
	if got := NewBuilder().Root(); hex.EncodeToString(got[:]) != want {
		t.Fatalf("empty Builder root = %x, want %s", got, want)
	}
}

func TestLeafHashAllocs(t *testing.T) {
	r := sampleRecord()
	var sink Hash
	if n := testing.AllocsPerRun(100, func() { sink = LeafHash(r) }); n != 0 {
		t.Fatalf("LeafHash allocates %v times per call, want 0", n)
	}
	_ = sink
}

func BenchmarkLeafHash(b *testing.B) {
	r := sampleRecord()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r.Index = uint64(i)
		r.Prev = LeafHash(r)
	}
}
