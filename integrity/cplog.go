package integrity

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
	"sync"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// ErrCheckpointLogCorrupt is matched (errors.Is) by the error returned when a
// checkpoint log holds a damaged entry that is followed by intact data: not
// a write torn by a crash, which can only affect the last entry, but damage
// to what was already durable.
var ErrCheckpointLogCorrupt = errors.New("integrity: checkpoint log is corrupt")

// CheckpointLogCorruptError locates the damage in a corrupt checkpoint log.
// It matches ErrCheckpointLogCorrupt.
type CheckpointLogCorruptError struct {
	Path   string // the checkpoint log's path
	Offset int64  // where the first damaged entry starts
	Detail string // what follows the damage
}

// Error describes the damage.
func (e *CheckpointLogCorruptError) Error() string {
	return fmt.Sprintf("%v: %s at offset %d: %s", ErrCheckpointLogCorrupt, e.Path, e.Offset, e.Detail)
}

// Unwrap returns ErrCheckpointLogCorrupt.
func (e *CheckpointLogCorruptError) Unwrap() error { return ErrCheckpointLogCorrupt }

// cpFrameHeader is the size of an entry's header: the payload length and the
// CRC-32C, both little-endian uint32.
const cpFrameHeader = 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameCRC is the CRC-32C of the length field followed by the payload, so
// that a damaged length is caught even when it lands on plausible data.
func frameCRC(lenField []byte, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(lenField, castagnoli), castagnoli, payload)
}

// appendFrame appends the framed entry p to dst.
func appendFrame(dst, p []byte) []byte {
	var h [cpFrameHeader]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(p)))
	binary.LittleEndian.PutUint32(h[4:8], frameCRC(h[0:4], p))
	dst = append(dst, h[:]...)
	return append(dst, p...)
}

// frameAt returns the payload of an intact entry starting at off.
func frameAt(data []byte, off int) ([]byte, bool) {
	if off < 0 || len(data)-off < cpFrameHeader {
		return nil, false
	}
	n := int(binary.LittleEndian.Uint32(data[off:]))
	if n == 0 || n > MaxCheckpointSize || len(data)-off-cpFrameHeader < n {
		return nil, false
	}
	p := data[off+cpFrameHeader : off+cpFrameHeader+n]
	if frameCRC(data[off:off+4], p) != binary.LittleEndian.Uint32(data[off+4:]) {
		return nil, false
	}
	return p, true
}

// scanCheckpointLog splits a checkpoint log's bytes into entries (sharing
// data). It returns the end of the last intact entry; bytes after it are a
// torn tail to ignore or truncate. Damage followed by an intact entry, or a
// damaged region longer than one entry could be, is corruption.
func scanCheckpointLog(path string, data []byte) (entries [][]byte, end int64, err error) {
	off := 0
	for off < len(data) {
		if p, ok := frameAt(data, off); ok {
			entries = append(entries, p[:len(p):len(p)])
			off += cpFrameHeader + len(p)
			continue
		}
		// Only the last append can be torn by a crash: everything before
		// it was made durable before the next began, so a torn entry
		// runs to the end of the file and holds no intact entry.
		if rest := len(data) - off; rest > cpFrameHeader+MaxCheckpointSize {
			return nil, 0, &CheckpointLogCorruptError{Path: path, Offset: int64(off),
				Detail: fmt.Sprintf("damaged entry followed by %d more bytes, more than a single torn write can leave", rest)}
		}
		for q := off + 1; q+cpFrameHeader < len(data); q++ {
			if _, ok := frameAt(data, q); ok {
				return nil, 0, &CheckpointLogCorruptError{Path: path, Offset: int64(off),
					Detail: fmt.Sprintf("damaged entry followed by an intact entry at offset %d", q)}
			}
		}
		break
	}
	return entries, int64(off), nil
}

// readWhole reads all of f.
func readWhole(f vfs.File) ([]byte, error) {
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if int64(int(size)) != size || size < 0 {
		return nil, fmt.Errorf("file of %d bytes is too large", size)
	}
	b := make([]byte, size)
	if err := readFull(f, b, 0); err != nil {
		return nil, err
	}
	return b, nil
}

// CheckpointLog is the durable, append-only store of a log's signed
// checkpoints, one file beside the log. Each entry is framed as a
// little-endian uint32 length, a little-endian uint32 CRC-32C (Castagnoli)
// of the length field and the payload, and the payload: a signed note of at
// most MaxCheckpointSize bytes.
//
// Append returns only once the entry is durable, so a checkpoint may be
// shown to anyone as soon as Append returns. All entries are kept in memory
// (a checkpoint is a few hundred bytes). A CheckpointLog is safe for
// concurrent use; only one may be open on a file at a time (the caller
// holds the log's lock).
type CheckpointLog struct {
	fsys vfs.FS
	path string

	mu      sync.Mutex
	f       vfs.File
	entries [][]byte
	end     int64
	failed  error // sticky: a failed write or sync leaves the tail unknown
}

