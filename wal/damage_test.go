package wal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// TestDamageIsClassifiedByType checks that the decoders report why bytes do
// not verify as a damage that isDamage recognises through wrapping, that an
// I/O failure or a newer format version is not damage, and that classifyTail
// reports (torn, err): torn for zeros where the next batch belongs, damage
// for a header sector no torn write leaves, which corruptAt and Open turn
// into a *CorruptError naming the segment, its path, the offset and the
// reason.
func TestDamageIsClassifiedByType(t *testing.T) {
	fsys := vfs.NewCrashFS()
	w, err := Open(fsys, testDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := w.Append(context.Background(), RecordEvent, int64(i+1), []byte("event")); err != nil {
			t.Fatal(err)
		}
	}
	path, end := w.committer.seg.path, w.committer.seg.off
	if err := w.Release(); err != nil { // no seal: zeros filled ahead follow the records
		t.Fatal(err)
	}

	load := func() (*segment, vfs.File) {
		t.Helper()
		seg := &segment{num: 1, path: path}
		f, err := loadSegment(fsys, seg, -1, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if seg.bad == nil || seg.bad.off != end {
			t.Fatalf("scan stopped at %+v, want the first batch that does not verify at %d", seg.bad, end)
		}
		if !isDamage(seg.bad.err) || !isDamage(fmt.Errorf("context: %w", seg.bad.err)) {
			t.Fatalf("seg.bad.err = %v (%T): not classified as damage", seg.bad.err, seg.bad.err)
		}
		return seg, f
	}

	seg, f := load()
	if torn, err := classifyTail(f, seg); !torn || err != nil {
		t.Fatalf("classifyTail over zeros filled ahead = (%v, %v), want (true, nil)", torn, err)
	}

	// A byte in the header sector after the batch header: no torn write
	// leaves a header sector damaged.
	g, err := fsys.OpenReadWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.WriteAt([]byte{0xA5}, end+batchHeaderSize+7); err != nil {
		t.Fatal(err)
	}
	g.Close()
	seg, f = load()
	torn, err := classifyTail(f, seg)
	if torn || !isDamage(err) || !errors.Is(err, seg.bad.err) {
		t.Fatalf("classifyTail over a damaged header sector = (%v, %v), want damage wrapping %v", torn, err, seg.bad.err)
	}
	var ce *CorruptError
	if cerr := corruptAt(seg, seg.bad.off, err); !errors.As(cerr, &ce) || !errors.Is(cerr, ErrCorrupt) {
		t.Fatalf("corruptAt(damage) = %v (%T), want a *CorruptError matching ErrCorrupt", cerr, cerr)
	}
	if ce.Segment != 1 || ce.Path != path || ce.Offset != end || ce.Reason != err.Error() ||
		!strings.Contains(ce.Reason, "batch header magic is wrong") || !strings.Contains(ce.Reason, "never damaged") {
		t.Fatalf("CorruptError = %+v, want segment 1, path %s, offset %d and the reason with its rule", *ce, path, end)
	}

	// Open reaches the same verdict.
	_, oerr := Open(fsys, testDir, Options{})
	var oce *CorruptError
	if !errors.As(oerr, &oce) || *oce != *ce {
		t.Fatalf("Open = %v, want %v", oerr, ce)
	}

	// Failures to read, and a format this build does not read, are not
	// damage: they pass through corruptAt unchanged.
	if isDamage(io.ErrUnexpectedEOF) || corruptAt(seg, 0, io.ErrUnexpectedEOF) != io.ErrUnexpectedEOF || corruptAt(seg, 0, nil) != nil {
		t.Fatal("an I/O error was classified as damage")
	}
	hdr := segHeader{Version: FormatVersion + 1, Number: 1, FirstSeq: 1, Salt: 1}
	if h, err := decodeSegHeader(hdr.encode()); !errors.Is(err, errVersion) || isDamage(err) || h.Version != FormatVersion+1 {
		t.Fatalf("decodeSegHeader of a newer version = (%d, %v), want errVersion with the version set", h.Version, err)
	}
}
