package backends_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
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

// TestSHA256At hashes a prefix of a body read through ReadAt (not a byte
// slice) and refuses a body shorter than the size given.
func TestSHA256At(t *testing.T) {
	data := make([]byte, 3<<20+17)
	for i := range data {
		data[i] = byte(i * 31)
	}
	body := io.NewSectionReader(bytes.NewReader(data), 0, int64(len(data)))
	for _, n := range []int64{0, 1, 64 << 10, 64<<10 + 1, 3 << 20} {
		got, err := backends.SHA256At(body, n)
		if err != nil || got != sha256.Sum256(data[:n]) {
			t.Fatalf("SHA256At of the first %d bytes = %x, %v; want %x", n, got, err, sha256.Sum256(data[:n]))
		}
	}
	for _, r := range []io.ReaderAt{body, backends.ReaderAt(data)} {
		if _, err := backends.SHA256At(r, int64(len(data))+1); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("SHA256At past the end of a %T = %v, want io.ErrUnexpectedEOF", r, err)
		}
	}
}