// OpenCheckpointLog opens the checkpoint log at path, creating it (and
// making its directory entry durable) if it does not exist. Its directory
// must exist. An entry torn by a crash at the end of the file is cut off,
// durably. A damaged entry followed by intact data is not a torn write: the
// error then matches ErrCheckpointLogCorrupt and the file is left as it is.
func OpenCheckpointLog(fsys vfs.FS, path string) (*CheckpointLog, error) {
	f, err := fsys.OpenReadWrite(path)
	if errors.Is(err, fs.ErrNotExist) {
		if f, err = fsys.Create(path); err != nil {
			return nil, fmt.Errorf("integrity: create checkpoint log: %w", err)
		}
		if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return nil, fmt.Errorf("integrity: create checkpoint log: sync directory: %w", err)
		}
		return &CheckpointLog{fsys: fsys, path: path, f: f}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("integrity: open checkpoint log: %w", err)
	}
	data, err := readWhole(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("integrity: read checkpoint log %s: %w", path, err)
	}
	entries, end, err := scanCheckpointLog(path, data)
	if err != nil {
		f.Close()
		return nil, err
	}
	if end < int64(len(data)) {
		err := f.Truncate(end)
		if err == nil {
			err = f.Datasync()
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("integrity: cut the torn tail of checkpoint log %s at offset %d: %w", path, end, err)
		}
	}
	return &CheckpointLog{fsys: fsys, path: path, f: f, entries: entries, end: end}, nil
}

// ReadCheckpointLog returns the signed checkpoints stored at path, oldest
// first, without modifying the file: an entry torn by a crash at the end is
// ignored, damage followed by intact data is an error matching
// ErrCheckpointLogCorrupt. It is meant for offline verifiers.
func ReadCheckpointLog(fsys vfs.FS, path string) ([][]byte, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return nil, fmt.Errorf("integrity: open checkpoint log: %w", err)
	}
	defer f.Close()
	data, err := readWhole(f)
	if err != nil {
		return nil, fmt.Errorf("integrity: read checkpoint log %s: %w", path, err)
	}
	entries, _, err := scanCheckpointLog(path, data)
	return entries, err
}

// Append stores a signed checkpoint durably (written and fdatasynced)
// before it returns. A failed write is undone (the file is truncated back)
// and may be retried; after a failed sync, or a write that cannot be undone,
// the log refuses further appends: reopen it to learn what the file holds.
func (l *CheckpointLog) Append(signed []byte) error {
	if len(signed) == 0 || len(signed) > MaxCheckpointSize {
		return fmt.Errorf("integrity: checkpoint log entry of %d bytes: it must be 1 to %d bytes", len(signed), MaxCheckpointSize)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errors.New("integrity: checkpoint log is closed")
	}
	if l.failed != nil {
		return fmt.Errorf("integrity: checkpoint log %s failed earlier: %w", l.path, l.failed)
	}
	frame := appendFrame(make([]byte, 0, cpFrameHeader+len(signed)), signed)
	if _, err := l.f.WriteAt(frame, l.end); err != nil {
		// A failed write (a full disk, say) took nothing: cut off whatever
		// part of the frame landed, so that the next Append writes at the
		// same offset over a clean end. Only if that fails too is the file's
		// state unknown and the log refuses further appends.
		if terr := l.f.Truncate(l.end); terr != nil {
			l.failed = err
		}
		return fmt.Errorf("integrity: append to checkpoint log %s: %w", l.path, err)
	}
	if err := l.f.Datasync(); err != nil {
		l.failed = err
		return fmt.Errorf("integrity: sync checkpoint log %s: %w", l.path, err)
	}
	p := frame[cpFrameHeader:]
	l.entries = append(l.entries, p[:len(p):len(p)])
	l.end += int64(len(frame))
	return nil
}

// Entries returns copies of all stored signed checkpoints, oldest first.
func (l *CheckpointLog) Entries() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([][]byte, len(l.entries))
	for i, e := range l.entries {
		out[i] = bytes.Clone(e)
	}
	return out
}

// Last returns a copy of the newest stored signed checkpoint, if any.
func (l *CheckpointLog) Last() ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.entries) == 0 {
		return nil, false
	}
	return bytes.Clone(l.entries[len(l.entries)-1]), true
}

// Close closes the file. Every appended entry is already durable.
func (l *CheckpointLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
