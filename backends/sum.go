package backends

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"runtime"
)

// sumStep is how much SHA256 and Hash read and hash between two yields:
// about 30 µs of work with the SHA extensions, 150 µs without.
const sumStep = 64 << 10

// SHA256 returns the SHA-256 of data, hashed in steps of 64 KiB with the
// processor yielded to other goroutines between them (runtime.Gosched).
// Segments are megabytes: hashed in one call, a segment holds a processor
// for milliseconds, and on a machine of few cores the log's committer,
// back from its fdatasync, waits that long to acknowledge its batch.
func SHA256(data []byte) [32]byte {
	var sum [32]byte
	h := sha256.New()
	// A bytes-backed ReaderAt cannot fail.
	_ = Hash(ReaderAt(data), int64(len(data)), h)
	h.Sum(sum[:0])
	return sum
}

// SHA256At returns the SHA-256 of the first size bytes of r, read and hashed
// as Hash does.
func SHA256At(r io.ReaderAt, size int64) ([32]byte, error) {
	var sum [32]byte
	h := sha256.New()
	if err := Hash(r, size, h); err != nil {
		return sum, err
	}
	h.Sum(sum[:0])
	return sum, nil
}

// Hash writes the first size bytes of r into every hash of hs, reading 64
// KiB at a time into one buffer and yielding the processor between steps, so
// that an object of any size costs 64 KiB of memory and never holds a
// processor for long. It fails when r ends before size bytes.
func Hash(r io.ReaderAt, size int64, hs ...hash.Hash) error { return Copy(nil, r, size, hs...) }

// Copy is Hash that also writes each piece to w (when w is not nil) before
// hashing it.
func Copy(w io.Writer, r io.ReaderAt, size int64, hs ...hash.Hash) error {
	b, inMemory := r.(bytesAt)
	var buf []byte
	if !inMemory {
		buf = make([]byte, min(max(size, 0), sumStep))
	}
	for off := int64(0); off < size; {
		n := int(min(size-off, sumStep))
		var piece []byte
		if inMemory {
			if int64(len(b)) < off+int64(n) {
				return fmt.Errorf("%d bytes of %d: %w", len(b), size, io.ErrUnexpectedEOF)
			}
			piece = b[off : off+int64(n)]
		} else {
			got, err := r.ReadAt(buf[:n], off)
			if got < n {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return fmt.Errorf("read %d bytes at offset %d of %d: %w", n, off, size, err)
			}
			piece = buf[:n]
		}
		if w != nil {
			if _, err := w.Write(piece); err != nil {
				return err
			}
		}
		for _, h := range hs {
			h.Write(piece)
		}
		if off += int64(n); off < size {
			runtime.Gosched()
		}
	}
	return nil
}

// ReaderAt returns data as an io.ReaderAt for Backend.Put.
func ReaderAt(data []byte) io.ReaderAt { return bytesAt(data) }

// bytesAt is an io.ReaderAt over memory that Hash reads without copying.
type bytesAt []byte

func (b bytesAt) ReadAt(p []byte, off int64) (int, error) { return bytes.NewReader(b).ReadAt(p, off) }
