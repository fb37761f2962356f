package ledger

import (
	"os"
	"testing"

	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// BenchmarkOpenTree measures the integrity layer's share of opening an
// unsigned log: Open (resume from the stored tree, check it, read the
// tail) on a WAL that is already open, so that the WAL's own recovery scan
// is left out. It runs on the log BenchmarkOpen keeps in
// $MTLOG_AUDIT_BENCH_OPEN_DIR (run that first).
func BenchmarkOpenTree(b *testing.B) {
	dir := os.Getenv("MTLOG_AUDIT_BENCH_OPEN_DIR")
	if dir == "" {
		b.Skip("set MTLOG_AUDIT_BENCH_OPEN_DIR to a log built by BenchmarkOpen")
	}
	if _, err := os.Stat(dir); err != nil {
		b.Skipf("no log in %s: run BenchmarkOpen with MTLOG_AUDIT_BENCH_OPEN_DIR first", dir)
	}
	w, err := wal.Open(vfs.OS(), dir, wal.Options{PreDigest: func(p []byte) [32]byte { return integrity.PayloadHash(p) }})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	for b.Loop() {
		l, err := Open(DefaultConfig(), vfs.OS(), dir, w, func(*Ledger) {})
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
