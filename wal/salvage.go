package wal

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// SalvageMode says what Salvage does when it meets damage.
type SalvageMode int

const (
	// SalvageSafe stops at the first damage: what it yields is exactly the
	// intact prefix of the log (the records Check returns before it reports
	// corruption). The zero value.
	SalvageSafe SalvageMode = iota
	// SalvageAggressive carries on after damage: it resynchronizes on the
	// next batch that verifies (batches start on SectorSize boundaries, so
	// it tries each one), recovers the records that still verify from
	// inside damaged batches, skips unreadable segment headers, missing
	// segment files and stale or foreign segments, and reports every gap.
	SalvageAggressive
)

// String returns "safe" or "aggressive".
func (m SalvageMode) String() string {
	switch m {
	case SalvageSafe:
		return "safe"
	case SalvageAggressive:
		return "aggressive"
	}
	return fmt.Sprintf("SalvageMode(%d)", int(m))
}

// ParseSalvageMode parses "safe" or "aggressive" (case-insensitive).
func ParseSalvageMode(s string) (SalvageMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "safe":
		return SalvageSafe, nil
	case "aggressive":
		return SalvageAggressive, nil
	}
	return 0, fmt.Errorf("wal: unknown salvage mode %q (use safe or aggressive)", s)
}

// Gap is a stretch of a log that Salvage could not read: damaged bytes, a
// missing segment file, or records missing from the sequence.
//
// The sequence numbers a gap lost are inferred from what surrounds it: a gap
// starts at the sequence number after the last record salvaged before it
// (the first segment of a log always starts at 1), and ends before the first
// sequence number known after it, taken from the next record that verifies
// or from the next intact segment header. Several gaps with no record
// between them (say, damage at the end of one segment followed by a missing
// segment file) share one range: the first of them carries it with Exact
// false, the others have FirstSeq and LastSeq 0.
type Gap struct {
	// Segment is the segment number (for missing files, the first one
	// missing).
	Segment uint64
	// Offset is the byte offset in the segment file where the unreadable
	// bytes start (0 for a missing or skipped file; the file's size for a
	// segment that ends without its seal).
	Offset int64
	// Length is the number of bytes skipped (0 for a missing file, a
	// truncated segment, or a jump in sequence numbers).
	Length int64
	// FirstSeq and LastSeq are the first and last sequence numbers missing
	// because of this gap, inclusive. LastSeq is 0 when nothing after the
	// gap could be read (damage at the very end, or a safe-mode stop): the
	// records from FirstSeq on may be missing, and how many is unknown.
	// Both are 0 when no record is missing (Exact is then true: for
	// instance a damaged segment header whose batches were all recovered,
	// or garbage after a seal) or when another gap carries the range.
	FirstSeq, LastSeq uint64
	// Exact is true when FirstSeq..LastSeq is exactly the set of records
	// this gap lost.
	Exact bool
	// Reason says what is wrong with the bytes.
	Reason string
}

// Lost returns the number of records known to be missing because of the gap
// (0 when none, and when the range is open-ended: see OpenEnded).
func (g Gap) Lost() uint64 {
	if g.FirstSeq == 0 || g.LastSeq < g.FirstSeq {
		return 0
	}
	return g.LastSeq - g.FirstSeq + 1
}

// OpenEnded reports whether records from FirstSeq on may be missing with no
// known end (nothing after the gap could be read).
func (g Gap) OpenEnded() bool { return g.FirstSeq != 0 && g.LastSeq == 0 }

// SalvageReport summarises a Salvage.
type SalvageReport struct {
	// Mode is the mode Salvage ran in.
	Mode SalvageMode
	// Segments is the number of segment files examined.
	Segments int
	// Records is the number of records visited, of every type; Events of
	// them were of type RecordEvent.
	Records, Events uint64
	// Recovered counts the records (included in Records) that were found
	// inside damaged batches (aggressive mode only).
	Recovered uint64
	// FirstSeq and LastSeq are the first and last sequence numbers visited
	// (0 when none).
	FirstSeq, LastSeq uint64
	// BytesScanned is the number of bytes of segment files examined.
	BytesScanned int64
	// Gaps lists what could not be read, in log order.
	Gaps []Gap
	// Stopped is set when safe mode stopped at damage (the last gap).
	Stopped bool
	// TornTail is set when the last segment ends in bytes a crash left
	// behind that were never acknowledged (what Open would truncate). It is
	// not damage and not a gap.
	TornTail *TailInfo
}

