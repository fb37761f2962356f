package replica

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// CursorFile is the shipper's cursor in the log directory: what each
// backend holds (docs/replication.md, "The cursor").
const CursorFile = "ship.cursor"

// cursorTemp is the cursor being replaced; a leftover (a crash while the
// cursor was written) is ignored and overwritten.
const cursorTemp = "ship.cursor.tmp"

// cursorVersion is the version of the cursor's JSON form (the file's
// layout is told by its first bytes; see cursorMagic).
const cursorVersion = 1

// Cursor records, per backend (by Name), the objects confirmed there: put,
// then read back or checked by the service. Objects are shipped to each
// backend in log order, so a few numbers say it all. A Cursor is a hint,
// never evidence: a lost or damaged one costs re-shipping (each put finds
// the object and compares it), and one that claims more than a backend
// holds is corrected by the shipper's periodic check (Shipper, List).
type Cursor struct {
	Version  int                      `json:"version"`
	Backends map[string]BackendCursor `json:"backends"`
}

// BackendCursor is what one backend holds.
type BackendCursor struct {
	// Segment and SegmentLast: every segment before Segment is there
	// through its last seal, and Segment through the seal record
	// SegmentLast (0: no segment yet).
	Segment     uint64 `json:"segment"`
	SegmentLast uint64 `json:"segment_last"`
	// SegmentKey is the key of the object of Segment through SegmentLast.
	SegmentKey string `json:"segment_key,omitempty"`
	// Checkpoints is how many entries of the checkpoints file are there
	// (the first ones), the last as CheckpointKey.
	Checkpoints   uint64 `json:"checkpoints"`
	CheckpointKey string `json:"checkpoint_key,omitempty"`
}

// The cursor file holds two slots of equal size, each one cursor in its
// JSON form behind a header: magic, generation, length and a CRC-32C of
// the three. Successive cursors overwrite the slots in turn, in place, and
// fdatasync makes each durable: the file's size and blocks never change
// after it is made, so no write is a directory or journal operation that
// would queue with the log's own syncs on the same disk. A write torn by a
// crash leaves the other slot, one object behind. A cursor too large for
// its slot (many backends) makes a new file with larger slots, replaced
// atomically. Version 1 cursors (the bare JSON) are read too.
const (
	cursorMagic   = "MTLAcur2"
	slotHeader    = 24 // magic, generation (8), length (4), CRC-32C (4)
	minCursorSlot = 4096
)

var cursorCRC = crc32.MakeTable(crc32.Castagnoli)

// ReadCursor reads the cursor of the log in dir. A missing cursor is an
// empty one; a damaged one is an empty one too, and reported as damaged
// (err matches ErrCursorDamaged) so the caller can say why it re-ships.
func ReadCursor(fsys vfs.FS, dir string) (*Cursor, error) {
	c, _, _, err := readCursor(fsys, dir)
	return c, err
}

// readCursor is ReadCursor, which also returns the generation of the slot
// it read and the file's slot size (0: no file in the slotted form).
func readCursor(fsys vfs.FS, dir string) (*Cursor, uint64, int64, error) {
	c := &Cursor{Version: cursorVersion, Backends: map[string]BackendCursor{}}
	path := filepath.Join(dir, CursorFile)
	data, err := vfs.ReadFile(fsys, path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return c, 0, 0, nil
	case err != nil:
		return c, 0, 0, fmt.Errorf("replica: read cursor: %w", err)
	}
	payload, gen, slot := data, uint64(0), int64(0)
	if bytes.HasPrefix(data, []byte(cursorMagic)) {
		slot = int64(len(data) / 2)
		payload, gen = newestSlot(data[:slot], data[slot:])
	}
	var got Cursor
	if payload == nil || json.Unmarshal(payload, &got) != nil || got.Version != cursorVersion {
		return c, 0, slot, fmt.Errorf("%w: %s: not a version %d cursor", ErrCursorDamaged, path, cursorVersion)
	}
	for name, bc := range got.Backends {
		c.Backends[name] = bc
	}
	return c, gen, slot, nil
}

