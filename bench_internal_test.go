package audit

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// BenchmarkVerify measures streaming verification (checksums, event
// decoding, chain, tree, stored nodes, signed checkpoints) in MB of log per
// second. The log (about 107 MiB of 256-byte events) is written once, with
// SyncNone to save time.
func BenchmarkVerify(b *testing.B) {
	dir, vk, size := verifyBenchLog(b)
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := Verify(context.Background(), dir, WithTrustedKeys(vk))
		if err != nil || !rep.OK || rep.UncoveredTail() != 0 {
			b.Fatalf("%v %+v", err, rep)
		}
	}
	b.ReportMetric(float64(size)/(1<<20), "MiB-of-log")
}

// BenchmarkVerifyDecodeShare measures what decoding the events costs
// Verify on a loaded machine: in alternating rounds in one process, a whole
// Verify and event.Validate of every event of the same log (its payloads
// held in memory). decode-share is the second's time over the first's.
func BenchmarkVerifyDecodeShare(b *testing.B) {
	dir, vk, size := verifyBenchLog(b)
	var payloads [][]byte
	if _, err := wal.Check(context.Background(), vfs.OS(), dir, func(r wal.Record) error {
		if r.Type == wal.RecordEvent {
			payloads = append(payloads, append([]byte(nil), r.Payload...))
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	var tv, td time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if rep, err := Verify(context.Background(), dir, WithTrustedKeys(vk)); err != nil || !rep.OK {
			b.Fatalf("%v %+v", err, rep)
		}
		t1 := time.Now()
		for _, p := range payloads {
			if err := event.Validate(p); err != nil {
				b.Fatal(err)
			}
		}
		tv, td = tv+t1.Sub(t0), td+time.Since(t1)
	}
	b.ReportMetric(float64(td)/float64(tv), "decode-share")
	b.ReportMetric(float64(size)*float64(b.N)/tv.Seconds()/1e6, "verify-MB/s")
	b.ReportMetric(float64(size)*float64(b.N)/td.Seconds()/1e6, "validate-MB/s-of-log")
}

// verifyBenchLog writes the log that the Verify benchmarks read and returns
// its directory, public key and the size of its segment files.
func verifyBenchLog(b *testing.B) (string, string, int64) {
	sk, vk, _ := integrity.GenerateKey("bench.example/log")
	dir := filepath.Join(b.TempDir(), "log")
	s, err := New(WithWAL(dir), WithSigningKey(sk), WithSyncMode(SyncNone, 0), WithCheckpoints(4096, time.Hour, time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	ev := &Event{Timestamp: time.Unix(1_800_000_000, 0), MessageTemplate: "User {UserId} did {Action}", Message: "User u-1 did x",
		Properties: map[string]any{"UserId": "u-1", "Action": "x", "Pad": string(make([]byte, 150))}}
	for i := 0; i < 220_000; i++ {
		if _, err := s.Write(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	var size int64
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && filepath.Ext(e.Name()) == ".wal" {
			size += fi.Size()
		}
	}
	return dir, vk, size
}
