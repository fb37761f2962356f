package cli_test

import (
	"bytes"
	"context"
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

// forgedSeq is the record the tests below forge in a mirror (an event in
// the fixture's second segment).
const forgedSeq = 20

type walRec struct {
	typ     wal.RecordType
	time    int64
	payload []byte
	seg     uint64
	off     int64
}

func walRecords(t *testing.T, dir string) []walRec {
	t.Helper()
	var out []walRec
	if _, err := wal.Check(context.Background(), vfs.OS(), dir, func(r wal.Record) error {
		out = append(out, walRec{r.Type, r.Time, bytes.Clone(r.Payload), r.Segment, r.Offset})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// forgeMirror writes, without any key, a log holding src's records with
// record forgedSeq's event changed (same length, fresh checksums, segment
// chain and seals, a tree rebuilt from the forged records) and src's
// checkpoints file: a mirror that a forger rewrote.
func forgeMirror(t *testing.T, src string) string {
	t.Helper()
	recs := walRecords(t, src)
	ev, err := event.Decode(recs[forgedSeq-1].payload)
	if err != nil {
		t.Fatal(err)
	}
	ev.MessageTemplate = strings.Replace(ev.MessageTemplate, "User", "Root", 1)
	p, err := event.AppendEncode(nil, ev)
	if err != nil || len(p) != len(recs[forgedSeq-1].payload) {
		t.Fatalf("forged event: %v (%d bytes, want %d)", err, len(p), len(recs[forgedSeq-1].payload))
	}
	recs[forgedSeq-1].payload = p
	dst := filepath.Join(t.TempDir(), "mirror")
	w, err := wal.Open(vfs.OS(), dst, wal.Options{SegmentSize: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.typ == wal.RecordSeal {
			continue // the forger's log writes its own
		}
		if _, err := w.Append(context.Background(), r.typ, r.time, r.payload); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	s, err := audit.New(audit.WithWAL(dst)) // rebuilds tree.nodes from the forged records
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	os.Remove(filepath.Join(dst, wal.LockName))
	cp, _ := os.ReadFile(filepath.Join(src, integrity.CheckpointsFile))
	os.WriteFile(filepath.Join(dst, integrity.CheckpointsFile), cp, 0o644)
	if got := walRecords(t, dst); len(got) != len(walRecords(t, src)) || got[forgedSeq-1].off != walRecords(t, src)[forgedSeq-1].off {
		t.Fatal("the forged mirror's layout differs from the original's")
	}
	return dst
}

// damageRecord flips a byte inside record forgedSeq's payload in dir, so
// that the primary's own copy of it cannot be read.
func damageRecord(t *testing.T, dir string) {
	t.Helper()
	r := walRecords(t, dir)[forgedSeq-1]
	path := filepath.Join(dir, filepath.Base(segments(t, dir)[r.seg-1]))
	data, _ := os.ReadFile(path)
	data[r.off+48+28+8] ^= 0x04 // batch header, record header, then the payload
	os.WriteFile(path, data, 0o644)
	if _, err := wal.Check(context.Background(), vfs.OS(), dir, nil); err == nil {
		t.Fatal("the damage was not detected")
	}
}

// recover --mirror without --key compares the records with the roots of the
// stored checkpoints: it does not adopt a mirror's record that does not
// reproduce them, says when it could not verify, and says when there was
// nothing to check against (issue 13, hole 5).
func TestRecoverMirrorWithoutKey(t *testing.T) {
	original := walRecords(t, filepath.Join(fixtureDir, "wal"))[forgedSeq-1].payload

	t.Run("forged mirror record", func(t *testing.T) {
		// The primary's record is damaged; the mirror holds a different
		// one with valid checksums. Only the stored roots can tell.
		in := copyFixture(t)
		mirror := forgeMirror(t, in)
		damageRecord(t, in)
		out := filepath.Join(t.TempDir(), "repaired")
		r := run(t, "", "recover", "--input", in, "--mirror", mirror, "--output", out)
		if _, err := os.Stat(out); err == nil {
			if got := walRecords(t, out)[forgedSeq-1].payload; !bytes.Equal(got, original) {
				t.Fatalf("the forged mirror record was adopted (exit %d)\n%s%s", r.code, r.stdout, r.stderr)
			}
		}
		if r.code != 1 || !strings.Contains(r.stderr, "could not verify") || !strings.Contains(r.stderr, "--key") {
			t.Fatalf("exit %d, want 1 saying it could not verify\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("stored roots match neither copy", func(t *testing.T) {
		// The mirror is the genuine log, but both checkpoints files were
		// replaced by an unsigned one whose roots match no copy: without
		// a key nothing can be verified, and recover says so.
		in, mirror := copyFixture(t), copyFixture(t)
		damageRecord(t, in)
		// Checkpoints of another log (the forged records, signed by
		// another key of the same name).
		sk, _, err := integrity.GenerateKey(keyName)
		if err != nil {
			t.Fatal(err)
		}
		other := filepath.Join(t.TempDir(), "other")
		s, err := audit.New(audit.WithWAL(other), audit.WithSigningKey(sk))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range walRecords(t, forgeMirror(t, copyFixture(t))) {
			if r.typ == wal.RecordEvent {
				ev, err := event.Decode(r.payload)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.Write(context.Background(), ev); err != nil {
					t.Fatal(err)
				}
			}
		}
		s.Close()
		cps, err := os.ReadFile(filepath.Join(other, integrity.CheckpointsFile))
		if err != nil || len(cps) == 0 {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(in, integrity.CheckpointsFile), cps, 0o644)
		os.WriteFile(filepath.Join(mirror, integrity.CheckpointsFile), cps, 0o644)
		out := filepath.Join(t.TempDir(), "repaired")
		r := run(t, "", "recover", "--input", in, "--mirror", mirror, "--output", out)
		if r.code != 1 || !strings.Contains(r.stderr, "could not verify") {
			t.Fatalf("exit %d, want 1 saying it could not verify\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("genuine mirror", func(t *testing.T) {
		// The same damage with a genuine mirror is repaired, and the
		// report says what was checked without a key.
		in, mirror := copyFixture(t), copyFixture(t)
		damageRecord(t, in)
		out := filepath.Join(t.TempDir(), "repaired")
		r := run(t, "", "recover", "--input", in, "--mirror", mirror, "--output", out)
		if r.code != 0 || !strings.Contains(r.stdout, "no key: signatures not checked, but the records reproduce the roots of") {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if got := walRecords(t, out)[forgedSeq-1].payload; !bytes.Equal(got, original) {
			t.Fatal("the repaired record differs from the original")
		}
	})
	t.Run("no stored checkpoints", func(t *testing.T) {
		// Nothing to compare with: the repair goes ahead and says that
		// its records were not verified.
		in, mirror := copyFixture(t), copyFixture(t)
		damageRecord(t, in)
		os.Remove(filepath.Join(in, integrity.CheckpointsFile))
		os.Remove(filepath.Join(mirror, integrity.CheckpointsFile))
		out := filepath.Join(t.TempDir(), "repaired")
		r := run(t, "", "recover", "--input", in, "--mirror", mirror, "--output", out)
		if r.code != 0 || !strings.Contains(r.stdout, "NOT VERIFIED against the log's checkpoints (no key): no copy stores a checkpoint") {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
}

// recover --mirror keeps the key files of a forward-secure log owner-only
// in its output (they are copied from the input with the input's mode), so
// that the repaired log opens: a key file the group may read is refused
// (integrity.ErrKeyFileMode).
func TestRecoverMirrorKeepsKeyFilesPrivate(t *testing.T) {
	sk, vk, err := integrity.GenerateKey(keyName)
	if err != nil {
		t.Fatal(err)
	}
	in, mirror := filepath.Join(t.TempDir(), "in"), filepath.Join(t.TempDir(), "mirror")
	s, err := audit.New(audit.WithWAL(in, audit.WithSegmentSize(8<<10)), audit.WithRedundancy(mirror), audit.WithSigningKey(sk),
		audit.WithForwardSecurity(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if _, err := s.Write(context.Background(), &audit.Event{Timestamp: time.Now(), MessageTemplate: "event " + strings.Repeat("x", 200)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segments(t, in)
	if err := os.Remove(segs[len(segs)-1]); err != nil { // the input lost its last segment
		t.Fatal(err)
	}
	pub := filepath.Join(t.TempDir(), "log.pub")
	if err := os.WriteFile(pub, []byte(vk+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "repaired")
	if r := run(t, "", "recover", "--input", in, "--mirror", mirror, "--output", out, "--key", pub); r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	fi, err := os.Stat(filepath.Join(out, integrity.EpochKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("recover wrote %s with mode %04o; a key file must be owner-only", integrity.EpochKeyFile, perm)
	}
	s, err = audit.New(audit.WithWAL(out), audit.WithSigningKey(sk), audit.WithForwardSecurity(time.Hour))
	if err != nil {
		t.Fatalf("the repaired log does not open: %v", err)
	}
	s.Close()
}
