package s3_test

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/backends/s3/s3test"
)

// BenchmarkPut uploads sealed-segment-sized objects (the WAL's default 64
// MiB, and 8 MiB) to the test MinIO, one at a time, as the shipper does for
// one backend. The SHA-256 is computed once per segment outside the timer
// (the shipper has it from the segment's name); the driver's own check of
// it is inside.
func BenchmarkPut(b *testing.B) {
	for _, size := range []int{8 << 20, 64 << 20} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			bk := newBackend(b, s3test.NewBucket(b, true))
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(i*7 + i>>13)
			}
			o := backends.PutOptions{SHA256: sha256.Sum256(data)}
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := range b.N {
				if err := bk.Put(b.Context(), fmt.Sprintf("segments/%08d", i), backends.ReaderAt(data), int64(len(data)), o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
