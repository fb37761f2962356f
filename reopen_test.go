package audit_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// TestRestartsDoNotAddSegments: 200 restarts (New, Write, Close) of a sink
// leave one segment file, not 202: a clean Close's seal no longer ends the
// segment, and the next New continues it. Every event is then there for
// Replay, audit.Verify and a sink opened on the log, unsigned and signed
// (the tags of the batches after each interior seal authenticate on open).
func TestRestartsDoNotAddSegments(t *testing.T) {
	sk, vk, err := integrity.GenerateKey("audit.example/restarts")
	if err != nil {
		t.Fatal(err)
	}
	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprintf("signed=%v", signed), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "log")
			opts := []audit.Option{audit.WithWAL(dir)}
			var vopts []audit.VerifyOption
			if signed {
				opts = append(opts, audit.WithSigningKey(sk))
				vopts = append(vopts, audit.WithTrustedKeys(vk))
			}
			const restarts = 200
			base := time.Unix(1_800_000_000, 0).UTC()
			for i := range restarts {
				s, err := audit.New(opts...)
				if err != nil {
					t.Fatalf("restart %d: %v", i, err)
				}
				ev := &audit.Event{Timestamp: base.Add(time.Duration(i) * time.Second), MessageTemplate: "restart {N}", Properties: map[string]any{"N": i}}
				if _, err := s.Write(context.Background(), ev); err != nil {
					t.Fatal(err)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			segs, err := filepath.Glob(filepath.Join(dir, "*.wal"))
			if err != nil {
				t.Fatal(err)
			}
			if len(segs) != 1 {
				t.Fatalf("%d restarts left %d segment files, want 1 (the data fits in one)", restarts, len(segs))
			}
			rep, err := audit.Verify(context.Background(), dir, vopts...)
			if err != nil || !rep.OK || rep.Events != restarts || rep.TornTail != nil {
				t.Fatalf("Verify: %v, %+v", err, rep)
			}
			if signed && rep.UncoveredTail() != 0 {
				t.Fatalf("Verify: %d records after the last checkpoint of a cleanly closed signed log", rep.UncoveredTail())
			}
			n := 0
			for ev, err := range audit.Replay(context.Background(), dir, time.Time{}, time.Time{}) {
				if err != nil {
					t.Fatal(err)
				}
				if want := base.Add(time.Duration(n) * time.Second); !ev.Timestamp.Equal(want) {
					t.Fatalf("event %d at %v, want %v", n, ev.Timestamp, want)
				}
				n++
			}
			if n != restarts {
				t.Fatalf("Replay: %d events, want %d", n, restarts)
			}
			// A window inside the continued segment.
			n = 0
			for _, err := range audit.Replay(context.Background(), dir, base.Add(50*time.Second), base.Add(60*time.Second)) {
				if err != nil {
					t.Fatal(err)
				}
				n++
			}
			if n != 10 {
				t.Fatalf("Replay of a 10 s window: %d events, want 10", n)
			}
			// The sink opens it again (a signed one authenticates what no
			// checkpoint covers) and reads every event back.
			s, err := audit.New(opts...)
			if err != nil {
				t.Fatal(err)
			}
			n = 0
			for _, err := range s.Replay(context.Background(), time.Time{}, time.Time{}) {
				if err != nil {
					t.Fatal(err)
				}
				n++
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if n != restarts {
				t.Fatalf("Sink.Replay: %d events, want %d", n, restarts)
			}
			if !signed {
				return
			}
			// A record appended after the seal without the key, in the
			// continued segment, is refused on open.
			w, err := wal.Open(vfs.OS(), dir, wal.Options{})
			if err != nil {
				t.Fatal(err)
			}
			forged, err := event.AppendEncode(nil, &audit.Event{Timestamp: base, MessageTemplate: "forged"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Append(context.Background(), wal.RecordEvent, base.UnixNano(), forged); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if segs, _ := filepath.Glob(filepath.Join(dir, "*.wal")); len(segs) != 1 {
				t.Fatalf("the forged record went to a new segment (%d files), not after the seal", len(segs))
			}
			if s, err := audit.New(opts...); !errors.Is(err, audit.ErrIntegrity) {
				if err == nil {
					s.Close()
				}
				t.Fatalf("open with a forged record after the seal: %v, want ErrIntegrity", err)
			}
		})
	}
}
