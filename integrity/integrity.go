// Package integrity makes the audit log tamper-evident to anyone holding only
// public material.
//
// Every record of the log is a leaf of an RFC 6962 Merkle tree. A leaf
// commits to the record's index, the previous leaf's hash (a hash chain, so
// a streaming check names the exact first bad index), its timestamp, its type
// and the SHA-256 of the payload bytes as stored (never the plaintext, so
// verifying needs no decryption key). Signed checkpoints (C2SP tlog-checkpoint
// bodies in signed notes, Ed25519) commit to the tree. Proofs of inclusion and
// consistency are produced from a stored copy of the tree's nodes.
//
// The package knows nothing of the write-ahead log: callers feed it records
// (index, time, type, payload) and files through vfs.
package integrity

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
)

// Hash is a SHA-256 digest: a leaf hash, a node hash or a root.
type Hash [32]byte

// String returns the standard base64 encoding used in checkpoints.
func (h Hash) String() string { return base64.StdEncoding.EncodeToString(h[:]) }

// PayloadHash is SHA-256 of a record's stored payload bytes.
func PayloadHash(p []byte) Hash { return sha256.Sum256(p) }

// Record is what a leaf commits to.
type Record struct {
	Index       uint64 // position in the log, from 0 (the WAL's sequence number minus 1)
	Prev        Hash   // leaf hash of Index-1; zero for index 0
	Time        int64  // unix nanoseconds
	Type        uint8  // the WAL record type
	PayloadHash Hash
}

// ErrProof is matched by errors from malformed or non-verifying proofs.
var ErrProof = errors.New("integrity: proof does not verify")

// ErrCheckpoint is matched by errors from checkpoints that do not parse, are
// unsigned, are signed only by unknown keys, or carry a bad signature.
var ErrCheckpoint = errors.New("integrity: checkpoint rejected")
