package backends_test

import (
	"crypto/sha256"
	"math/rand/v2"
	"testing"

	"github.com/willibrandon/mtlog-audit/backends"
)

// TestSHA256 matches crypto/sha256 on sizes around its step.
func TestSHA256(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 3<<20 + 17} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		if backends.SHA256(data) != sha256.Sum256(data) {
			t.Fatalf("SHA256 of %d bytes differs from crypto/sha256", n)
		}
	}
}
