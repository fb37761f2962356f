package backends

import (
	"crypto/sha256"
	"runtime"
)

// sumStep is how much SHA256 hashes between two yields: about 30 µs of
// work with the SHA extensions, 150 µs without.
const sumStep = 64 << 10

// SHA256 returns the SHA-256 of data, hashed in steps of 64 KiB with the
// processor yielded to other goroutines between them (runtime.Gosched).
// Segments are megabytes: hashed in one call, a segment holds a processor
// for milliseconds, and on a machine of few cores the log's committer,
// back from its fdatasync, waits that long to acknowledge its batch. The
// shipper and the drivers hash what they upload and read back with it.
func SHA256(data []byte) [32]byte {
	if len(data) <= sumStep {
		return sha256.Sum256(data)
	}
	h := sha256.New()
	for len(data) > 0 {
		n := min(len(data), sumStep)
		h.Write(data[:n])
		data = data[n:]
		if len(data) > 0 {
			runtime.Gosched()
		}
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}
