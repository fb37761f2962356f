package wal

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"path/filepath"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// Record is one record read back from the log. Payload aliases a read
// buffer: it is valid until the iteration continues; copy it to keep it.
type Record struct {
	Seq     uint64
	Type    RecordType
	Time    int64 // unix nanoseconds, as given to Append
	Payload []byte
	Segment uint64 // segment number
	Offset  int64  // offset of the record's batch in the segment file
	// BatchEnd is set on the last record of its batch; Tag and Tagged
	// are set only there.
	BatchEnd bool
	// Tagged reports whether the batch carries an authentication tag
	// (Options.Tag); Tag is that tag.
	Tagged bool
	Tag    [32]byte
	// Version is the format version of the record's segment.
	Version uint16
}

// sealPayloadSize is the size of a seal record's payload:
//
//	0  u64 segment number
//	8  u64 first sequence number of the segment
//	16 u64 records in the segment, the seal included
//	24 i64 smallest event timestamp (unix ns; MaxInt64 when the segment has no events)
//	32 i64 largest event timestamp (MinInt64 when it has none)
const sealPayloadSize = 40

type sealInfo struct {
	Number, FirstSeq, Count uint64
	MinTime, MaxTime        int64
}

func (s *sealInfo) encode() []byte {
	b := make([]byte, sealPayloadSize)
	binary.LittleEndian.PutUint64(b[0:], s.Number)
	binary.LittleEndian.PutUint64(b[8:], s.FirstSeq)
	binary.LittleEndian.PutUint64(b[16:], s.Count)
	binary.LittleEndian.PutUint64(b[24:], uint64(s.MinTime))
	binary.LittleEndian.PutUint64(b[32:], uint64(s.MaxTime))
	return b
}

func decodeSeal(b []byte) (sealInfo, bool) {
	if len(b) != sealPayloadSize {
		return sealInfo{}, false
	}
	return sealInfo{
		Number:   binary.LittleEndian.Uint64(b[0:]),
		FirstSeq: binary.LittleEndian.Uint64(b[8:]),
		Count:    binary.LittleEndian.Uint64(b[16:]),
		MinTime:  int64(binary.LittleEndian.Uint64(b[24:])),
		MaxTime:  int64(binary.LittleEndian.Uint64(b[32:])),
	}, true
}

// chunkReader serves byte ranges of a file from a read-ahead window, so that
// scanning a segment costs few system calls and bounded memory.
type chunkReader struct {
	f    vfs.File
	size int64
	buf  []byte
	base int64 // file offset of buf[0]
}

const readAhead = 1 << 20

// at returns the n bytes at off (fewer if the file ends first). The slice is
// valid until the next call.
func (c *chunkReader) at(off int64, n int) ([]byte, error) {
	if off >= c.size {
		return nil, nil
	}
	if int64(n) > c.size-off {
		n = int(c.size - off)
	}
	if off >= c.base && off+int64(n) <= c.base+int64(len(c.buf)) {
		return c.buf[off-c.base : off-c.base+int64(n)], nil
	}
	want := max(n, readAhead)
	if int64(want) > c.size-off {
		want = int(c.size - off)
	}
	if cap(c.buf) < want {
		c.buf = make([]byte, want)
	}
	c.buf = c.buf[:want]
	m, err := c.f.ReadAt(c.buf, off)
	if err != nil && !(errors.Is(err, io.EOF) && m == want) {
		if errors.Is(err, io.EOF) {
			c.buf = c.buf[:m]
			c.base = off
			if m < n {
				n = m
			}
			return c.buf[:n], nil
		}
		c.buf = c.buf[:0]
		return nil, fmt.Errorf("wal: read %s at %d: %w", c.f.Name(), off, err)
	}
	c.base = off
	return c.buf[:n], nil
}

// segment is what a scan learned about one segment file.
type segment struct {
	num     uint64
	path    string
	hdr     segHeader
	size    int64
	end     int64  // offset just past the last intact batch
	nextSeq uint64 // sequence number after the last intact record
	count   uint64 // intact records
	events  uint64 // intact records of type RecordEvent
	sealed  bool
	seal    sealInfo
	minTime int64
	maxTime int64
	last    [32]byte // SHA-256 of the last intact record's frame
	hasLast bool
	bad     *badSpot // first batch that did not parse, nil if none
	skipped bool     // accounted for by its seal alone (a reader skipped it)
	sealOff int64    // offset of the batch holding seal alone (0: none, or a seal that ends a longer batch)
	midSeal uint64   // sequence number of the last seal that records follow (0: none)
}

