package integrity

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"
)

// Batch authentication.
//
// A signed log's writer tags every WAL batch with
//
//	HMAC-SHA256(K, "mtlog-audit batch tag v1\x00" ‖ leaf hash of the batch's last record)
//
// where K is derived from the signing key (of the current epoch, with
// forward security). Leaf hashes form a hash chain (each leaf encodes the
// previous leaf's hash and its own index), so a valid tag on a batch
// authenticates that batch's records and every record before it. Before
// the writer extends the tree past its last signed checkpoint, it checks
// the tag of every batch there: records that someone without K appended
// are never signed. A tag needs a secret, so it is checked by the writer
// only; an offline verifier with the public key reports those records as
// not covered by any checkpoint instead.

// tagKeyDomain is signed to derive K; tagDomain prefixes every tagged leaf.
const (
	tagKeyDomain = "mtlog-audit batch tag key v1\n"
	tagDomain    = "mtlog-audit batch tag v1\x00"
)

// TagKey authenticates WAL batches (see Tag). Its methods do not allocate
// and are safe for concurrent use, except Wipe.
type TagKey struct {
	key []byte
	// ipad and opad are the key XOR the HMAC pads (RFC 2104), one SHA-256
	// block each, so that Tag is two SHA-256 sums over stack buffers
	// (crypto/hmac allocates three times per tag).
	ipad, opad [sha256.BlockSize]byte
}

func newTagKey(key []byte) *TagKey {
	k := &TagKey{key: key}
	for i := range k.ipad {
		var b byte
		if i < len(key) {
			b = key[i]
		}
		k.ipad[i], k.opad[i] = b^0x36, b^0x5c
	}
	return k
}

// NewTagKey derives the batch tag key of signer: K = SHA-256(domain ‖
// signature by signer of (domain ‖ key name ‖ key ID)). Ed25519 signatures
// are deterministic, so the same private key always gives the same K, and
// K cannot be computed from the public key. signer must produce
// deterministic signatures (those of NewSigner, LoadSignerFile and epoch
// keys do).
func NewTagKey(signer note.Signer) (*TagKey, error) {
	if signer == nil {
		return nil, errors.New("integrity: tag key: no signer")
	}
	msg := fmt.Appendf(nil, "%s%s+%08x\n", tagKeyDomain, signer.Name(), signer.KeyHash())
	sig, err := signer.Sign(msg)
	if err != nil {
		return nil, fmt.Errorf("integrity: tag key: %w", err)
	}
	h := sha256.New()
	h.Write([]byte(tagKeyDomain))
	h.Write(sig)
	key := h.Sum(nil)
	clear(sig)
	return newTagKey(key), nil
}

// Clone returns an independent TagKey with the same key.
func (k *TagKey) Clone() *TagKey { return newTagKey(append([]byte(nil), k.key...)) }

// Tag returns the tag of a batch whose last record has leaf hash last:
// HMAC-SHA256(K, tagDomain ‖ last).
func (k *TagKey) Tag(last Hash) [32]byte {
	var in [sha256.BlockSize + len(tagDomain) + len(Hash{})]byte
	copy(in[:], k.ipad[:])
	copy(in[sha256.BlockSize:], tagDomain)
	copy(in[sha256.BlockSize+len(tagDomain):], last[:])
	inner := sha256.Sum256(in[:])
	var out [sha256.BlockSize + sha256.Size]byte
	copy(out[:], k.opad[:])
	copy(out[sha256.BlockSize:], inner[:])
	return sha256.Sum256(out[:])
}

// Check reports whether tag is the tag of a batch whose last record has
// leaf hash last (in constant time).
func (k *TagKey) Check(last Hash, tag [32]byte) bool {
	want := k.Tag(last)
	return hmac.Equal(want[:], tag[:])
}

// Wipe zeroes the key (best effort, as for signing keys); the TagKey then
// accepts no tag it made before.
func (k *TagKey) Wipe() {
	clear(k.key)
	clear(k.ipad[:])
	clear(k.opad[:])
}

// AppendLeafHash adds a record whose leaf hash h was computed by the
// caller: h must be LeafHash of the record with Index Size() and Prev
// Head(). It saves hashing the leaf twice when the caller needed the hash
// earlier (to tag a batch before writing it).
func (b *Builder) AppendLeafHash(h Hash) { b.appendLeafHash(h) }

// Bytes returns a copy of the key, for keeping it in a file (clear it after
// use).
func (k *TagKey) Bytes() []byte { return append([]byte(nil), k.key...) }

// TagKeyFromBytes returns the TagKey whose key is b (as Bytes returned it).
func TagKeyFromBytes(b []byte) *TagKey { return newTagKey(append([]byte(nil), b...)) }
