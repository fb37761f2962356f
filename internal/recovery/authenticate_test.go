package recovery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/recovery"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// signedLog writes n events to a new log in dir signed with skey.
func signedLog(t *testing.T, dir, skey string, n int) {
	t.Helper()
	s, err := audit.New(audit.WithWAL(dir, audit.WithSegmentSize(8192)), audit.WithSigningKey(skey))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ev := &audit.Event{Timestamp: time.Unix(1_800_000_000+int64(i), 0).UTC(), MessageTemplate: "event {N}", Properties: map[string]any{"N": i}}
		if _, err := s.Write(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// forge appends n events to the log in dir as anyone without the key can:
// through package wal, with valid checksums and no authentication tag.
func forge(t *testing.T, dir string, n int) {
	t.Helper()
	w, err := wal.Open(vfs.OS(), dir, wal.Options{SegmentSize: 8192})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ev := &audit.Event{Timestamp: time.Unix(1_900_000_000+int64(i), 0).UTC(), MessageTemplate: "granted admin to {User}", Properties: map[string]any{"User": "mallory"}}
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

// TestRecoverRefusesForgedRecords: a signed log with records appended by
// someone without the key (New refuses it with ErrUnauthenticated) is
// salvaged with its signing key: the genuine events are copied, the forged
// ones are refused and reported, and the recovery counts as lossy (exit
// 1). It copied the forged events into the new, freshly signed log before:
// their checksums are valid.
func TestRecoverRefusesForgedRecords(t *testing.T) {
	root := t.TempDir()
	in := filepath.Join(root, "log")
	skey, _, err := integrity.GenerateKey("test.example/recovery")
	if err != nil {
		t.Fatal(err)
	}
	signedLog(t, in, skey, 30)
	forge(t, in, 3)
	if _, err := audit.New(audit.WithWAL(in), audit.WithSigningKey(skey)); err == nil {
		t.Fatal("New opened a log with a forged tail")
	}
	out := filepath.Join(root, "salvaged")
	rep, err := recovery.Recover(context.Background(), in, out, recovery.Options{SigningKey: skey})
	if err != nil {
		t.Fatal(err)
	}
	a := rep.Authentication
	if a == nil || !a.Checked || a.Refused == 0 {
		t.Fatalf("the forged records were not refused: %+v", a)
	}
	for _, ev := range replay(t, out) {
		if ev.Properties["User"] == "mallory" {
			t.Fatalf("a forged event was copied into the new log: %+v", ev)
		}
	}
	if rep.EventsWritten != 30 || !rep.Lost() {
		t.Fatalf("events written %d (want the 30 genuine ones), lost %v (want true)", rep.EventsWritten, rep.Lost())
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "REFUSED") || !strings.Contains(text.String(), "no authentication tag") {
		t.Fatalf("the report does not say what was refused and why:\n%s", text.String())
	}
	// The JSON form round-trips the refusal.
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back recovery.Report
	if err := json.Unmarshal(b, &back); err != nil || back.Authentication == nil || back.Authentication.Refused != a.Refused || !back.Lost() {
		t.Fatalf("JSON round trip: %v %+v", err, back.Authentication)
	}
}

// TestRecoverSignedAuthenticated: an intact signed log recovered with its
// key is checked batch by batch and copied whole; without the key, or with
// another key, it is copied whole and the report says it was not checked.
func TestRecoverSignedAuthenticated(t *testing.T) {
	root := t.TempDir()
	in := filepath.Join(root, "log")
	skey, _, err := integrity.GenerateKey("test.example/recovery")
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := integrity.GenerateKey("test.example/other")
	if err != nil {
		t.Fatal(err)
	}
	signedLog(t, in, skey, 40)
	rep, err := recovery.Recover(context.Background(), in, filepath.Join(root, "a"), recovery.Options{SigningKey: skey})
	if err != nil {
		t.Fatal(err)
	}
	if a := rep.Authentication; a == nil || !a.Checked || a.Refused != 0 || rep.EventsWritten != 40 || rep.Lost() {
		t.Fatalf("intact signed log: %+v, %d events, lost %v", rep.Authentication, rep.EventsWritten, rep.Lost())
	}
	for name, key := range map[string]string{"b": "", "c": other} {
		rep, err := recovery.Recover(context.Background(), in, filepath.Join(root, name), recovery.Options{SigningKey: key})
		if err != nil {
			t.Fatal(err)
		}
		if a := rep.Authentication; a == nil || a.Checked || a.Note == "" || rep.EventsWritten != 40 {
			t.Fatalf("key %q: %+v, %d events", key, rep.Authentication, rep.EventsWritten)
		}
	}
	// An unsigned input has nothing to check.
	plain := filepath.Join(root, "plain")
	buildLog(t, plain, 10)
	rep, err = recovery.Recover(context.Background(), plain, filepath.Join(root, "d"), recovery.Options{SigningKey: skey})
	if err != nil || rep.Authentication != nil {
		t.Fatalf("unsigned input: %v %+v", err, rep.Authentication)
	}
}

// TestRecoverAggressiveAfterGap: past a gap the chain cannot be
// recomputed, so aggressive mode copies what follows unchecked and says so
// (it did not lose it); a batch there with no tag at all, which a signed
// writer never writes, is still refused.
func TestRecoverAggressiveAfterGap(t *testing.T) {
	root := t.TempDir()
	in := filepath.Join(root, "log")
	skey, _, err := integrity.GenerateKey("test.example/recovery")
	if err != nil {
		t.Fatal(err)
	}
	signedLog(t, in, skey, 60)
	segs, _ := filepath.Glob(filepath.Join(in, "*.wal"))
	if len(segs) < 3 {
		t.Fatalf("%d segments", len(segs))
	}
	b, err := os.ReadFile(segs[1])
	if err != nil {
		t.Fatal(err)
	}
	b[600] ^= 0xff // inside the segment's first batch
	if err := os.WriteFile(segs[1], b, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := recovery.Recover(context.Background(), in, filepath.Join(root, "a"), recovery.Options{Mode: wal.SalvageAggressive, SigningKey: skey})
	if err != nil {
		t.Fatal(err)
	}
	a := rep.Authentication
	if a == nil || a.Refused != 0 || a.Unchecked == 0 || !strings.Contains(a.Note, "gap") || rep.EventsWritten < 50 {
		t.Fatalf("after a gap: %+v, %d events written", a, rep.EventsWritten)
	}
	forge(t, in, 2)
	rep, err = recovery.Recover(context.Background(), in, filepath.Join(root, "b"), recovery.Options{Mode: wal.SalvageAggressive, SigningKey: skey})
	if err != nil {
		t.Fatal(err)
	}
	if a := rep.Authentication; a == nil || a.Refused < 2 { // the two events, and the forger's seal
		t.Fatalf("forged batches after a gap: %+v", a)
	}
}
