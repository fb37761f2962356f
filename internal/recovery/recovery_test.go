package recovery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/recovery"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// original is a record of the log before it was damaged.
type original struct {
	seq                uint64
	typ                wal.RecordType
	payload            []byte
	segment            uint64
	batchOff, batchEnd int64
}

// buildLog writes n events with several writers into a multi-segment log and
// returns its records in order (with where their batches lie) and the
// events by sequence number.
func buildLog(t *testing.T, dir string, n int) ([]original, map[uint64]*audit.Event) {
	t.Helper()
	sink, err := audit.New(audit.WithWAL(dir, audit.WithSegmentSize(16<<10)), audit.WithGroupCommit(0, 100*time.Microsecond))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	events := map[uint64]*audit.Event{}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < n; i += 4 {
				ev := &audit.Event{
					Timestamp:       time.Unix(1_700_000_000+int64(i), int64(i)*1000).UTC(),
					Level:           audit.LevelInformation,
					MessageTemplate: "User {UserId} did {Action} #{N}",
					Message:         fmt.Sprintf("User u-%d did export #%d", i%7, i),
					Properties:      map[string]any{"UserId": fmt.Sprintf("u-%d", i%7), "Action": "export", "N": int64(i), "Blob": strings.Repeat("x", i%200)},
				}
				rc, err := sink.Write(context.Background(), ev)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				events[rc.Seq] = ev
				mu.Unlock()
			}
		}(g)
	}
	wg.Wait()
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	return layout(t, dir), events
}

func layout(t *testing.T, dir string) []original {
	t.Helper()
	var recs []original
	if _, err := wal.Check(context.Background(), vfs.OS(), dir, func(r wal.Record) error {
		recs = append(recs, original{seq: r.Seq, typ: r.Type, payload: bytes.Clone(r.Payload), segment: r.Segment, batchOff: r.Offset})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		fi, err := os.Stat(segPath(dir, recs[i].segment))
		if err != nil {
			t.Fatal(err)
		}
		recs[i].batchEnd = fi.Size()
		for j := i + 1; j < len(recs) && recs[j].segment == recs[i].segment; j++ {
			if recs[j].batchOff != recs[i].batchOff {
				recs[i].batchEnd = recs[j].batchOff
				break
			}
		}
	}
	return recs
}

func segPath(dir string, n uint64) string { return filepath.Join(dir, wal.SegmentName(n)) }

// snapshot returns every file of dir with its bytes, mode and modification
// time.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = fmt.Sprintf("%s %v %x", fi.ModTime().Format(time.RFC3339Nano), fi.Mode(), data)
	}
	return out
}

