package integrity

import (
	"crypto/sha256"
	"encoding/binary"
)

// LeafVersion is the first byte of every canonical leaf encoding. A change
// of the layout below gets a new version byte, never a silent reinterpretation.
const LeafVersion = 0x01

// LeafSize is the length in bytes of a canonical leaf encoding.
const LeafSize = 1 + 8 + 32 + 8 + 1 + 32 // 82

// leafHashPrefix and nodeHashPrefix are the RFC 6962 domain separation
// bytes: a leaf hash is SHA-256(0x00 ‖ leaf), an interior node's hash is
// SHA-256(0x01 ‖ left ‖ right), so no leaf can pose as a node or vice versa.
const (
	leafHashPrefix = 0x00
	nodeHashPrefix = 0x01
)

// AppendLeaf appends the canonical leaf encoding of r to dst and returns the
// extended slice. The encoding is exactly LeafSize (82) bytes:
//
//	offset  size  field
//	     0     1  version, LeafVersion (0x01)
//	     1     8  Index, unsigned, big-endian
//	     9    32  Prev, the leaf hash of Index-1 (zero for index 0)
//	    41     8  Time, unix nanoseconds, signed two's complement, big-endian
//	    49     1  Type
//	    50    32  PayloadHash, SHA-256 of the stored payload bytes
//
// The Merkle tree leaf is this byte string; its RFC 6962 leaf hash is
// LeafHash(r).
func AppendLeaf(dst []byte, r Record) []byte {
	var b [LeafSize]byte
	putLeaf(&b, r)
	return append(dst, b[:]...)
}

// putLeaf writes the canonical encoding of r into b.
func putLeaf(b *[LeafSize]byte, r Record) {
	b[0] = LeafVersion
	binary.BigEndian.PutUint64(b[1:9], r.Index)
	copy(b[9:41], r.Prev[:])
	binary.BigEndian.PutUint64(b[41:49], uint64(r.Time))
	b[49] = r.Type
	copy(b[50:82], r.PayloadHash[:])
}

// LeafHash returns the RFC 6962 leaf hash of r: SHA-256(0x00 ‖
// AppendLeaf(nil, r)). It does not allocate.
func LeafHash(r Record) Hash {
	var b [1 + LeafSize]byte
	b[0] = leafHashPrefix
	putLeaf((*[LeafSize]byte)(b[1:]), r)
	return sha256.Sum256(b[:])
}

// hashChildren returns the RFC 6962 interior node hash SHA-256(0x01 ‖ l ‖ r).
// It does not allocate.
func hashChildren(l, r *Hash) Hash {
	var b [1 + 2*len(Hash{})]byte
	b[0] = nodeHashPrefix
	copy(b[1:33], l[:])
	copy(b[33:], r[:])
	return sha256.Sum256(b[:])
}

// emptyRoot is the RFC 6962 root of the empty tree, SHA-256 of no bytes.
var emptyRoot = Hash(sha256.Sum256(nil))

// EmptyRoot returns the RFC 6962 root hash of the empty tree, SHA-256 of the
// empty string (e3b0c442…b855).
func EmptyRoot() Hash { return emptyRoot }
