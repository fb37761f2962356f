package audit_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// writeSession opens the log with opts, writes n events (the i-th dated
// base+i, with message msg) and closes it: one restart.
func writeSession(t *testing.T, opts []audit.Option, base int64, n int, msg string) {
	t.Helper()
	s, err := audit.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := s.Write(context.Background(), &audit.Event{Timestamp: time.Unix(base+int64(i), 0).UTC(), MessageTemplate: "event {N}", Message: msg, Properties: map[string]any{"N": i}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// lastSegment returns the path of the log's last segment.
func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(segs) == 0 {
		t.Fatal("no segments")
	}
	return segs[len(segs)-1]
}

// Opening a log whose last segment was continued across restarts reads
// that segment from its last seal on, not from its start: the stored tree
// is trusted up to the seal (unsigned), and a signed log's tail after its
// last checkpoint is read from there. Before, every open read (and, when
// unsigned, hashed) the whole last segment, up to Options.SegmentSize.
func TestOpenReadsReopenedSegmentFromItsLastSeal(t *testing.T) {
	sk, _, err := integrity.GenerateKey("audit.example/reopen-trust")
	if err != nil {
		t.Fatal(err)
	}
	for _, signed := range []bool{false, true} {
		name := "unsigned"
		if signed {
			name = "signed"
		}
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "log")
			opts := []audit.Option{audit.WithWAL(dir)}
			if signed {
				opts = append(opts, audit.WithSigningKey(sk))
			}
			msg := strings.Repeat("m", 1000)
			for r := range 4 {
				writeSession(t, opts, 1_700_000_000+int64(r)*1000, 150, msg)
			}
			last := lastSegment(t, dir)
			fi, err := os.Stat(last)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() < 500<<10 {
				t.Fatalf("the last segment holds %d bytes; want the sessions in one segment", fi.Size())
			}
			for round := range 2 {
				c := &countFS{FS: vfs.OS(), read: map[string]int64{}}
				s, err := audit.New(append(opts, audit.WithFileSystem(c))...)
				if err != nil {
					t.Fatal(err)
				}
				_, lastRead := c.segmentBytesRead(filepath.Base(last))
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				// wal.Open reads the header and the seal's sector; the
				// ledger reads the seal again (header and sector).
				if lastRead > 64<<10 {
					t.Fatalf("round %d: open read %d bytes of the last segment (%d bytes): it read the segment before its last seal again", round, lastRead, fi.Size())
				}
			}
			if rep, err := audit.Verify(context.Background(), dir); err != nil || !rep.OK {
				t.Fatalf("after the opens: %v %+v", err, rep)
			}
		})
	}
}

// storedTree returns the hashes tree.nodes holds.
func storedTree(t *testing.T, dir string) []integrity.Hash {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "tree.nodes"))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]integrity.Hash, len(b)/32)
	for i := range out {
		copy(out[i][:], b[32*i:])
	}
	return out
}

// An unsigned log's stored tree rewritten inside the reopened segment,
// before its last seal (where open no longer reads the records): the
// forged leaf is either rebuilt by the open or reported by Verify once the
// log continues past that seal; it never silently becomes the log's tree.
func TestForgedTreeInReopenedSegmentIsFound(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	opts := []audit.Option{audit.WithWAL(dir)}
	writeSession(t, opts, 1_700_000_000, 50, "first")  // records 1–50, seal 51
	writeSession(t, opts, 1_700_001_000, 50, "second") // records 52–101, seal 102
	var forged integrity.Hash
	copy(forged[:], bytes.Repeat([]byte{0x5a}, 32))
	writeNodes(t, vfs.OS(), dir, nodePos(69), []integrity.Hash{forged}) // the leaf of record 70
	writeSession(t, opts, 1_700_002_000, 1, "third")
	rep, err := audit.Verify(context.Background(), dir)
	if err == nil && rep.OK {
		want, got := treeOf(t, vfs.OS(), dir), storedTree(t, dir)
		if len(got) != len(want) {
			t.Fatalf("stored tree holds %d nodes, the records make %d", len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("Verify passed, but stored node %d differs from the records: the forged tree was adopted unseen", i)
			}
		}
		return
	}
	if !errors.Is(err, audit.ErrIntegrity) || rep == nil || rep.Problem == nil || rep.Problem.Code != integrity.CodeTreeNodeDamaged {
		t.Fatalf("want the forged node reported as tree-node-damaged, got %v %+v", err, rep)
	}
}

