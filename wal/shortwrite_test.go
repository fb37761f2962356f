package wal

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// frameBatch frames payloads as the committer would write them at off.
func frameBatch(salt uint64, off int64, payloads [][]byte) ([]byte, batchHeader) {
	var body []byte
	for i, p := range payloads {
		r := make([]byte, recHeaderSize+len(p))
		putRecHeader(r, RecordEvent, int64(i), len(p))
		copy(r[recHeaderSize:], p)
		sealRecord(r, 10+uint64(i), crc32.Checksum(p, castagnoli))
		body = append(body, r...)
	}
	h := batchHeader{Count: uint32(len(payloads)), Salt: salt, Offset: uint64(off), SyncedOff: uint64(off), FirstSeq: 10, BodyLen: uint32(len(body))}
	out := make([]byte, batchSpan(len(body)))
	h.put(out)
	copy(out[batchHeaderSize:], body)
	whiten(out[batchHeaderSize:], salt, off+batchHeaderSize)
	return out, h
}

// TestShortWriteRule checks classifyTail's rule for a batch whose write was
// cut short: every cut is recognised (except within minShortTail bytes of
// the batch's end, which a damaged last byte can look like), and damage
// before the cut, in a
// record wholly written (other than its length, which can make it look cut
// short itself: the rule then rests on the zeros after it, which a batch
// written whole has with probability 2⁻⁶⁴) or in the padding, is not.
func TestShortWriteRule(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 21))
	const salt, off = 0x1234_5678_9abc_def1, 4096
	for _, sizes := range [][]int{{100}, {40, 60, 10}, {436}, {300, 400, 500}} {
		var payloads [][]byte
		for _, n := range sizes {
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(rng.Uint32())
			}
			payloads = append(payloads, p)
		}
		full, h := frameBatch(salt, off, payloads)
		if _, err := splitBatch(unwhitened(full, salt, off)[:h.BodyLen], h); err != nil {
			t.Fatalf("sizes %v: the framed batch does not verify: %v", sizes, err)
		}
		bodyEnd := batchHeaderSize + int(h.BodyLen)
		// The record boundaries, to tell which bytes lie in a record
		// wholly written before a cut.
		var starts, ends []int
		for p, i := batchHeaderSize, 0; i < len(sizes); i++ {
			starts = append(starts, p)
			p += recHeaderSize + sizes[i]
			ends = append(ends, p)
		}
		inLength := func(d int) bool {
			for _, st := range starts {
				if d >= st && d < st+4 {
					return true
				}
			}
			return false
		}
		for k := batchHeaderSize; k < len(full); k++ {
			cut := append([]byte(nil), full...)
			clear(cut[k:])
			want := len(full)-k >= minShortTail
			if got := shortWrite(cut, h, salt, off); got != want {
				t.Fatalf("sizes %v, cut at %d of %d (body ends at %d): shortWrite = %v, want %v", sizes, k, len(full), bodyEnd, got, want)
			}
			if !want {
				continue
			}
			// Damage one byte before the cut, where it must show: in a
			// record that ends before the cut, or in the padding.
			whole := batchHeaderSize
			for _, e := range ends {
				if e <= k {
					whole = e
				}
			}
			for _, d := range []int{batchHeaderSize + 4, whole - 1, (batchHeaderSize + whole) / 2, bodyEnd, k - 1} {
				inRecord := d >= batchHeaderSize && d < whole && !inLength(d)
				inPadding := d >= bodyEnd && d < k
				if !inRecord && !inPadding {
					continue
				}
				bad := append([]byte(nil), cut...)
				bad[d] ^= 0x5a
				if bad[d] == 0 {
					bad[d] = 0xff
				}
				if shortWrite(bad, h, salt, off) {
					t.Fatalf("sizes %v, cut at %d: damage at %d (in a record: %v, in the padding: %v) passed for a short write", sizes, k, d, inRecord, inPadding)
				}
			}
		}
		// Not cut at all (the last byte is non-zero): not a short write.
		if full[len(full)-1] != 0 && shortWrite(full, h, salt, off) {
			t.Fatalf("sizes %v: a whole batch passed for a short write", sizes)
		}
	}
}

func unwhitened(raw []byte, salt uint64, off int64) []byte {
	b := append([]byte(nil), raw[batchHeaderSize:]...)
	whiten(b, salt, off+batchHeaderSize)
	return b
}

// TestShortWriteTagged: a tagged batch cut short anywhere after its header
// (in its records, its tag trailer or its padding), at least minShortTail
// bytes before its end, is a write cut short; a damaged tag byte before
// the cut is not.
func TestShortWriteTagged(t *testing.T) {
	const salt, off = 0x0fed_cba9_8765_4321, 8192
	for _, n := range []int{100, 430, 447, 700} { // tag trailer in the first sector, across it, in the second
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i*7 + 1)
		}
		r := make([]byte, recHeaderSize+n)
		putRecHeader(r, RecordEvent, 1, n)
		copy(r[recHeaderSize:], p)
		sealRecord(r, 10, crc32.Checksum(p, castagnoli))
		h := batchHeader{Count: 1, Salt: salt, Offset: off, SyncedOff: off, FirstSeq: 10, BodyLen: uint32(len(r)), Tagged: true}
		full := make([]byte, h.span())
		h.put(full)
		copy(full[batchHeaderSize:], r)
		tag := [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9}
		putTag(full[batchHeaderSize+len(r):], &tag)
		whiten(full[batchHeaderSize:], salt, off+batchHeaderSize)
		trailer := batchHeaderSize + len(r)
		for k := batchHeaderSize; k <= len(full)-minShortTail; k++ {
			cut := append([]byte(nil), full...)
			clear(cut[k:])
			if !shortWrite(cut, h, salt, off) {
				t.Fatalf("size %d: a write cut at byte %d of %d is not recognised", n, k, len(full))
			}
			if k > trailer+1 && k <= trailer+tagTrailerSize {
				cut[trailer] ^= 0x40 // a damaged tag byte before the cut
				if k >= trailer+tagTrailerSize && shortWrite(cut, h, salt, off) {
					t.Fatalf("size %d: a damaged tag before a cut at %d passed as a short write", n, k)
				}
			}
		}
	}
}
