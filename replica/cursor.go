package replica

import (
	"encoding/json"
	"errors"
	"fmt"
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

// cursorVersion is the version of the cursor's JSON form.
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

// ReadCursor reads the cursor of the log in dir. A missing cursor is an
// empty one; a damaged one is an empty one too, and reported as damaged
// (err matches ErrCursorDamaged) so the caller can say why it re-ships.
func ReadCursor(fsys vfs.FS, dir string) (*Cursor, error) {
	c := &Cursor{Version: cursorVersion, Backends: map[string]BackendCursor{}}
	data, err := vfs.ReadFile(fsys, filepath.Join(dir, CursorFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return c, nil
	case err != nil:
		return c, fmt.Errorf("replica: read cursor: %w", err)
	}
	var got Cursor
	if err := json.Unmarshal(data, &got); err != nil || got.Version != cursorVersion {
		return c, fmt.Errorf("%w: %s: not a version %d cursor", ErrCursorDamaged, filepath.Join(dir, CursorFile), cursorVersion)
	}
	for name, bc := range got.Backends {
		c.Backends[name] = bc
	}
	return c, nil
}

// ErrCursorDamaged is matched by ReadCursor's error when the cursor file
// does not parse: every object is then shipped again (and found there).
var ErrCursorDamaged = errors.New("replica: shipping cursor damaged")

// Write stores the cursor in dir atomically and durably: a temporary file,
// fsynced, renamed over the cursor, and the directory fsynced.
func (c *Cursor) Write(fsys vfs.FS, dir string) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("replica: encode cursor: %w", err)
	}
	tmp := filepath.Join(dir, cursorTemp)
	if err := fsys.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replica: remove leftover %s: %w", tmp, err)
	}
	f, err := fsys.Create(tmp)
	if err != nil {
		return fmt.Errorf("replica: write cursor: %w", err)
	}
	if _, err := f.WriteAt(append(data, '\n'), 0); err != nil {
		f.Close()
		return fmt.Errorf("replica: write cursor: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("replica: sync cursor: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("replica: write cursor: %w", err)
	}
	if err := fsys.Rename(tmp, filepath.Join(dir, CursorFile)); err != nil {
		return fmt.Errorf("replica: write cursor: %w", err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("replica: sync cursor directory: %w", err)
	}
	return nil
}

// clone returns a deep copy of c.
func (c *Cursor) clone() *Cursor {
	out := &Cursor{Version: c.Version, Backends: make(map[string]BackendCursor, len(c.Backends))}
	for k, v := range c.Backends {
		out.Backends[k] = v
	}
	return out
}