// forgeSession appends n events to the log in dir through the wal package
// (as anyone without the key can), dated like writeSession's, and closes
// it: the segment is continued after its seal and sealed again.
func forgeSession(t *testing.T, dir string, base int64, n int, msg string) {
	t.Helper()
	w, err := wal.Open(vfs.OS(), dir, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ev := &audit.Event{Timestamp: time.Unix(base+int64(i), 0).UTC(), MessageTemplate: "event {N}", Message: msg, Properties: map[string]any{"N": i}}
		b, err := event.AppendEncode(nil, ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Append(context.Background(), wal.RecordEvent, ev.Timestamp.UnixNano(), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// A signed log whose last session was replaced, inside the reopened
// segment, by forged records of the same count, dates and so the same seal
// (every byte valid, the seal rewritten by the forger's Close):
//   - with the genuine tree.nodes and checkpoints, whose last checkpoint
//     covers the forged records, the open may resume (it never reads
//     records a checkpoint covers), but Verify with the key finds that the
//     records do not reproduce the signed root, also after more writes;
//   - with the checkpoints rolled back to before the forged records and a
//     tree.nodes rewritten to match them, the open refuses the unsigned
//     batches (ErrUnauthenticated), as it refuses any after the last
//     checkpoint.
func TestForgedRecordsBeforeReopenedSeal(t *testing.T) {
	sk, vk, err := integrity.GenerateKey("audit.example/reopen-forge")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "log")
	opts := func(d string) []audit.Option { return []audit.Option{audit.WithWAL(d), audit.WithSigningKey(sk)} }
	writeSession(t, opts(dir), 1_700_000_000, 20, "genuine")
	early := copyDir(t, dir) // the log after the first session
	earlyCps, err := integrity.ReadCheckpointLog(vfs.OS(), filepath.Join(dir, "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	writeSession(t, opts(dir), 1_700_001_000, 20, "genuine")

	t.Run("checkpoint covers the forgery", func(t *testing.T) {
		forged := copyDir(t, early)
		forgeSession(t, forged, 1_700_001_000, 20, "forged!")
		copyFile(t, filepath.Join(dir, "tree.nodes"), filepath.Join(forged, "tree.nodes"))
		copyFile(t, filepath.Join(dir, "checkpoints"), filepath.Join(forged, "checkpoints"))
		if s, err := audit.New(opts(forged)...); err == nil {
			if _, err := s.Write(context.Background(), &audit.Event{Timestamp: time.Unix(1_700_002_000, 0), MessageTemplate: "after"}); err != nil {
				t.Fatal(err)
			}
			s.Close()
		} else if !errors.Is(err, audit.ErrIntegrity) {
			t.Fatalf("want an integrity error or an open, got %v", err)
		}
		rep, err := audit.Verify(context.Background(), forged, audit.WithTrustedKeys(vk))
		if err == nil || !errors.Is(err, audit.ErrIntegrity) || rep.OK {
			t.Fatalf("Verify with the key must find the forged records the checkpoints cover: %v %+v", err, rep)
		}
	})
	t.Run("checkpoints rolled back, tree rewritten", func(t *testing.T) {
		forged := copyDir(t, early)
		forgeSession(t, forged, 1_700_001_000, 20, "forged!")
		rewriteCheckpoints(t, forged, earlyCps)
		var raw []byte
		for _, h := range treeOf(t, vfs.OS(), forged) {
			raw = append(raw, h[:]...)
		}
		if err := os.WriteFile(filepath.Join(forged, "tree.nodes"), raw, 0o640); err != nil {
			t.Fatal(err)
		}
		_, err := audit.New(opts(forged)...)
		if !errors.Is(err, audit.ErrUnauthenticated) {
			t.Fatalf("want the forged batches refused (ErrUnauthenticated), got %v", err)
		}
	})
}
