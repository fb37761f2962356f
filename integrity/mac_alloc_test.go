package integrity

import (
	"crypto/hmac"
	"crypto/sha256"
	"testing"
)

// Tag is standard HMAC-SHA256 and allocates nothing (it runs once per
// batch on the WAL's committing goroutine).
func TestTagIsHMACAndDoesNotAllocate(t *testing.T) {
	sk, _, _ := GenerateKey("tag.example/a")
	s, _ := NewSigner(sk)
	k, _ := NewTagKey(s)
	leaf := LeafHash(Record{Index: 9})
	m := hmac.New(sha256.New, k.Bytes())
	m.Write([]byte(tagDomain))
	m.Write(leaf[:])
	if got := k.Tag(leaf); !hmac.Equal(got[:], m.Sum(nil)) {
		t.Fatal("Tag is not HMAC-SHA256(K, domain ‖ leaf)")
	}
	if n := testing.AllocsPerRun(100, func() { leaf = Hash(k.Tag(leaf)) }); n != 0 {
		t.Fatalf("Tag allocates %v times", n)
	}
}