// Lost returns the number of records known to be missing (the sum of the
// gaps' Lost) and whether that number is complete: it is not when a gap is
// open-ended.
func (r *SalvageReport) Lost() (n uint64, complete bool) {
	complete = true
	for _, g := range r.Gaps {
		n += g.Lost()
		if g.OpenEnded() {
			complete = false
		}
	}
	return n, complete
}

// Salvage reads the log in dir, which it never modifies, and calls visit for
// every record that still verifies (framing and checksum), in sequence order,
// with sequence numbers strictly increasing. Damage is reported as gaps; in
// safe mode Salvage stops at the first damage, in aggressive mode it carries
// on (see SalvageMode). visit and progress may be nil; progress is called
// with the number of bytes examined so far, now and then and after each
// segment.
//
// As with Reader, a record's Payload is valid only during the call to
// visit. A record recovered from inside a damaged batch has Offset set to
// the offset of the record itself (its batch header may be gone).
//
// An unacknowledged torn tail of the last segment (what Open would
// truncate) is not damage: it is reported in TornTail and its bytes are not
// searched for records. A segment header of a newer format version makes
// Salvage fail with ErrUnknownVersion. I/O errors (a file that cannot be
// opened or read) and errors returned by visit end Salvage with that error,
// returned with the report so far; so does ctx ending. Salvage does not take
// the directory's lock: run it on a log that no process is writing, or on a
// copy.
func Salvage(ctx context.Context, fsys vfs.FS, dir string, mode SalvageMode, visit func(Record) error, progress func(bytesScanned int64)) (*SalvageReport, error) {
	if mode != SalvageSafe && mode != SalvageAggressive {
		return nil, fmt.Errorf("wal: unknown salvage mode %d (use SalvageSafe or SalvageAggressive)", int(mode))
	}
	fi, err := fsys.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNotWAL, dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrNotWAL, dir)
	}
	names, err := fsys.List(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: list %s: %w", dir, err)
	}
	var nums []uint64
	for _, name := range names {
		if n, ok := parseSegmentName(name); ok {
			nums = append(nums, n)
		}
	}
	if len(nums) == 0 {
		return nil, fmt.Errorf("%w: %s holds no WAL segments", ErrNotWAL, dir)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	s := &salvager{ctx: ctx, fs: fsys, mode: mode, visit: visit, progress: progress, expect: 1, rep: &SalvageReport{Mode: mode}}
	prev := uint64(0)
	for i, num := range nums {
		if err := ctx.Err(); err != nil {
			return s.rep, err
		}
		if num > prev+1 {
			why := fmt.Sprintf("segment file %s is missing", segmentName(prev+1))
			if num > prev+2 {
				why = fmt.Sprintf("segment files %d to %d are missing", prev+1, num-1)
			}
			if prev == 0 {
				why += " (a log starts at segment 1)"
			}
			s.haveSeal = false
			if s.stop(prev+1, 0, 0, why) {
				break
			}
			s.openGap(prev+1, 0, 0, why)
		}
		stop, err := s.segment(num, filepath.Join(dir, segmentName(num)), i == len(nums)-1)
		if err != nil {
			return s.rep, err
		}
		if stop {
			break
		}
		prev = num
	}
	s.finish()
	return s.rep, nil
}

// salvager holds the state of one Salvage.
type salvager struct {
	ctx      context.Context
	fs       vfs.FS
	mode     SalvageMode
	visit    func(Record) error
	progress func(int64)
	rep      *SalvageReport

	expect   uint64 // the next sequence number; always known (logs start at 1)
	pending  []int  // indexes in rep.Gaps of gaps whose LastSeq awaits the next known sequence number
	sealHash [32]byte
	haveSeal bool   // sealHash is the hash of the last seal frame visited
	sealed   bool   // the current segment's seal was visited
	version  uint16 // the format version of the segment being read (0: its header is unreadable)
	body     []byte
	reported int64
	ticks    int
}

