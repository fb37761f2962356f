package replica

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/backends/s3"
	"github.com/willibrandon/mtlog-audit/backends/s3/s3test"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// TestShipperStreamsSegments: shipping a segment of 8 MiB to MinIO
// allocates far less than the segment. The shipper used to read each sealed
// segment into memory whole (and the driver to hash it there), so that the
// 64 MiB segments of the default size cost 64 MiB of heap per backend and a
// collection each; now the segment is hashed and sent from its file in
// pieces. The heap the whole shipment allocates is measured, not its speed.
func TestShipperStreamsSegments(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w, err := wal.Open(vfs.OS(), dir, wal.Options{Sync: wal.SyncInterval})
	if err != nil {
		t.Fatal(err)
	}
	record := bytes.Repeat([]byte("0123456789abcdef"), 4<<10/16)
	const records = 2 << 10 // 8 MiB
	for i := range records {
		if _, err := w.Append(ctx, wal.RecordEvent, int64(i+1), record); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil { // seals segment 1
		t.Fatal(err)
	}
	seal, ok, err := wal.ReadSeal(vfs.OS(), dir+"/"+wal.SegmentName(1), ^uint64(0))
	if err != nil || !ok || seal.End < records*int64(len(record)) {
		t.Fatalf("segment 1: seal %+v, %v, %v; want a sealed segment of 8 MiB", seal, ok, err)
	}

	b, err := s3.New(ctx, s3test.NewBucket(t, false))
	if err != nil {
		t.Fatal(err)
	}
	sh, err := NewShipper(ShipperOptions{
		FS: vfs.OS(), Dir: dir, Backends: []backends.Backend{b}, Quorum: 1,
		Durable: func() uint64 { return ^uint64(0) }, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	sh.Start()
	defer sh.Close()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := sh.WaitHeld(wctx, 1); err != nil {
		t.Fatalf("WaitHeld: %v", err)
	}
	runtime.ReadMemStats(&after)
	info, err := b.Stat(ctx, SegmentObject{Segment: 1, FirstSeq: seal.FirstSeq, LastSeq: seal.LastSeq, SHA256: sha256File(t, dir, seal.End)}.Key())
	if err != nil || info.Size != seal.End {
		t.Fatalf("the backend holds %+v, %v; want segment 1's %d bytes", info, err, seal.End)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("shipping a segment of %d bytes allocated %d bytes", seal.End, alloc)
	if alloc > uint64(seal.End)/4 {
		t.Fatalf("shipping a segment of %d bytes allocated %d bytes: the segment was held in memory, not streamed", seal.End, alloc)
	}
}

// sha256File returns the SHA-256 of the first n bytes of segment 1 in dir.
func sha256File(t *testing.T, dir string, n int64) [32]byte {
	t.Helper()
	f, err := vfs.OS().Open(dir + "/" + wal.SegmentName(1))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sum, err := backends.SHA256At(f, n)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}