// badSpot is the first batch of a segment that does not verify: its offset
// and why (a damage, isDamage).
type badSpot struct {
	off int64
	err error
}

// scanSegment reads the batches of one segment in order, calling visit for
// each record at or after fromSeq (visit may be nil). It stops at the first
// batch that does not parse and records it in seg.bad; it returns an error
// only for I/O failures and for errors returned by visit.
func scanSegment(f vfs.File, seg *segment, fromSeq uint64, visit func(Record) error) error {
	seg.end = segHeaderSize
	seg.nextSeq = seg.hdr.FirstSeq
	seg.minTime, seg.maxTime = math.MaxInt64, math.MinInt64
	return scanOn(f, seg, fromSeq, visit)
}

// scanOn is scanSegment resumed at seg.end, with what seg says about the
// batches before it (Follow reads a growing segment this way). It clears
// seg.bad first.
func scanOn(f vfs.File, seg *segment, fromSeq uint64, visit func(Record) error) error {
	cr := &chunkReader{f: f, size: seg.size}
	seg.bad = nil
	defer func() {
		if seg.bad != nil && seg.sealed {
			seg.bad.err = fmt.Errorf("data after the segment's seal: %w", seg.bad.err)
		}
	}()
	var body []byte
	for off := seg.end; off < seg.size; {
		head, err := cr.at(off, batchHeaderSize)
		if err != nil {
			return err
		}
		h, err := parseBatchHeader(head, seg.hdr.Salt, off)
		if err != nil {
			seg.bad = &badSpot{off, err}
			return nil
		}
		span := h.span()
		if off+span > seg.size {
			seg.bad = &badSpot{off, damagef("batch of %d bytes runs past the end of the file (%d bytes)", span, seg.size)}
			return nil
		}
		if h.Tagged && seg.hdr.Version < 2 {
			seg.bad = &badSpot{off, damage("batch header claims a tag, which format version 1 does not have")}
			return nil
		}
		if h.FirstSeq != seg.nextSeq {
			seg.bad = &badSpot{off, damagef("batch starts at sequence %d, expected %d", h.FirstSeq, seg.nextSeq)}
			return nil
		}
		raw, err := cr.at(off+batchHeaderSize, int(span-batchHeaderSize))
		if err != nil {
			return err
		}
		body = append(body[:0], raw...)
		whiten(body, seg.hdr.Salt, off+batchHeaderSize)
		if !allZero(body[h.stored():]) {
			seg.bad = &badSpot{off, damage("batch padding is not zero")}
			return nil
		}
		var tag [32]byte
		if h.Tagged {
			var ok bool
			if tag, ok = readTag(body[h.BodyLen:]); !ok {
				seg.bad = &badSpot{off, damage("batch tag checksum mismatch")}
				return nil
			}
		}
		recs, err := splitBatch(body[:h.BodyLen], h)
		if err != nil {
			seg.bad = &badSpot{off, err}
			return nil
		}
		// An intact batch after a seal (same salt, the next sequence
		// number, the chain unbroken): the seal was an interior one, left
		// by a clean Close before the segment was reopened
		// (docs/wal-format.md, "Seal record"). The segment is sealed again
		// only if this batch ends with a seal.
		if seg.sealed {
			seg.midSeal = seg.seal.FirstSeq + seg.seal.Count - 1
		}
		seg.sealed = false
		for i, r := range recs {
			seq := h.FirstSeq + uint64(i)
			typ := RecordType(r[8])
			ts := int64(binary.LittleEndian.Uint64(r[20:]))
			payload := r[recHeaderSize:]
			if typ == RecordSeal {
				s, ok := decodeSeal(payload)
				if !ok || i != len(recs)-1 || s.Number != seg.num || s.FirstSeq != seg.hdr.FirstSeq || s.Count != seg.count+uint64(i)+1 {
					seg.bad = &badSpot{off, damage("seal record does not match its segment")}
					return nil
				}
				seg.sealed, seg.seal = true, s
				seg.sealOff = 0
				if len(recs) == 1 {
					seg.sealOff = off
				}
			}
			if typ == RecordEvent {
				seg.events++
				seg.minTime = min(seg.minTime, ts)
				seg.maxTime = max(seg.maxTime, ts)
			}
			if visit != nil && seq >= fromSeq {
				rec := Record{Seq: seq, Type: typ, Time: ts, Payload: payload, Segment: seg.num, Offset: off, Version: seg.hdr.Version}
				if i == len(recs)-1 {
					rec.BatchEnd, rec.Tagged, rec.Tag = true, h.Tagged, tag
				}
				if err := visit(rec); err != nil {
					return err
				}
			}
		}
		seg.last = sha256.Sum256(recs[len(recs)-1])
		seg.hasLast = true
		seg.count += uint64(len(recs))
		seg.nextSeq += uint64(len(recs))
		off += span
		seg.end = off
	}
	return nil
}