// newestSlot returns the payload and generation of the intact slot of the
// higher generation (nil: neither is intact).
func newestSlot(slots ...[]byte) ([]byte, uint64) {
	var best []byte
	var bestGen uint64
	for _, s := range slots {
		if len(s) < slotHeader || string(s[:8]) != cursorMagic {
			continue
		}
		gen, n := binary.LittleEndian.Uint64(s[8:16]), binary.LittleEndian.Uint32(s[16:20])
		if int64(n) > int64(len(s)-slotHeader) || crc32.Update(crc32.Checksum(s[8:20], cursorCRC), cursorCRC, s[slotHeader:slotHeader+int(n)]) != binary.LittleEndian.Uint32(s[20:24]) {
			continue
		}
		if best == nil || gen > bestGen {
			best, bestGen = s[slotHeader:slotHeader+int(n)], gen
		}
	}
	return best, bestGen
}

// ErrCursorDamaged is matched by ReadCursor's error when the cursor file
// does not parse: every object is then shipped again (and found there).
var ErrCursorDamaged = errors.New("replica: shipping cursor damaged")

// cursorWriter stores successive cursors of the log in dir durably.
type cursorWriter struct {
	fs   vfs.FS
	dir  string
	f    vfs.File // the slotted cursor file (nil: not open yet)
	slot int64    // its slot size
	gen  uint64   // the generation of the last cursor written
}

// write stores c: in place in the older slot, or, when there is no slotted
// file yet or c outgrew its slots, in a new file replacing the cursor.
func (w *cursorWriter) write(c *Cursor) error {
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("replica: encode cursor: %w", err)
	}
	if w.f == nil && w.gen == 0 {
		_, gen, slot, err := readCursor(w.fs, w.dir)
		if err == nil && slot > 0 {
			w.gen = gen
			if w.f, err = w.fs.OpenReadWrite(filepath.Join(w.dir, CursorFile)); err != nil {
				return fmt.Errorf("replica: write cursor: %w", err)
			}
			w.slot = slot
		}
	}
	w.gen++
	rec := make([]byte, slotHeader+len(data))
	copy(rec, cursorMagic)
	binary.LittleEndian.PutUint64(rec[8:16], w.gen)
	binary.LittleEndian.PutUint32(rec[16:20], uint32(len(data)))
	copy(rec[slotHeader:], data)
	binary.LittleEndian.PutUint32(rec[20:24], crc32.Update(crc32.Checksum(rec[8:20], cursorCRC), cursorCRC, data))
	if w.f == nil || int64(len(rec)) > w.slot {
		return w.replace(rec)
	}
	if _, err := w.f.WriteAt(rec, int64(w.gen%2)*w.slot); err != nil {
		return fmt.Errorf("replica: write cursor: %w", err)
	}
	if err := w.f.Datasync(); err != nil {
		return fmt.Errorf("replica: sync cursor: %w", err)
	}
	return nil
}

// replace makes a new slotted cursor file holding rec in both slots (each
// large enough for twice rec), fsynced, renamed over the cursor, and the
// directory fsynced; it is opened again for the writes that follow (not
// kept open across the rename, which Windows refuses).
func (w *cursorWriter) replace(rec []byte) error {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	slot := int64(minCursorSlot)
	for slot < 2*int64(len(rec)) {
		slot *= 2
	}
	buf := make([]byte, 2*slot) // written whole: no hole, no unwritten extent
	copy(buf, rec)
	copy(buf[slot:], rec)
	path := filepath.Join(w.dir, CursorFile)
	if err := vfs.ReplaceFile(w.fs, path, filepath.Join(w.dir, cursorTemp), buf, false); err != nil {
		return fmt.Errorf("replica: write cursor: %w", err)
	}
	var err error
	if w.f, err = w.fs.OpenReadWrite(path); err != nil {
		return fmt.Errorf("replica: write cursor: %w", err)
	}
	w.slot = slot
	return nil
}

// close closes the cursor file.
func (w *cursorWriter) close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// clone returns a deep copy of c.
func (c *Cursor) clone() *Cursor {
	out := &Cursor{Version: c.Version, Backends: make(map[string]BackendCursor, len(c.Backends))}
	for k, v := range c.Backends {
		out.Backends[k] = v
	}
	return out
}
