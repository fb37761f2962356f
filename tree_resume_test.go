package audit_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// treeOf returns every node the records of the log in dir produce, in the
// post-order tree.nodes stores them.
func treeOf(t *testing.T, fsys vfs.FS, dir string) []integrity.Hash {
	t.Helper()
	var nodes []integrity.Hash
	b := integrity.NewBuilder()
	b.OnNode(func(_ uint, _ uint64, h integrity.Hash) { nodes = append(nodes, h) })
	if _, err := wal.Check(context.Background(), fsys, dir, func(r wal.Record) error {
		b.Append(r.Time, uint8(r.Type), integrity.PayloadHash(r.Payload))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return nodes
}

// nodePos is the position in tree.nodes of leaf j: 2j − popcount(j).
func nodePos(j uint64) int64 {
	pop := 0
	for x := j; x != 0; x &= x - 1 {
		pop++
	}
	return int64(2*j) - int64(pop)
}

// writeNodes overwrites tree.nodes in dir with hashes, starting at hash
// position pos.
func writeNodes(t *testing.T, fsys vfs.FS, dir string, pos int64, hashes []integrity.Hash) {
	t.Helper()
	f, err := fsys.OpenReadWrite(filepath.Join(dir, integrity.NodesFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 0, 32*len(hashes))
	for _, h := range hashes {
		buf = append(buf, h[:]...)
	}
	if _, err := f.WriteAt(buf, pos*32); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// The crash behind the flaky TestCrashTailIsNotTampering (seed 35), built
// deterministically. A signed log has a durable checkpoint of 8 records, so
// tree.nodes is durable up to its 15 hashes (480 bytes). Records 9 to 13
// follow. The checkpointer then writes the nodes of leaves 8 to 12 (from
// byte 480 on) and the machine crashes before its fdatasync: the first
// sector of the file (bytes 0–511) keeps its durable contents, where the
// hash of leaf 8 (bytes 480–511) did not exist yet (zero), while the second
// sector, holding the rest, survives. Verify reported that unsynced tail as
// a damaged tree (tree-node-damaged at index 8); it must report crash
// recovery, and a reopen must leave a tree that matches the records.
func TestCrashTornTreeTailIsNotDamage(t *testing.T) {
	sk, vk, err := integrity.GenerateKey("audit.example/torn-tree")
	if err != nil {
		t.Fatal(err)
	}
	fsys := vfs.NewCrashFS()
	open := func(fsys vfs.FS) *audit.Sink {
		t.Helper()
		// No checkpoint but the final one of a Close.
		s, err := audit.New(audit.WithWAL("/log"), audit.WithFileSystem(fsys), audit.WithSigningKey(sk), audit.WithCheckpoints(1<<30, time.Hour, time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	write := func(s *audit.Sink, n int) {
		t.Helper()
		for range n {
			if _, err := s.Write(context.Background(), &audit.Event{Timestamp: time.Unix(1_700_000_000, 0), MessageTemplate: "e"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	s := open(fsys)
	write(s, 7)
	if err := s.Close(); err != nil { // seal (record 8) and a checkpoint of 8
		t.Fatal(err)
	}
	s = open(fsys)
	write(s, 5) // records 9..13, acknowledged, not covered by a checkpoint
	crashed := fsys.CrashClone(vfs.CrashOptions{Seed: 35, KeepSectorProb: 0, KeepDirOpProb: 0})
	s.Close()

	want := treeOf(t, crashed, "/log")
	if len(want) != int(nodePos(13)) {
		t.Fatalf("the records produce %d nodes, want %d", len(want), nodePos(13))
	}
	// The torn write: leaf 8 (position 15) zero, positions 16.. intact.
	torn := append([]integrity.Hash{{}}, want[16:]...)
	writeNodes(t, crashed, "/log", 15, torn)

	rep, err := audit.VerifyFS(context.Background(), crashed, "/log", audit.WithTrustedKeys(vk))
	if err != nil || !rep.OK {
		t.Fatalf("a crash that tore the unsynced tail of tree.nodes must verify as crash recovery: %v %+v", err, rep.Problem)
	}
	if rep.Covered != 8 || rep.UncoveredTail() != 5 {
		t.Fatalf("covered %d, uncovered %d; want 8 and 5", rep.Covered, rep.UncoveredTail())
	}

	// Damage to a node the writer had made durable is still found.
	damaged := crashed.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1})
	writeNodes(t, damaged, "/log", nodePos(3), []integrity.Hash{{1}})
	rep, err = audit.VerifyFS(context.Background(), damaged, "/log", audit.WithTrustedKeys(vk))
	if err == nil || rep.Problem == nil || rep.Problem.Code != integrity.CodeTreeNodeDamaged || rep.Problem.Index != 3 {
		t.Fatalf("a damaged durable node must be reported at its leaf: %v %+v", err, rep.Problem)
	}

	// Reopening rewrites the torn tail from the records.
	s = open(crashed)
	write(s, 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err = audit.VerifyFS(context.Background(), crashed, "/log", audit.WithTrustedKeys(vk))
	if err != nil || !rep.OK || rep.UncoveredTail() != 0 {
		t.Fatalf("after reopen and close: %v %+v", err, rep)
	}
	want = treeOf(t, crashed, "/log")
	if rep.NodesChecked != uint64(len(want)) {
		t.Fatalf("verify compared %d stored nodes, want all %d", rep.NodesChecked, len(want))
	}
}

// countFS counts the bytes read from each file.
type countFS struct {
	vfs.FS
	mu   sync.Mutex
	read map[string]int64
}

type countFile struct {
	vfs.File
	fs *countFS
}

func (f countFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.fs.mu.Lock()
	f.fs.read[filepath.Base(f.Name())] += int64(n)
	f.fs.mu.Unlock()
	return n, err
}

func (c *countFS) Open(name string) (vfs.File, error) {
	f, err := c.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return countFile{f, c}, nil
}

func (c *countFS) OpenReadWrite(name string) (vfs.File, error) {
	f, err := c.FS.OpenReadWrite(name)
	if err != nil {
		return nil, err
	}
	return countFile{f, c}, nil
}

// segmentBytesRead returns the bytes read from segment files, the last one
// apart.
func (c *countFS) segmentBytesRead(last string) (earlier, lastSeg int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, n := range c.read {
		switch {
		case name == last:
			lastSeg += n
		case strings.HasSuffix(name, ".wal"):
			earlier += n
		}
	}
	return earlier, lastSeg
}

// Opening a log resumes from the stored tree instead of reading every
// record again: beyond what wal.Open reads to recover the log, audit.New
// reads only the last segment (whose nodes may not be durable) and the seal
// before it (the record whose stored leaf it checks), whether the log is
// unsigned or signed.
func TestOpenResumesFromStoredTree(t *testing.T) {
	sk, vk, err := integrity.GenerateKey("audit.example/resume")
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
			opts := []audit.Option{audit.WithWAL(dir, audit.WithSegmentSize(32<<10))}
			if signed {
				opts = append(opts, audit.WithSigningKey(sk))
			}
			s, err := audit.New(opts...)
			if err != nil {
				t.Fatal(err)
			}
			msg := strings.Repeat("m", 400)
			for i := range 1500 {
				if _, err := s.Write(context.Background(), &audit.Event{Timestamp: time.Unix(1_700_000_000+int64(i), 0), MessageTemplate: "event {N}", Message: msg, Properties: map[string]any{"N": i}}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			segs, err := vfs.OS().List(dir)
			if err != nil {
				t.Fatal(err)
			}
			var walSegs []string
			var total int64
			for _, n := range segs {
				if strings.HasSuffix(n, ".wal") {
					walSegs = append(walSegs, n)
					fi, _ := vfs.OS().Stat(filepath.Join(dir, n))
					total += fi.Size()
				}
			}
			if len(walSegs) < 10 {
				t.Fatalf("want many segments, got %d", len(walSegs))
			}
			last := walSegs[len(walSegs)-1]

			// What wal.Open alone reads.
			walFS := &countFS{FS: vfs.OS(), read: map[string]int64{}}
			w, err := wal.Open(walFS, dir, wal.Options{})
			if err != nil {
				t.Fatal(err)
			}
			w.Close()
			walEarlier, _ := walFS.segmentBytesRead(last)

			for round := range 2 { // the second open resumes from what the first stored
				c := &countFS{FS: vfs.OS(), read: map[string]int64{}}
				s, err := audit.New(append(opts, audit.WithFileSystem(c))...)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				earlier, _ := c.segmentBytesRead(last)
				// Beyond wal.Open: for each of two reads from a record
				// on (the checked leaf's record, the seal of the
				// segment before the last, then the tail), the header
				// and seal of every segment skipped. Reading every
				// record again would double what wal.Open reads.
				if limit := walEarlier + int64(len(walSegs))*3<<10; earlier > limit {
					t.Fatalf("round %d: open read %d bytes of the segments before the last (wal.Open alone: %d of %d): it re-read the log to rebuild the tree (limit %d)",
						round, earlier, walEarlier, total, limit)
				}
			}
			var vopts []audit.VerifyOption
			if signed {
				vopts = append(vopts, audit.WithTrustedKeys(vk))
			}
			rep, err := audit.Verify(context.Background(), dir, vopts...)
			if err != nil || !rep.OK || rep.NodesChecked == 0 {
				t.Fatalf("after resumed opens: %v %+v", err, rep)
			}
		})
	}
}

// Open checks the stored tree's right edge against the records: a stored
// leaf that does not match the record it stands for makes it rebuild the
// tree from the records, and a signed log never signs a root taken from a
// stored tree that the records do not reproduce.
func TestOpenRebuildsAStoredTreeThatDoesNotMatch(t *testing.T) {
	sk, vk, err := integrity.GenerateKey("audit.example/forged-cache")
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
			opts := []audit.Option{audit.WithWAL(dir, audit.WithSegmentSize(8<<10))}
			var vopts []audit.VerifyOption
			if signed {
				opts = append(opts, audit.WithSigningKey(sk))
				vopts = append(vopts, audit.WithTrustedKeys(vk))
			}
			writeN := func(n int) {
				s, err := audit.New(opts...)
				if err != nil {
					t.Fatal(err)
				}
				for i := range n {
					if _, err := s.Write(context.Background(), &audit.Event{Timestamp: time.Unix(1_700_000_000+int64(i), 0), MessageTemplate: "event"}); err != nil {
						t.Fatal(err)
					}
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			writeN(300)
			// Rewrite every stored leaf (and so every node above) as if
			// each record had another payload: a consistent forged tree.
			b := integrity.NewBuilder()
			var forged []integrity.Hash
			b.OnNode(func(_ uint, _ uint64, h integrity.Hash) { forged = append(forged, h) })
			wal.Check(context.Background(), vfs.OS(), dir, func(r wal.Record) error {
				b.Append(r.Time, uint8(r.Type), integrity.PayloadHash(append([]byte("forged"), r.Payload...)))
				return nil
			})
			writeNodes(t, vfs.OS(), dir, 0, forged)
			writeN(1)
			rep, err := audit.Verify(context.Background(), dir, vopts...)
			if err != nil || !rep.OK || rep.NodesChecked == 0 || (signed && rep.UncoveredTail() != 0) {
				t.Fatalf("the forged stored tree must be rebuilt, not trusted or signed: %v %+v", err, rep.Problem)
			}
		})
	}
}