// splitBatch checks every record frame of a batch body and returns them, or
// a damage saying why they do not verify.
func splitBatch(body []byte, h batchHeader) ([][]byte, error) {
	recs := make([][]byte, 0, h.Count)
	p := 0
	for i := uint32(0); i < h.Count; i++ {
		if len(body)-p < recHeaderSize {
			return nil, damagef("record %d of the batch is cut short", i)
		}
		n := int(binary.LittleEndian.Uint32(body[p:]))
		if n > len(body)-p-recHeaderSize {
			return nil, damagef("record %d claims %d payload bytes, more than the batch holds", i, n)
		}
		r := body[p : p+recHeaderSize+n]
		if err := checkRecord(r, i, h); err != nil {
			return nil, err
		}
		recs = append(recs, r)
		p += recHeaderSize + n
	}
	if p != len(body) {
		return nil, damagef("batch body has %d bytes after its last record", len(body)-p)
	}
	return recs, nil
}

// checkRecord checks record frame r, the i-th of the batch with header h,
// and returns a damage saying why it does not verify, or nil.
func checkRecord(r []byte, i uint32, h batchHeader) error {
	want := crc32.Update(crc32.Checksum(r[recHeaderSize:], castagnoli), castagnoli, r[8:recHeaderSize])
	if binary.LittleEndian.Uint32(r[4:]) != want {
		return damagef("record %d (sequence %d) checksum mismatch", i, h.FirstSeq+uint64(i))
	}
	if !RecordType(r[8]).valid() || r[9]|r[10]|r[11] != 0 {
		return damagef("record %d has an unknown type %d", i, r[8])
	}
	if binary.LittleEndian.Uint64(r[12:]) != h.FirstSeq+uint64(i) {
		return damagef("record %d has sequence %d, expected %d", i, binary.LittleEndian.Uint64(r[12:]), h.FirstSeq+uint64(i))
	}
	return nil
}

// minShortTail is the fewest zero bytes a write cut short must have left at
// the end of its batch for classifyTail to call it torn. A single damaged
// byte can be zero (a flip of the batch's last byte, say), and a damaged
// record can be followed by zeros by chance (whitened bytes are zero with
// probability 1/256 each); 8 zeros make either a 2⁻⁶⁴ event. A write cut
// short within the last 8 bytes of a batch is therefore reported as
// damage: a false alarm rather than a lost record (and a kernel cuts a
// short write at a page boundary, which never falls there).
const minShortTail = 8

// shortWrite reports whether raw, the bytes of a batch at offset off whose
// header h is intact, is a write cut short (a full disk): from some point
// to its end, at least minShortTail bytes, it is zero (never written there:
// zeros filled ahead, or an unwritten block), every record wholly before
// that point verifies, and a padding begun before it is zero. Damage does
// not leave that pattern: a changed byte before the point fails a record or
// the padding, and one after it ends the run of zeros.
func shortWrite(raw []byte, h batchHeader, salt uint64, off int64) bool {
	z := len(raw)
	for z > batchHeaderSize && raw[z-1] == 0 {
		z--
	}
	bodyEnd := batchHeaderSize + int(h.BodyLen)
	if len(raw)-z < minShortTail {
		return false
	}
	body := append([]byte(nil), raw[batchHeaderSize:z]...)
	whiten(body, salt, off+batchHeaderSize)
	if z >= bodyEnd { // every record was written, and perhaps part of the tag trailer or padding
		if _, err := splitBatch(body[:h.BodyLen], h); err != nil {
			return false
		}
		if !h.Tagged || z < bodyEnd+tagTrailerSize {
			return allZero(body[min(len(body), h.stored()):])
		}
		_, ok := readTag(body[h.BodyLen:])
		return ok && allZero(body[h.stored():])
	}
	p := 0
	for i := uint32(0); i < h.Count; i++ {
		if len(body)-p < recHeaderSize {
			return true // this record's header was cut short
		}
		n := int(binary.LittleEndian.Uint32(body[p:]))
		if n > len(body)-p-recHeaderSize {
			return true // this record was cut short
		}
		if checkRecord(body[p:p+recHeaderSize+n], i, h) != nil {
			return false
		}
		p += recHeaderSize + n
	}
	return false // every record fits before the zeros, yet the body runs on
}

