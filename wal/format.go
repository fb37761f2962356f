package wal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// The on-disk format is written down in docs/wal-format.md; keep the two in
// step. All integers are little-endian.

const (
	// FormatVersion is the newest segment format this package reads and the
	// one it writes. Version 2 added the optional batch authentication tag
	// (see Options.Tag); version 1 segments are still read (their batches
	// are never tagged).
	FormatVersion = 2

	// minFormatVersion is the oldest segment format this package reads.
	minFormatVersion = 1

	// SectorSize is the alignment of segment headers and batches. Every
	// batch starts at a multiple of SectorSize and is padded to one, so a
	// batch never shares a sector with another batch's bytes written later,
	// and no acknowledged sector is ever rewritten.
	SectorSize = 512

	segHeaderSize   = SectorSize
	segHeaderFields = 84 // bytes of the segment header covered by its CRC
	batchHeaderSize = 48
	recHeaderSize   = 28

	batchMagic uint32 = 0x4d544142 // "BATM" little-endian; never zero

	// batchTagged is the flag bit of a batch header's count field that
	// says the batch carries an authentication tag (format version 2).
	batchTagged uint32 = 1 << 31
	// tagTrailerSize is the size of a tagged batch's trailer, right after
	// its records: the 32-byte tag and the CRC32C of the tag.
	tagTrailerSize = 36

	// maxBatchBody bounds a batch body read from disk, so that a damaged
	// length field never makes a reader allocate more than this.
	maxBatchBody = 256 << 20
)