// salvBatch is a batch that verified completely.
type salvBatch struct {
	h    batchHeader
	recs [][]byte // record frames, aliasing salvager.body
	span int64
	tag  [32]byte // the batch's authentication tag (h.Tagged)
}

const progressEvery = 1 << 20

// segment salvages one segment file. It reports whether Salvage must stop
// (safe mode at damage).
func (s *salvager) segment(num uint64, path string, last bool) (bool, error) {
	f, err := s.fs.Open(path)
	if err != nil {
		return true, fmt.Errorf("wal: open segment %s: %w", path, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return true, fmt.Errorf("wal: stat segment %s: %w", path, err)
	}
	s.rep.Segments++
	base := s.rep.BytesScanned
	cr := &chunkReader{f: f, size: size}
	head, err := cr.at(0, segHeaderSize)
	if err != nil {
		return true, err
	}
	hdr, herr := decodeSegHeader(head)
	s.version = 0
	if herr == nil {
		s.version = hdr.Version
	}
	var why string // the damage being handled, for the gaps that report it
	chained, sealHash := s.haveSeal, s.sealHash
	s.haveSeal, s.sealed = false, false
	var salt uint64
	off := int64(segHeaderSize)
	damaged := false // the segment header is unreadable: [0, off) is damage
	switch {
	case errors.Is(herr, errVersion):
		return true, newerVersion(path, hdr.Version, "salvage")
	case herr == nil && hdr.Number != num:
		return s.skipFile(num, size, base, fmt.Sprintf("file is named for segment %d but its header says segment %d (a stale or misplaced file); skipped", num, hdr.Number)), nil
	case herr == nil && chained && hdr.PrevHash != sealHash:
		return s.skipFile(num, size, base, "segment header does not chain to the previous segment's seal (a stale or foreign segment); skipped"), nil
	case herr == nil:
		salt = hdr.Salt
		switch {
		case hdr.FirstSeq < s.expect:
			why := fmt.Sprintf("segment header starts at sequence %d, but sequence numbers up to %d were already salvaged", hdr.FirstSeq, s.expect-1)
			if s.stop(num, 0, size, why) {
				return true, nil
			}
			// Its batches are checked one by one: those that go back are
			// reported as damage.
		case hdr.FirstSeq > s.expect && s.mode == SalvageSafe:
			s.stop(num, 0, size, fmt.Sprintf("segment header starts at sequence %d, expected %d", hdr.FirstSeq, s.expect))
			return true, nil
		default:
			s.advance(hdr.FirstSeq, num, 0)
		}
	default:
		why = "segment header unreadable: " + herr.Error()
		if s.stop(num, 0, size, why) {
			return true, nil
		}
		var ok bool
		if salt, ok, err = s.findSalt(cr); err != nil {
			return true, err
		}
		if !ok {
			return s.skipFile(num, size, base, why+"; no intact batch header to recover the segment's salt from; skipped"), nil
		}
		damaged, off = true, 0
	}

	for off < size || damaged {
		if err := s.tick(base + off); err != nil {
			return true, err
		}
		if s.sealed {
			interior, err := s.interiorSeal(cr, salt, off)
			if err != nil {
				return true, err
			}
			if interior {
				s.sealed = false
			}
		}
		if s.sealed {
			// Bytes after the seal, and no intact batch of this segment
			// after them: a completed segment ends with its seal.
			why := "data after the segment's seal"
			if last {
				torn, err := s.torn(f, num, salt, size, off, why)
				if err != nil || torn {
					return false, err
				}
			}
			if s.stop(num, off, size-off, why) {
				return true, nil
			}
			if last {
				// The last segment may have been reopened after its
				// seal: what follows may have been acknowledged.
				s.openGap(num, off, size-off, why+"; records appended after the segment was reopened may be missing")
				break
			}
			s.rep.Gaps = append(s.rep.Gaps, Gap{Segment: num, Offset: off, Length: size - off, Exact: true, Reason: why + "; the seal vouches that no record is missing"})
			break
		}
		x := off
		if !damaged {
			b, bad := s.readBatch(cr, salt, off)
			if bad == nil && b.h.FirstSeq != s.expect && (s.mode == SalvageSafe || b.h.FirstSeq < s.expect) {
				bad = damagef("batch starts at sequence %d, expected %d", b.h.FirstSeq, s.expect)
			}
			if bad != nil && !isDamage(bad) {
				return true, bad
			}
			if bad == nil {
				if err := s.acceptBatch(b, num, off); err != nil {
					return true, err
				}
				off += b.span
				continue
			}
			why = bad.Error()
			if s.mode == SalvageSafe {
				if last {
					torn, err := s.torn(f, num, salt, size, off, why)
					if err != nil || torn {
						return false, err
					}
				}
				s.stop(num, off, size-off, why)
				return true, nil
			}
		}
		// Damage at x (the segment header, when damaged): find the next
		// batch that verifies and recover what it can in between.
		damaged = false
		from := max(x+SectorSize, segHeaderSize)
		y, hi, err := s.resync(cr, salt, from)
		if err != nil {
			return true, err
		}
		if y >= size && last && x >= segHeaderSize {
			torn, err := s.torn(f, num, salt, size, x, why)
			if err != nil || torn {
				return false, err
			}
		}
		if err := s.islands(cr, salt, num, x, y, hi, why); err != nil {
			return true, err
		}
		off = y
	}
	if !s.sealed && !last {
		why := fmt.Sprintf("segment ends at offset %d without its seal, and later segments exist (records after it are missing: a truncated segment?)", size)
		if s.stop(num, size, 0, why) {
			return true, nil
		}
		if len(s.pending) == 0 {
			s.openGap(num, size, 0, why)
		}
	}
	s.rep.BytesScanned = base + size
	s.report()
	return false, nil
}

// interiorSeal reports whether the seal just visited, ending at off, is an
// interior one: the segment was closed cleanly there and reopened, so an
// intact batch with the next sequence number follows it, at off or (in
// aggressive mode, after damage) at a later sector boundary.
func (s *salvager) interiorSeal(cr *chunkReader, salt uint64, off int64) (bool, error) {
	b, err := s.readBatch(cr, salt, off)
	if err != nil && !isDamage(err) {
		return false, err
	}
	if follows := err == nil && b.h.FirstSeq == s.expect; follows || s.mode == SalvageSafe {
		return follows, nil
	}
	y, _, err := s.resync(cr, salt, off+SectorSize)
	return err == nil && y < cr.size, err
}

// readBatch reads and fully verifies the batch at off with the decoding of
// scan.go: header (magic, checksum, salt, self-offset, sizes), extent within
// the file, every record frame and zero padding (records first, so that the
// reason names the first damaged record). For a batch that does not
// verify it returns a damage saying why (isDamage); any other error is a
// failure to read.
func (s *salvager) readBatch(cr *chunkReader, salt uint64, off int64) (salvBatch, error) {
	head, err := cr.at(off, batchHeaderSize)
	if err != nil {
		return salvBatch{}, err
	}
	h, err := parseBatchHeader(head, salt, off)
	if err != nil {
		return salvBatch{}, err
	}
	span := h.span()
	if off+span > cr.size {
		return salvBatch{}, damagef("batch of %d bytes runs past the end of the file (%d bytes)", span, cr.size)
	}
	raw, err := cr.at(off+batchHeaderSize, int(span-batchHeaderSize))
	if err != nil {
		return salvBatch{}, err
	}
	s.body = append(s.body[:0], raw...)
	whiten(s.body, salt, off+batchHeaderSize)
	recs, err := splitBatch(s.body[:h.BodyLen], h)
	if err != nil {
		return salvBatch{}, err
	}
	var tag [32]byte
	if h.Tagged {
		var ok bool
		if tag, ok = readTag(s.body[h.BodyLen:]); !ok {
			return salvBatch{}, damage("batch tag checksum mismatch")
		}
	}
	if !allZero(s.body[h.stored():]) {
		return salvBatch{}, damage("batch padding is not zero")
	}
	return salvBatch{h: h, recs: recs, span: span, tag: tag}, nil
}

// acceptBatch visits the records of a batch that verified.
func (s *salvager) acceptBatch(b salvBatch, seg uint64, off int64) error {
	s.advance(b.h.FirstSeq, seg, off)
	for i, r := range b.recs {
		var end *salvBatch
		if i == len(b.recs)-1 {
			end = &b
		}
		if err := s.emit(r, b.h.FirstSeq+uint64(i), seg, off, end); err != nil {
			return err
		}
	}
	return nil
}

// emit visits one record frame that verified; end is its batch when it is
// the batch's last record (its Record then carries BatchEnd and the tag),
// nil otherwise and for records recovered one by one from a damaged batch.
func (s *salvager) emit(frame []byte, seq, seg uint64, off int64, end *salvBatch) error {
	typ := RecordType(frame[8])
	rec := Record{Seq: seq, Type: typ, Time: int64(binary.LittleEndian.Uint64(frame[20:])), Payload: frame[recHeaderSize:], Segment: seg, Offset: off, Version: s.version}
	if end != nil {
		rec.BatchEnd, rec.Tagged, rec.Tag = true, end.h.Tagged, end.tag
	}
	if s.rep.Records == 0 {
		s.rep.FirstSeq = seq
	}
	s.rep.Records++
	s.rep.LastSeq = seq
	if typ == RecordEvent {
		s.rep.Events++
	}
	if typ == RecordSeal {
		s.sealHash, s.haveSeal, s.sealed = sha256.Sum256(frame), true, true
	} else {
		// A record after an interior seal: the segment is not sealed
		// (yet), and the next segment chains to a later seal.
		s.haveSeal, s.sealed = false, false
	}
	s.expect = seq + 1
	if s.visit != nil {
		return s.visit(rec)
	}
	return nil
}

// advance records that the next record is seq: it closes the pending gaps
// with it, or reports a jump in sequence numbers where no bytes were
// damaged. seq is never below s.expect.
func (s *salvager) advance(seq, seg uint64, off int64) {
	switch {
	case len(s.pending) > 0:
		first := &s.rep.Gaps[s.pending[0]]
		if seq > first.FirstSeq {
			first.LastSeq = seq - 1
			first.Exact = len(s.pending) == 1
			for _, i := range s.pending[1:] {
				g := &s.rep.Gaps[i]
				g.FirstSeq, g.LastSeq, g.Exact = 0, 0, false
				g.Reason += fmt.Sprintf("; the records missing here, if any, are counted in the gap at segment %d offset %d", first.Segment, first.Offset)
			}
		} else {
			for _, i := range s.pending {
				g := &s.rep.Gaps[i]
				g.FirstSeq, g.LastSeq, g.Exact = 0, 0, true
			}
		}
		s.pending = s.pending[:0]
	case seq > s.expect:
		s.rep.Gaps = append(s.rep.Gaps, Gap{Segment: seg, Offset: off, FirstSeq: s.expect, LastSeq: seq - 1, Exact: true,
			Reason: fmt.Sprintf("sequence numbers jump from %d to %d where no bytes are damaged (records were removed?)", s.expect-1, seq)})
	}
	s.expect = seq
}

// openGap records unreadable bytes whose lost sequence numbers start at
// s.expect and end where the next known sequence number says.
func (s *salvager) openGap(seg uint64, off, length int64, why string) {
	s.rep.Gaps = append(s.rep.Gaps, Gap{Segment: seg, Offset: off, Length: length, FirstSeq: s.expect, Reason: why})
	s.pending = append(s.pending, len(s.rep.Gaps)-1)
}

// stop, in safe mode, records the damage as an open-ended gap and reports
// true: Salvage ends there. In aggressive mode it does nothing.
func (s *salvager) stop(seg uint64, off, length int64, why string) bool {
	if s.mode != SalvageSafe {
		return false
	}
	s.rep.Gaps = append(s.rep.Gaps, Gap{Segment: seg, Offset: off, Length: length, FirstSeq: s.expect, Reason: why + "; safe mode stopped here"})
	s.rep.Stopped = true
	s.rep.BytesScanned += off
	s.report()
	return true
}

// skipFile records a whole segment file as a gap.
func (s *salvager) skipFile(num uint64, size, base int64, why string) bool {
	if s.stop(num, 0, size, why) {
		return true
	}
	s.openGap(num, 0, size, why)
	s.rep.BytesScanned = base + size
	s.report()
	return false
}

// finish runs after the last segment: gaps still pending are open-ended.
func (s *salvager) finish() {
	s.pending = nil
	s.report()
}

// torn decides, for damage at off in the last segment after which nothing
// verifies, whether it is an unacknowledged torn tail (with the rules of
// classifyTail, which Open and Check use), and records it if so.
func (s *salvager) torn(f vfs.File, num, salt uint64, size, off int64, why string) (bool, error) {
	seg := &segment{num: num, path: f.Name(), hdr: segHeader{Salt: salt}, size: size, bad: &badSpot{off: off, err: damage(why)}}
	torn, err := classifyTail(f, seg)
	if !torn {
		if isDamage(err) {
			err = nil // damage, not a torn tail: the caller reports it
		}
		return false, err
	}
	s.rep.TornTail = &TailInfo{Segment: num, Offset: off, Bytes: size - off}
	s.rep.BytesScanned += size
	s.report()
	return true, nil
}

// tick checks ctx and reports progress now and then; pos is the number of
// bytes examined so far.
func (s *salvager) tick(pos int64) error {
	if pos-s.reported >= progressEvery {
		s.reported = pos
		if s.progress != nil {
			s.progress(pos)
		}
	}
	return s.ctx.Err()
}

func (s *salvager) report() {
	if s.progress != nil && s.rep.BytesScanned >= s.reported {
		s.reported = s.rep.BytesScanned
		s.progress(s.rep.BytesScanned)
	}
}

// often checks ctx every so many iterations of a byte-by-byte loop.
func (s *salvager) often() error {
	s.ticks++
	if s.ticks&0xffff == 0 {
		return s.ctx.Err()
	}
	return nil
}

// findSalt recovers the salt of a segment whose header is unreadable from
// its batch headers (each carries the salt under its own checksum): the
// salt of the first batch that verifies completely, else of the first
// intact batch header.
func (s *salvager) findSalt(cr *chunkReader) (uint64, bool, error) {
	var fallback uint64
	for p := int64(segHeaderSize); p+batchHeaderSize <= cr.size; p += SectorSize {
		if err := s.often(); err != nil {
			return 0, false, err
		}
		head, err := cr.at(p, batchHeaderSize)
		if err != nil {
			return 0, false, err
		}
		if binary.LittleEndian.Uint32(head) != batchMagic || crc32.Checksum(head[:44], castagnoli) != binary.LittleEndian.Uint32(head[44:]) ||
			binary.LittleEndian.Uint64(head[16:]) != uint64(p) {
			continue
		}
		salt := binary.LittleEndian.Uint64(head[8:])
		if salt == 0 {
			continue
		}
		_, err = s.readBatch(cr, salt, p)
		if err == nil {
			return salt, true, nil
		}
		if !isDamage(err) {
			return 0, false, err
		}
		if fallback == 0 {
			fallback = salt
		}
	}
	return fallback, fallback != 0, nil
}

// resync returns the first offset at or after from (a multiple of
// SectorSize) holding a batch that verifies and does not go back in
// sequence, with its first sequence number; or the file's size and
// math.MaxUint64 when there is none.
func (s *salvager) resync(cr *chunkReader, salt uint64, from int64) (int64, uint64, error) {
	for p := from; p+batchHeaderSize <= cr.size; p += SectorSize {
		if err := s.often(); err != nil {
			return 0, 0, err
		}
		head, err := cr.at(p, batchHeaderSize)
		if err != nil {
			return 0, 0, err
		}
		if binary.LittleEndian.Uint32(head) != batchMagic {
			continue
		}
		b, err := s.readBatch(cr, salt, p)
		if err != nil && !isDamage(err) {
			return 0, 0, err
		}
		if err == nil && b.h.FirstSeq >= s.expect {
			return p, b.h.FirstSeq, nil
		}
	}
	return cr.size, math.MaxUint64, nil
}

// islands recovers, in the damaged stretch [from, to) of a segment, every
// record frame that still verifies, and reports the bytes around them as
// gaps. Records are packed without alignment, so it tries every byte
// offset; a candidate must have a known type, zero reserved bytes, a
// sequence number in [s.expect, hi) and a length that fits, and then pass
// its checksum (splitBatch's checks, on a batch of one). Bytes that are zero
// once un-whitened are a batch's intact padding, and an intact batch header
// at from is not damage: neither is reported as a gap.
func (s *salvager) islands(cr *chunkReader, salt, seg uint64, from, to int64, hi uint64, why string) error {
	pr := &plainReader{cr: cr, salt: salt}
	start := from
	if from >= segHeaderSize {
		head, err := cr.at(from, batchHeaderSize)
		if err != nil {
			return err
		}
		if _, err := parseBatchHeader(head, salt, from); err == nil {
			start = from + batchHeaderSize
		}
	}
	first := true
	piece := func(end int64) error {
		if end <= start {
			return nil
		}
		zero, err := pr.zero(start, end)
		if err != nil || zero {
			return err
		}
		reason := why
		if !first {
			reason = "unreadable bytes inside a damaged batch, after records recovered from it"
		}
		first = false
		s.openGap(seg, start, end-start, reason)
		return nil
	}
	for i := max(from, segHeaderSize); i+recHeaderSize <= to; i++ {
		if err := s.often(); err != nil {
			return err
		}
		h, err := pr.at(i, recHeaderSize)
		if err != nil {
			return err
		}
		if len(h) < recHeaderSize || !RecordType(h[8]).valid() || h[9]|h[10]|h[11] != 0 {
			continue
		}
		seq := binary.LittleEndian.Uint64(h[12:])
		n := int64(binary.LittleEndian.Uint32(h[0:]))
		if seq < s.expect || seq >= hi || n > to-i-recHeaderSize {
			continue
		}
		frame, err := pr.at(i, recHeaderSize+int(n))
		if err != nil {
			return err
		}
		if _, err := splitBatch(frame, batchHeader{Count: 1, FirstSeq: seq}); err != nil {
			continue
		}
		if err := piece(i); err != nil {
			return err
		}
		if frame, err = pr.at(i, recHeaderSize+int(n)); err != nil { // piece may have moved the window
			return err
		}
		s.advance(seq, seg, i)
		s.rep.Recovered++
		if err := s.emit(frame, seq, seg, i, nil); err != nil {
			return err
		}
		i += recHeaderSize + n - 1
		start = i + 1
	}
	return piece(to)
}

// plainReader serves un-whitened bytes of a segment: every byte is
// un-whitened as if it were part of a batch body, which is right for
// record frames wherever they lie.
type plainReader struct {
	cr   *chunkReader
	salt uint64
	buf  []byte
	base int64
}

const plainWindow = 256 << 10

// at returns the n un-whitened bytes at off (fewer if the file ends first),
// valid until the next call.
func (p *plainReader) at(off int64, n int) ([]byte, error) {
	if off >= p.base && off+int64(n) <= p.base+int64(len(p.buf)) {
		return p.buf[off-p.base : off-p.base+int64(n)], nil
	}
	start := off &^ 7
	raw, err := p.cr.at(start, int(off-start)+max(n, plainWindow))
	if err != nil {
		return nil, err
	}
	p.buf = append(p.buf[:0], raw...)
	whiten(p.buf, p.salt, start)
	p.base = start
	end := min(off+int64(n), start+int64(len(p.buf)))
	if end < off {
		return nil, io.ErrUnexpectedEOF
	}
	return p.buf[off-start : end-start], nil
}

// zero reports whether the bytes in [from, to) are all zero once
// un-whitened.
func (p *plainReader) zero(from, to int64) (bool, error) {
	for from < to {
		n := int(min(to-from, plainWindow))
		b, err := p.at(from, n)
		if err != nil {
			return false, err
		}
		if len(b) == 0 {
			return false, nil
		}
		if !allZero(b) {
			return false, nil
		}
		from += int64(len(b))
	}
	return true, nil
}