// classifyTail decides whether the damage at seg.bad, in the last segment,
// can be the torn tail of a write that was never acknowledged. It returns
// torn=true when it can; otherwise err is either the damage, with the rule
// that makes it corruption wrapped around seg.bad.err (isDamage; corruptAt
// turns it into a *CorruptError), or a failure to read the segment.
//
// The rules follow from how batches are written: in every sync mode a batch
// is written whole, after every earlier batch, and its header records the
// offset up to which the segment was durable (SyncedOff). A torn write keeps
// each sector either fully new or as it was before (zero: segments are
// append-only and never reuse space). Whitening makes a zero sector
// impossible inside a written batch. So:
//   - a later intact batch whose SyncedOff lies beyond the damage proves the
//     damaged bytes had been made durable: corruption;
//   - a zero sector where the header belongs: the write never reached it;
//   - a header sector that does not parse but is zero after the header: a
//     write that stopped inside the header (a short write on a full disk,
//     into zeros filled ahead); a written batch never has zeros there,
//     since whitening covers its body and padding;
//   - any other non-zero header sector that does not parse: no tearing
//     produces it;
//   - an intact header whose batch runs past the end of the file, or has a
//     zero sector: torn;
//   - an intact header over a batch that ends in zeros, with every record
//     before them intact: a write cut short (see shortWrite): torn;
//   - any other batch with an intact header whose records do not verify:
//     corruption.
func classifyTail(f vfs.File, seg *segment) (torn bool, err error) {
	cr := &chunkReader{f: f, size: seg.size}
	x := seg.bad.off
	for p := x + SectorSize; p+batchHeaderSize <= seg.size; p += SectorSize {
		head, err := cr.at(p, batchHeaderSize)
		if err != nil {
			return false, err
		}
		if h, err := parseBatchHeader(head, seg.hdr.Salt, p); err == nil && h.SyncedOff > uint64(x) {
			return false, fmt.Errorf("%w; the intact batch at offset %d proves the segment was durable up to offset %d", seg.bad.err, p, h.SyncedOff)
		}
	}
	first, err := cr.at(x, SectorSize)
	if err != nil {
		return false, err
	}
	if allZero(first) {
		return true, nil
	}
	h, herr := parseBatchHeader(first, seg.hdr.Salt, x)
	if herr != nil {
		if len(first) == SectorSize && allZero(first[batchHeaderSize:]) {
			return true, nil
		}
		return false, fmt.Errorf("%w; a torn write leaves a header sector whole or empty, never damaged", seg.bad.err)
	}
	span := h.span()
	if x+span > seg.size {
		return true, nil
	}
	for q := x + SectorSize; q < x+span; q += SectorSize {
		sec, err := cr.at(q, SectorSize)
		if err != nil {
			return false, err
		}
		if allZero(sec) {
			return true, nil
		}
	}
	raw, err := cr.at(x, int(span))
	if err != nil {
		return false, err
	}
	if shortWrite(raw, h, seg.hdr.Salt, x) {
		return true, nil
	}
	return false, fmt.Errorf("%w; every sector of the batch was written, so this is damage, not a torn write", seg.bad.err)
}

// NonZeroEnd returns the offset just after the last non-zero byte of f in
// [from, size), or from when they are all zero. Zeros after a segment's
// records were filled ahead of them (Options.Prealloc) or never written.
func NonZeroEnd(f vfs.File, from, size int64) (int64, error) {
	buf := make([]byte, min(64<<10, max(size-from, 0)))
	for end := size; end > from; {
		start := max(from, end-int64(len(buf)))
		b := buf[:end-start]
		if n, err := f.ReadAt(b, start); err != nil && !(errors.Is(err, io.EOF) && n == len(b)) {
			return 0, fmt.Errorf("wal: read the tail of %s: %w", f.Name(), err)
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != 0 {
				return start + int64(i) + 1, nil
			}
		}
		end = start
	}
	return from, nil
}

