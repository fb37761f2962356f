package ledger

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/benchref"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// BenchmarkIntegrityOverhead measures durable appends of 256-byte records
// with 64 writers, without and with the integrity layer (hash chain, Merkle
// tree with stored nodes, checkpoints signed every 65536 records or second),
// in the same run, so that their ratio is the layer's cost; and with the
// batch authentication tags a signed Sink adds (the Tag hook), so that the
// last two give the tags' cost.
func BenchmarkIntegrityOverhead(b *testing.B) {
	sk, _, err := integrity.GenerateKey("bench.example/log")
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 256)
	for _, mode := range []string{"wal", "wal+integrity", "wal+integrity+tags"} {
		withLedger, withTags := mode != "wal", mode == "wal+integrity+tags"
		name := mode + "/writers=64"
		b.Run(name, func(b *testing.B) {
			dir := filepath.Join(b.TempDir(), "log")
			var led *Ledger
			var published atomic.Pointer[Ledger]
			opts := wal.Options{}
			if withLedger {
				opts.OnCommit = func(recs []wal.Committed) error { return published.Load().OnCommit(recs) }
				opts.PreDigest = func(p []byte) [32]byte { return integrity.PayloadHash(p) }
			}
			if withTags {
				opts.Tag = func(recs []wal.Committed) ([32]byte, error) { return published.Load().Tag(recs) }
			}
			w, err := wal.Open(vfs.OS(), dir, opts)
			if err != nil {
				b.Fatal(err)
			}
			if withLedger {
				cfg := DefaultConfig()
				cfg.SigningKey = sk
				if led, err = Open(cfg, vfs.OS(), dir, w, published.Store); err != nil {
					b.Fatal(err)
				}
				if !withTags {
					led.tagKey = nil // as if the Tag hook were off
				}
			}
			ctx := context.Background()
			benchref.Run(b, 64, func() error {
				_, err := w.Append(ctx, wal.RecordEvent, 1, payload)
				return err
			})
			if led != nil {
				led.StopRunner()
			}
			w.Close()
			if led != nil {
				led.Close()
			}
		})
	}
}