var segMagic = [8]byte{'M', 'T', 'L', 'A', 'U', 'D', 'I', 'T'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// RecordType says what a record's payload holds. The WAL stores payloads as
// opaque bytes; the type lets readers skip records they do not care about.
type RecordType uint8

const (
	// RecordEvent holds one encoded audit event.
	RecordEvent RecordType = 1
	// RecordSeal is the last record of a sealed segment, alone in its batch:
	// the segment's number, first sequence number, record count and event
	// time range (sealPayloadSize; docs/wal-format.md, "Seal record").
	RecordSeal RecordType = 2
	// RecordCheckpoint is reserved for signed checkpoints.
	RecordCheckpoint RecordType = 3
	// RecordMeta is reserved for log metadata (key rotation and the like).
	RecordMeta RecordType = 4
)

func (t RecordType) valid() bool { return t >= RecordEvent && t <= RecordMeta }

// String names the record type.
func (t RecordType) String() string {
	switch t {
	case RecordEvent:
		return "event"
	case RecordSeal:
		return "seal"
	case RecordCheckpoint:
		return "checkpoint"
	case RecordMeta:
		return "meta"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// segHeader is the first sector of every segment file.
type segHeader struct {
	Version  uint16
	Number   uint64
	FirstSeq uint64
	Salt     uint64
	PrevHash [32]byte // SHA-256 of the previous segment's last record frame
	Created  int64    // unix nanoseconds
}

func (h *segHeader) encode() []byte {
	b := make([]byte, segHeaderSize)
	copy(b[0:8], segMagic[:])
	binary.LittleEndian.PutUint16(b[8:], h.Version)
	// b[10:16] reserved, zero
	binary.LittleEndian.PutUint64(b[16:], h.Number)
	binary.LittleEndian.PutUint64(b[24:], h.FirstSeq)
	binary.LittleEndian.PutUint64(b[32:], h.Salt)
	copy(b[40:72], h.PrevHash[:])
	binary.LittleEndian.PutUint64(b[72:], uint64(h.Created))
	binary.LittleEndian.PutUint32(b[80:], 0)
	binary.LittleEndian.PutUint32(b[segHeaderFields-4:], crc32.Checksum(b[:segHeaderFields-4], castagnoli))
	return b
}

// decodeSegHeader parses and checks a segment header. errVersion is returned
// (unwrapped) for a header that is intact but newer than this build.
func decodeSegHeader(b []byte) (segHeader, string, error) {
	var h segHeader
	if len(b) < segHeaderSize {
		return h, "segment header is shorter than one sector", errBad
	}
	if !bytes.Equal(b[0:8], segMagic[:]) {
		return h, "segment header magic is wrong (not an mtlog-audit WAL segment)", errBad
	}
	if crc32.Checksum(b[:segHeaderFields-4], castagnoli) != binary.LittleEndian.Uint32(b[segHeaderFields-4:]) {
		return h, "segment header checksum mismatch", errBad
	}
	if !allZero(b[segHeaderFields:segHeaderSize]) || !allZero(b[10:16]) {
		return h, "segment header reserved bytes are not zero", errBad
	}
	h.Version = binary.LittleEndian.Uint16(b[8:])
	h.Number = binary.LittleEndian.Uint64(b[16:])
	h.FirstSeq = binary.LittleEndian.Uint64(b[24:])
	h.Salt = binary.LittleEndian.Uint64(b[32:])
	copy(h.PrevHash[:], b[40:72])
	h.Created = int64(binary.LittleEndian.Uint64(b[72:]))
	if h.Version < minFormatVersion || h.Version > FormatVersion {
		return h, fmt.Sprintf("segment format version %d", h.Version), errVersion
	}
	if h.Salt == 0 || h.FirstSeq == 0 {
		return h, "segment header has a zero salt or first sequence number", errBad
	}
	return h, "", nil
}

// batchHeader starts every batch (one group commit).
type batchHeader struct {
	Count     uint32 // records in the batch
	Salt      uint64 // the segment's salt: stale bytes from another file never match
	Offset    uint64 // the batch's own offset in the segment
	SyncedOff uint64 // every byte of the segment before this offset was durable when this batch was written
	FirstSeq  uint64
	BodyLen   uint32 // bytes of records after the header, before the tag trailer and padding
	Tagged    bool   // a tag trailer follows the records (format version 2)
}

// stored is the number of bytes after the header that the batch uses
// before its zero padding: the records and, if tagged, the tag trailer.
func (h *batchHeader) stored() int {
	if h.Tagged {
		return int(h.BodyLen) + tagTrailerSize
	}
	return int(h.BodyLen)
}

// span is the padded on-disk size of the batch.
func (h *batchHeader) span() int64 { return batchSpan(h.stored()) }

// putTag writes the tag trailer into b (the tag and its CRC32C).
func putTag(b []byte, tag *[32]byte) {
	copy(b, tag[:])
	// The checksum is taken over b, not tag: a slice handed to crc32
	// escapes, and tag lives on the committer's stack.
	binary.LittleEndian.PutUint32(b[32:], crc32.Checksum(b[:32], castagnoli))
}

// readTag checks and returns the tag trailer in b (un-whitened).
func readTag(b []byte) ([32]byte, bool) {
	var t [32]byte
	if len(b) < tagTrailerSize {
		return t, false
	}
	copy(t[:], b)
	return t, crc32.Checksum(b[:32], castagnoli) == binary.LittleEndian.Uint32(b[32:])
}

func (h *batchHeader) put(b []byte) {
	binary.LittleEndian.PutUint32(b[0:], batchMagic)
	count := h.Count
	if h.Tagged {
		count |= batchTagged
	}
	binary.LittleEndian.PutUint32(b[4:], count)
	binary.LittleEndian.PutUint64(b[8:], h.Salt)
	binary.LittleEndian.PutUint64(b[16:], h.Offset)
	binary.LittleEndian.PutUint64(b[24:], h.SyncedOff)
	binary.LittleEndian.PutUint64(b[32:], h.FirstSeq)
	binary.LittleEndian.PutUint32(b[40:], h.BodyLen)
	binary.LittleEndian.PutUint32(b[44:], crc32.Checksum(b[:44], castagnoli))
}

// parseBatchHeader reports whether b holds an intact batch header that
// belongs at offset off of the segment with the given salt.
func parseBatchHeader(b []byte, salt uint64, off int64) (batchHeader, string, bool) {
	var h batchHeader
	if len(b) < batchHeaderSize {
		return h, "batch header cut short", false
	}
	if binary.LittleEndian.Uint32(b[0:]) != batchMagic {
		return h, "batch header magic is wrong", false
	}
	if crc32.Checksum(b[:44], castagnoli) != binary.LittleEndian.Uint32(b[44:]) {
		return h, "batch header checksum mismatch", false
	}
	h.Count = binary.LittleEndian.Uint32(b[4:])
	h.Tagged, h.Count = h.Count&batchTagged != 0, h.Count&^batchTagged
	h.Salt = binary.LittleEndian.Uint64(b[8:])
	h.Offset = binary.LittleEndian.Uint64(b[16:])
	h.SyncedOff = binary.LittleEndian.Uint64(b[24:])
	h.FirstSeq = binary.LittleEndian.Uint64(b[32:])
	h.BodyLen = binary.LittleEndian.Uint32(b[40:])
	switch {
	case h.Salt != salt:
		return h, "batch belongs to another segment generation (salt mismatch)", false
	case h.Offset != uint64(off):
		return h, fmt.Sprintf("batch header claims offset %d", h.Offset), false
	case h.SyncedOff > uint64(off):
		return h, "batch header claims a synced offset beyond itself", false
	case h.Count == 0 || h.BodyLen < recHeaderSize*h.Count || h.BodyLen > maxBatchBody:
		return h, fmt.Sprintf("batch header has impossible sizes (count %d, body %d bytes)", h.Count, h.BodyLen), false
	}
	return h, "", true
}

// batchSpan is the padded on-disk size of a batch with the given body.
func batchSpan(bodyLen int) int64 {
	return padSector(int64(batchHeaderSize + bodyLen))
}

func padSector(n int64) int64 { return (n + SectorSize - 1) &^ (SectorSize - 1) }

// recHeader precedes each record inside a batch body:
//
//	0  u32 payload length
//	4  u32 CRC32C of payload followed by bytes 8..28 of this header
//	8  u8  record type
//	9  [3] reserved, zero
//	12 u64 sequence number
//	20 i64 timestamp, unix nanoseconds
func putRecHeader(b []byte, typ RecordType, ts int64, payloadLen int) {
	binary.LittleEndian.PutUint32(b[0:], uint32(payloadLen))
	binary.LittleEndian.PutUint32(b[4:], 0)
	b[8] = byte(typ)
	b[9], b[10], b[11] = 0, 0, 0
	binary.LittleEndian.PutUint64(b[12:], 0)
	binary.LittleEndian.PutUint64(b[20:], uint64(ts))
}

// sealRecord finishes a record in place: sets its sequence number and CRC.
// payloadCRC is CRC32C of the payload alone, computed by the appender.
func sealRecord(b []byte, seq uint64, payloadCRC uint32) {
	binary.LittleEndian.PutUint64(b[12:], seq)
	binary.LittleEndian.PutUint32(b[4:], crc32.Update(payloadCRC, castagnoli, b[8:recHeaderSize]))
}

// whiten XORs p, which sits at absolute offset off (a multiple of 8) of a
// segment with the given salt, with a keystream derived from both. Applying
// it twice restores the input. Whitening makes an all-zero sector
// impossible inside a written batch, whatever the payloads hold, so that a
// zero sector is always evidence of an unwritten (torn) sector. It is not
// encryption.
func whiten(p []byte, salt uint64, off int64) {
	i := uint64(off) / 8
	n := len(p) &^ 7
	for j := 0; j < n; j += 8 {
		k := mix(salt ^ (i * 0x9e3779b97f4a7c15))
		binary.LittleEndian.PutUint64(p[j:], binary.LittleEndian.Uint64(p[j:])^k)
		i++
	}
	if n < len(p) {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], mix(salt^(i*0x9e3779b97f4a7c15)))
		for j := n; j < len(p); j++ {
			p[j] ^= w[j-n]
		}
	}
}

// mix is the SplitMix64 finaliser.
func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// segmentName is the file name of segment number n.
func segmentName(n uint64) string { return fmt.Sprintf("%020d.wal", n) }

// SegmentName is the file name of segment number n (see ParseSegmentName).
func SegmentName(n uint64) string { return segmentName(n) }

// ParseSegmentName returns the segment number in a segment file name
// (20 decimal digits and ".wal"), and false for any other name. Packages
// that look for segments call it rather than parse names themselves.
func ParseSegmentName(name string) (uint64, bool) { return parseSegmentName(name) }

// parseSegmentName returns the number in a segment file name.
func parseSegmentName(name string) (uint64, bool) {
	if len(name) != 24 || name[20:] != ".wal" {
		return 0, false
	}
	var n uint64
	for _, c := range name[:20] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}