// dirState is the result of inspecting a WAL directory.
type dirState struct {
	segs []*segment
	tmps []string
}

// listDir finds the segment and temporary files of a WAL directory. When
// owned is not nil (Open), a directory without segments that holds a file
// that is neither the WAL's nor owned is rejected with ErrNotWAL; readers
// pass nil and report a directory without segments themselves. When a
// segment is missing between two others it returns a *CorruptError
// together with the state holding only the segments before the gap.
func listDir(fsys vfs.FS, dir string, owned func(name string) bool) (*dirState, error) {
	names, err := fsys.List(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: list %s: %w", dir, err)
	}
	st := &dirState{}
	var foreign []string
	for _, name := range names {
		if n, ok := parseSegmentName(name); ok {
			st.segs = append(st.segs, &segment{num: n, path: filepath.Join(dir, name)})
			continue
		}
		switch {
		case isSegmentTemp(name):
			st.tmps = append(st.tmps, filepath.Join(dir, name))
		case name == LockName || owned == nil || owned(name):
		default:
			foreign = append(foreign, name)
		}
	}
	if len(st.segs) == 0 && len(foreign) > 0 {
		return nil, fmt.Errorf("%w: %s holds %d file(s) (e.g. %q) and no WAL segments; point the log at an empty or new directory", ErrNotWAL, dir, len(foreign), foreign[0])
	}
	for i := 1; i < len(st.segs); i++ {
		if st.segs[i].num != st.segs[i-1].num+1 {
			// The segments before the gap are still returned, so that a
			// reader can check them and say how much is intact before it.
			gap := &CorruptError{Segment: st.segs[i-1].num + 1, Path: filepath.Join(dir, segmentName(st.segs[i-1].num+1)), Reason: "segment file is missing between two existing segments"}
			st.segs = st.segs[:i]
			return st, gap
		}
	}
	return st, nil
}

// loadSegment reads and checks a segment's header and scans its batches.
// A limit ≥ 0 reads only that many bytes of the file (a live log's durable
// end).
func loadSegment(fsys vfs.FS, seg *segment, limit int64, fromSeq uint64, visit func(Record) error) (vfs.File, error) {
	f, err := fsys.Open(seg.path)
	if err != nil {
		return nil, fmt.Errorf("wal: open segment %s: %w", seg.path, err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	if seg.size, err = f.Size(); err != nil {
		return nil, fmt.Errorf("wal: stat segment %s: %w", seg.path, err)
	}
	if limit >= 0 && limit < seg.size {
		seg.size = limit
	}
	buf := make([]byte, segHeaderSize)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("wal: read segment header %s: %w", seg.path, err)
	}
	hdr, err := decodeSegHeader(buf[:n])
	switch {
	case errors.Is(err, errVersion):
		return nil, newerVersion(seg.path, hdr.Version, "read")
	case err != nil:
		return nil, corruptAt(seg, 0, err)
	case hdr.Number != seg.num:
		return nil, &CorruptError{Segment: seg.num, Path: seg.path, Reason: fmt.Sprintf("file is named for segment %d but its header says segment %d (a stale or misplaced file)", seg.num, hdr.Number)}
	}
	seg.hdr = hdr
	if err := scanSegment(f, seg, fromSeq, visit); err != nil {
		return nil, err
	}
	ok = true
	return f, nil
}

// checkChain verifies that seg follows prev: numbers, sequence numbers and
// the previous-record hash in seg's header.
func checkChain(prev, seg *segment) error {
	switch {
	case !prev.sealed:
		return &CorruptError{Segment: prev.num, Path: prev.path, Offset: prev.end, Reason: "segment is followed by another but ends without a seal (data is missing after this offset)"}
	case seg.hdr.FirstSeq != prev.nextSeq:
		return &CorruptError{Segment: seg.num, Path: seg.path, Reason: fmt.Sprintf("segment starts at sequence %d but the previous segment ends before %d", seg.hdr.FirstSeq, prev.nextSeq)}
	case !prev.skipped && seg.hdr.PrevHash != prev.last:
		return &CorruptError{Segment: seg.num, Path: seg.path, Reason: "segment header does not chain to the previous segment's last record (a stale or foreign segment)"}
	}
	return nil
}
