package audit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// openBenchEnv enables BenchmarkOpen; its value is the size of the large log
// in MB (at least 1024 for the documented measurement). The log is built
// once per run under TMPDIR with 1 KiB events (SyncNone, 8 writers), which
// takes a while, hence the opt-in.
const openBenchEnv = "MTLOG_AUDIT_BENCH_OPEN_MB"

// openBenchDirEnv, if set, names a directory where BenchmarkOpen keeps the
// large log between runs (built there if missing).
const openBenchDirEnv = "MTLOG_AUDIT_BENCH_OPEN_DIR"

// BenchmarkOpen measures how long audit.New takes to open an unsigned log
// (the default) of about $MTLOG_AUDIT_BENCH_OPEN_MB megabytes of 1 KiB events,
// against an empty log, in the same run. "wal-only" is wal.Open alone on the
// large log, so that the integrity layer's share of the open is the
// difference. Run it with
//
//	MTLOG_AUDIT_BENCH_OPEN_MB=1100 TMPDIR=/work/tmp go test -run '^$' -bench BenchmarkOpen -benchtime 5x .
func BenchmarkOpen(b *testing.B) {
	mb, _ := strconv.Atoi(os.Getenv(openBenchEnv))
	if mb <= 0 {
		b.Skipf("set %s to the size of the large log in MB (e.g. 1100) to run this benchmark", openBenchEnv)
	}
	root := b.TempDir()
	empty := filepath.Join(root, "empty")
	large := filepath.Join(root, "large")
	s, err := audit.New(audit.WithWAL(empty))
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	var size int64
	if keep := os.Getenv(openBenchDirEnv); keep != "" {
		// Reuse a log built by an earlier run (to profile the open
		// alone, or to compare builds on the same bytes).
		large = keep
		if _, err := os.Stat(large); err != nil {
			buildLargeLog(b, large, int64(mb)<<20)
		}
		size = segmentsSize(b, large)
	} else {
		start := time.Now()
		var n int64
		n, size = buildLargeLog(b, large, int64(mb)<<20)
		b.Logf("built %d events, %d bytes of segments, in %v", n, size, time.Since(start).Round(time.Millisecond))
	}
	lastSeg := lastSegmentSize(b, large)
	for _, c := range []struct{ name, dir string }{{"empty", empty}, {fmt.Sprintf("large=%dMB", size>>20), large}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				s, err := audit.New(audit.WithWAL(c.dir))
				if err != nil {
					b.Fatal(err)
				}
				// The open is measured, not the Close (its seal and
				// fdatasyncs).
				b.StopTimer()
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
	b.Run(fmt.Sprintf("wal-only/large=%dMB", size>>20), func(b *testing.B) {
		for b.Loop() {
			w, err := wal.Open(vfs.OS(), large, wal.Options{})
			if err != nil {
				b.Fatal(err)
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run(fmt.Sprintf("read-last-segment/%dKB", lastSeg>>10), func(b *testing.B) {
		// The target's yardstick: one scan of the last segment.
		r := wal.NewReader(vfs.OS(), large)
		rep, err := r.Check(context.Background(), nil)
		if err != nil {
			b.Fatal(err)
		}
		from := rep.LastSeq
		for b.Loop() {
			// Records from the last record: the reader skips every
			// earlier segment by its seal and scans the last one.
			for _, err := range r.Records(context.Background(), from) {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// buildLargeLog writes 1 KiB events to a new unsigned log in dir until its
// segments hold at least size bytes, and returns how many events it wrote and
// the segments' total size.
func buildLargeLog(b *testing.B, dir string, size int64) (int64, int64) {
	return buildLargeLogWith(b, []audit.Option{audit.WithWAL(dir), audit.WithSyncMode(audit.SyncNone, 0)}, size)
}

// buildLargeLogWith is buildLargeLog with the sink's options given (the
// log's directory among them).
func buildLargeLogWith(b *testing.B, opts []audit.Option, size int64) (int64, int64) {
	s, err := audit.New(opts...)
	if err != nil {
		b.Fatal(err)
	}
	msg := strings.Repeat("x", 1000) // encodes to about 1 KiB
	var events, written atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := &audit.Event{Timestamp: time.Unix(1_700_000_000, 0), Level: audit.LevelInformation, MessageTemplate: "bulk {N}", Message: msg}
			for written.Load() < size {
				if _, err := s.Write(context.Background(), ev); err != nil {
					b.Error(err)
					return
				}
				events.Add(1)
				written.Add(1024 + 28)
			}
		}()
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	return events.Load(), segmentsSize(b, s.Dir())
}

// segmentsSize returns the total size of the segment files in dir.
func segmentsSize(b *testing.B, dir string) int64 {
	var total int64
	names, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range names {
		if strings.HasSuffix(e.Name(), ".wal") {
			fi, err := e.Info()
			if err != nil {
				b.Fatal(err)
			}
			total += fi.Size()
		}
	}
	return total
}

// lastSegmentSize returns the size of the newest segment file in dir.
func lastSegmentSize(b *testing.B, dir string) int64 {
	names, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	var last os.DirEntry
	for _, e := range names {
		if strings.HasSuffix(e.Name(), ".wal") {
			last = e
		}
	}
	fi, err := last.Info()
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

// reopenBenchEnv enables BenchmarkOpenReopened; its value is the size in MB
// of the last session, written after 200 restarts into the same (last)
// segment. openBenchDirEnv, if set, keeps the logs between runs.
const reopenBenchEnv = "MTLOG_AUDIT_BENCH_REOPEN_MB"

// BenchmarkOpenReopened measures audit.New on a log whose last segment was
// continued across 200 restarts and then grew by $MTLOG_AUDIT_BENCH_REOPEN_MB
// megabytes of 1 KiB events before a clean Close: the open the interior
// seals of docs/wal-format.md ("Reopening after a clean Close") make
// common. Unsigned and signed. Run it with
//
//	MTLOG_AUDIT_BENCH_REOPEN_MB=40 TMPDIR=/work/tmp go test -run '^$' -bench BenchmarkOpenReopened -benchtime 10x .
func BenchmarkOpenReopened(b *testing.B) {
	mb, _ := strconv.Atoi(os.Getenv(reopenBenchEnv))
	if mb <= 0 {
		b.Skipf("set %s to the size of the last session in MB (e.g. 40) to run this benchmark", reopenBenchEnv)
	}
	root := os.Getenv(openBenchDirEnv)
	if root == "" {
		root = b.TempDir()
	}
	for _, signed := range []bool{false, true} {
		name, dir := "unsigned", filepath.Join(root, fmt.Sprintf("reopened-%dMB", mb))
		var opts []audit.Option
		if signed {
			name, dir = "signed", dir+"-signed"
			sk := benchKey(b, dir+".key")
			opts = append(opts, audit.WithSigningKey(sk))
		}
		opts = append(opts, audit.WithWAL(dir))
		if _, err := os.Stat(dir); err != nil {
			for i := range 200 {
				s, err := audit.New(opts...)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Write(context.Background(), &audit.Event{Timestamp: time.Unix(1_700_000_000+int64(i), 0), MessageTemplate: "restart {N}", Properties: map[string]any{"N": i}}); err != nil {
					b.Fatal(err)
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			}
			buildLargeLogWith(b, append(opts, audit.WithSyncMode(audit.SyncNone, 0)), int64(mb)<<20)
		}
		b.Run(fmt.Sprintf("%s/last-segment=%dMB", name, lastSegmentSize(b, dir)>>20), func(b *testing.B) {
			for b.Loop() {
				s, err := audit.New(opts...)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// benchKey returns the signing key kept in path, generating it first.
func benchKey(b *testing.B, path string) string {
	if k, err := os.ReadFile(path); err == nil {
		return string(k)
	}
	sk, _, err := integrity.GenerateKey("audit.example/bench-reopen")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(sk), 0o600); err != nil {
		b.Fatal(err)
	}
	return sk
}