func replay(t *testing.T, dir string) []*audit.Event {
	t.Helper()
	var out []*audit.Event
	for ev, err := range audit.Replay(context.Background(), dir, time.Time{}, time.Time{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func encode(t *testing.T, ev *audit.Event) string {
	t.Helper()
	b, err := event.AppendEncode(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// damage flips bytes in the middle of one segment and deletes another; it
// returns the damaged ranges: segment → [from, to).
func damage(t *testing.T, dir string, recs []original) map[uint64][2]int64 {
	t.Helper()
	segs := map[uint64]bool{}
	for _, r := range recs {
		segs[r.segment] = true
	}
	if len(segs) < 6 {
		t.Fatalf("want many segments, got %d", len(segs))
	}
	flip, del := uint64(2), uint64(len(segs)-1)
	name := segPath(dir, flip)
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	at := int64(len(data) / 2)
	for i := int64(0); i < 40; i += 13 {
		data[at+i] ^= 0x6b
	}
	if err := os.WriteFile(name, data, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(segPath(dir, del)); err != nil {
		t.Fatal(err)
	}
	return map[uint64][2]int64{flip: {at, at + 40}, del: {0, 1 << 62}}
}

func touched(r original, dmg map[uint64][2]int64) bool {
	d, ok := dmg[r.segment]
	return ok && r.batchOff < d[1] && r.batchEnd > d[0]
}

// TestRecoverDamagedLog recovers a damaged multi-segment log in both modes
// and compares the new log, read back with audit.Replay, with the events as
// written: aggressive mode must carry every event whose batch the damage did
// not touch, safe mode exactly those before the damage, in order, with their
// timestamps, and nothing else. The input must not change in any way.
func TestRecoverDamagedLog(t *testing.T) {
	root := t.TempDir()
	in := filepath.Join(root, "damaged")
	recs, events := buildLog(t, in, 900)
	dmg := damage(t, in, recs)
	before := snapshot(t, in)
	bySeq := map[string]uint64{} // encoded event → old sequence number
	for seq, ev := range events {
		bySeq[encode(t, ev)] = seq
	}
	for _, mode := range []wal.SalvageMode{wal.SalvageAggressive, wal.SalvageSafe} {
		t.Run(mode.String(), func(t *testing.T) {
			out := filepath.Join(root, "recovered-"+mode.String())
			var progress []int64
			rep, err := recovery.Recover(context.Background(), in, out, recovery.Options{Mode: mode, Progress: func(n int64) { progress = append(progress, n) }})
			if err != nil {
				t.Fatalf("recover: %v", err)
			}
			if !reflect.DeepEqual(before, snapshot(t, in)) {
				t.Fatal("the input directory changed")
			}
			if rep.Verify == nil || !rep.Verify.OK || rep.Verify.Events != rep.EventsWritten || !rep.Lost() {
				t.Fatalf("report: %+v verify %+v", rep, rep.Verify)
			}
			if len(progress) == 0 || progress[len(progress)-1] != rep.Salvage.BytesScanned {
				t.Fatalf("progress %v, scanned %d", progress, rep.Salvage.BytesScanned)
			}
			got := replay(t, out)
			if uint64(len(got)) != rep.EventsWritten {
				t.Fatalf("replayed %d events, report says %d written", len(got), rep.EventsWritten)
			}
			seen := map[uint64]bool{}
			var prev uint64
			for i, ev := range got {
				seq, ok := bySeq[encode(t, ev)]
				if !ok {
					t.Fatalf("event %d of the new log was never written: %+v", i+1, ev)
				}
				if seq <= prev {
					t.Fatalf("event %d of the new log is old event %d, after %d", i+1, seq, prev)
				}
				if !ev.Timestamp.Equal(events[seq].Timestamp) {
					t.Fatalf("old event %d: timestamp %v, want %v", seq, ev.Timestamp, events[seq].Timestamp)
				}
				prev = seq
				seen[seq] = true
			}
			var untouched, carried, firstDamaged int
			for _, r := range recs {
				if r.typ != wal.RecordEvent {
					continue
				}
				if touched(r, dmg) && firstDamaged == 0 {
					firstDamaged = int(r.seq)
				}
				if mode == wal.SalvageSafe {
					if want := firstDamaged == 0; seen[r.seq] != want {
						t.Fatalf("safe mode: old event %d carried=%v, first damaged record %d", r.seq, seen[r.seq], firstDamaged)
					}
					continue
				}
				if !touched(r, dmg) {
					untouched++
					if seen[r.seq] {
						carried++
					}
				}
			}
			if mode == wal.SalvageAggressive {
				t.Logf("aggressive: %d of %d untouched events carried into the new log (%.1f%%); %d events written, %d gaps",
					carried, untouched, 100*float64(carried)/float64(untouched), len(got), len(rep.Salvage.Gaps))
				if carried != untouched {
					t.Fatal("untouched events were not carried over")
				}
			} else {
				t.Logf("safe: %d events, the prefix before the first damaged record (old sequence %d)", len(got), firstDamaged)
			}
			if rep.SkippedNonEvents == 0 {
				t.Fatal("no seal was counted as skipped")
			}

			// The JSON report round-trips and uses snake_case names.
			var buf bytes.Buffer
			if err := rep.WriteJSON(&buf); err != nil {
				t.Fatal(err)
			}
			for _, key := range []string{`"events_written"`, `"skipped_non_events"`, `"first_seq"`, `"last_seq"`, `"bytes_scanned"`, `"gaps"`, `"undecodable": []`, `"verify"`, `"ok": true`} {
				if !strings.Contains(buf.String(), key) {
					t.Fatalf("JSON report lacks %s:\n%s", key, buf.String())
				}
			}
			var back recovery.Report
			if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*rep, back) {
				t.Fatalf("JSON round trip:\n%+v\n%+v", *rep, back)
			}
			var again bytes.Buffer
			back.WriteJSON(&again)
			if again.String() != buf.String() {
				t.Fatal("JSON report is not stable through a round trip")
			}

			buf.Reset()
			if err := rep.WriteText(&buf); err != nil {
				t.Fatal(err)
			}
			text := strings.Join(strings.Fields(buf.String()), " ")
			for _, want := range []string{out, "MISSING", fmt.Sprintf("events written %d", rep.EventsWritten)} {
				if !strings.Contains(text, want) {
					t.Fatalf("text report lacks %q:\n%s", want, text)
				}
			}
			for _, g := range rep.Salvage.Gaps {
				if !strings.Contains(text, strings.Join(strings.Fields(g.Reason), " ")) {
					t.Fatalf("text report lacks gap %+v:\n%s", g, text)
				}
			}
			t.Logf("text report:\n%s", buf.String())
		})
	}
}

// TestRecoverRefusals: an output that is not empty, a file, or the input
// itself is refused before anything is written, with errors checkable by
// errors.Is, and so is an input that is not a log.
func TestRecoverRefusals(t *testing.T) {
	root := t.TempDir()
	in := filepath.Join(root, "log")
	buildLog(t, in, 20)
	before := snapshot(t, in)

	full := filepath.Join(root, "full")
	os.MkdirAll(full, 0o750)
	os.WriteFile(filepath.Join(full, "keep.txt"), []byte("mine"), 0o640)
	rep, err := recovery.Recover(context.Background(), in, full, recovery.Options{})
	if !errors.Is(err, recovery.ErrOutputNotEmpty) || rep != nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("non-empty output: %v, %v", rep, err)
	}
	if data, _ := os.ReadFile(filepath.Join(full, "keep.txt")); string(data) != "mine" {
		t.Fatal("the non-empty output was touched")
	}
	file := filepath.Join(root, "file")
	os.WriteFile(file, []byte("x"), 0o640)
	if _, err := recovery.Recover(context.Background(), in, file, recovery.Options{}); !errors.Is(err, recovery.ErrOutputNotEmpty) {
		t.Fatalf("file output: %v", err)
	}
	for _, out := range []string{in, filepath.Join(in, "sub")} {
		if _, err := recovery.Recover(context.Background(), in, out, recovery.Options{}); !errors.Is(err, recovery.ErrOutputInInput) {
			t.Fatalf("output %s: %v", out, err)
		}
	}
	if _, err := recovery.Recover(context.Background(), full, filepath.Join(root, "o1"), recovery.Options{}); !errors.Is(err, wal.ErrNotWAL) {
		t.Fatalf("input that is not a log: %v", err)
	}
	if _, err := recovery.Recover(context.Background(), in, filepath.Join(root, "o2"), recovery.Options{Mode: 9}); err == nil {
		t.Fatal("unknown mode accepted")
	}
	if _, err := recovery.Recover(context.Background(), in, filepath.Join(root, "o3"), recovery.Options{SigningKey: "nonsense"}); err == nil {
		t.Fatal("bad signing key accepted")
	}
	if !reflect.DeepEqual(before, snapshot(t, in)) {
		t.Fatal("the input directory changed")
	}
	entries, _ := os.ReadDir(root)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if !reflect.DeepEqual(names, []string{"file", "full", "log"}) {
		t.Fatalf("refused recoveries left files behind: %v", names)
	}
}

// TestRecoverNonEventsAndUndecodable: records that are not events are
// skipped and counted; an event record whose payload passes its checksum but
// does not decode is skipped and listed, not dropped silently.
func TestRecoverNonEventsAndUndecodable(t *testing.T) {
	root := t.TempDir()
	in := filepath.Join(root, "log")
	w, err := wal.Open(vfs.OS(), in, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var good []*audit.Event
	var bad []uint64
	for i := 0; i < 10; i++ {
		switch i {
		case 3:
			if _, err := w.Append(ctx, wal.RecordMeta, 0, []byte("key rotation")); err != nil {
				t.Fatal(err)
			}
		case 6:
			seq, err := w.Append(ctx, wal.RecordEvent, 0, []byte{0xff, 1, 2, 3}) // not an event encoding
			if err != nil {
				t.Fatal(err)
			}
			bad = append(bad, seq)
		default:
			ev := &audit.Event{Timestamp: time.Unix(1_600_000_000+int64(i), 0).UTC(), Level: audit.LevelWarning, MessageTemplate: "m", Message: fmt.Sprint(i)}
			b, _ := event.AppendEncode(nil, ev)
			if _, err := w.Append(ctx, wal.RecordEvent, ev.Timestamp.UnixNano(), b); err != nil {
				t.Fatal(err)
			}
			good = append(good, ev)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "out")
	os.MkdirAll(out, 0o750) // an empty directory is fine
	rep, err := recovery.Recover(ctx, in, out, recovery.Options{Mode: wal.SalvageAggressive})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep.Undecodable, bad) || rep.SkippedNonEvents != 2 || rep.EventsWritten != uint64(len(good)) || !rep.Lost() || len(rep.Salvage.Gaps) != 0 {
		t.Fatalf("report: %+v", rep)
	}
	got := replay(t, out)
	if len(got) != len(good) {
		t.Fatalf("%d events, want %d", len(got), len(good))
	}
	for i := range got {
		if encode(t, got[i]) != encode(t, good[i]) {
			t.Fatalf("event %d: %+v, want %+v", i, got[i], good[i])
		}
	}
	var buf bytes.Buffer
	rep.WriteText(&buf)
	text := strings.Join(strings.Fields(buf.String()), " ")
	if !strings.Contains(text, fmt.Sprintf("undecodable events 1, skipped: old sequence numbers %d", bad[0])) || !strings.Contains(text, "No gaps") {
		t.Fatalf("text report:\n%s", buf.String())
	}
}

// TestRecoverSignedAndCancelled: with a signing key the new log's
// checkpoints are signed and verified; a cancelled recovery leaves no output
// and nothing behind.
func TestRecoverSignedAndCancelled(t *testing.T) {
	root := t.TempDir()
	in := filepath.Join(root, "log")
	buildLog(t, in, 50)
	skey, _, err := integrity.GenerateKey("test.example/recovery")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "signed")
	rep, err := recovery.Recover(context.Background(), in, out, recovery.Options{SigningKey: skey})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Verify.OK || rep.Verify.Checkpoints == 0 || rep.Verify.Covered != rep.Verify.Records || rep.Lost() || rep.EventsWritten != 50 {
		t.Fatalf("signed recovery: %+v %+v", rep, rep.Verify)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cout := filepath.Join(root, "cancelled")
	if _, err := recovery.Recover(ctx, in, cout, recovery.Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if e.Name() != "log" && e.Name() != "signed" {
			t.Fatalf("a cancelled recovery left %s behind", e.Name())
		}
	}
}

// TestRecoverKeepsLifecycleEvents: the Sink's own events (start, config,
// stop, a shred tombstone) are copied into the recovered log with their
// reserved property, although Write refuses that property from users.
func TestRecoverKeepsLifecycleEvents(t *testing.T) {
	root := t.TempDir()
	in, out := filepath.Join(root, "in"), filepath.Join(root, "out")
	s, err := audit.New(audit.WithWAL(in), audit.WithLifecycleEvents())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(context.Background(), &audit.Event{MessageTemplate: "user event"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	want := replay(t, in)
	if _, err := recovery.Recover(context.Background(), in, out, recovery.Options{}); err != nil {
		t.Fatal(err)
	}
	got := replay(t, out)
	if len(got) != len(want) {
		t.Fatalf("recovered %d events; want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Properties[audit.LifecycleProperty] != want[i].Properties[audit.LifecycleProperty] || got[i].Message != want[i].Message {
			t.Fatalf("event %d: %v; want %v", i, got[i].Properties, want[i].Properties)
		}
	}
}
