// Package remotetest holds the test helpers of remote copies: Ship writes a
// log's objects into a backend with the remote object layout, and
// Byzantine is a backend that lies on reads.
package remotetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/willibrandon/mtlog-audit/backends"
	fsbackend "github.com/willibrandon/mtlog-audit/backends/fs"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/testutil"
	"github.com/willibrandon/mtlog-audit/replica"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// Ship copies the sealed segments and the signed checkpoints of the closed
// log in dir into backend b with the remote object layout
// (docs/replication.md), as the shipper would: each segment file whole (a
// closed log's segments end at their seal), each checkpoint as one object.
// An object already there is left alone, so shipping a log again after it
// was continued adds the longer versions.
func Ship(t testing.TB, dir string, b backends.Backend) {
	t.Helper()
	ctx := context.Background()
	sums, err := wal.Summarize(ctx, vfs.OS(), dir, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sums {
		if !s.Sealed {
			continue
		}
		data := testutil.ReadFile(t, vfs.OS(), filepath.Join(dir, wal.SegmentName(s.Number)))
		sum := sha256.Sum256(data)
		key := replica.SegmentObject{Segment: s.Number, FirstSeq: s.FirstSeq, LastSeq: s.FirstSeq + s.Records - 1, SHA256: sum}.Key()
		PutObject(t, b, key, data)
	}
	notes, err := integrity.ReadCheckpointLog(vfs.OS(), filepath.Join(dir, integrity.CheckpointsFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range notes {
		PutObject(t, b, CheckpointKey(t, n), n)
	}
}

// CheckpointKey returns the object key of a signed checkpoint.
func CheckpointKey(t testing.TB, signed []byte) string {
	t.Helper()
	i := len(signed) - 1
	for i > 0 && !(signed[i-1] == '\n' && signed[i] == '\n') {
		i--
	}
	cp, err := integrity.ParseCheckpointBody(string(signed[:i]))
	if err != nil {
		t.Fatal(err)
	}
	return replica.CheckpointObject{Size: cp.Size, SHA256: sha256.Sum256(signed)}.Key()
}

// PutObject puts data as key into b, ignoring an existing object.
func PutObject(t testing.TB, b backends.Backend, key string, data []byte) {
	t.Helper()
	err := b.Put(context.Background(), key, data, backends.PutOptions{SHA256: sha256.Sum256(data)})
	if err != nil && !errorsIsExists(err) {
		t.Fatal(err)
	}
}

// FSBackend returns a filesystem backend in a new temporary directory.
func FSBackend(t testing.TB) *fsbackend.Backend {
	t.Helper()
	b, err := fsbackend.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Byzantine wraps a backend and lies on reads: Get returns the object's
// bytes with a bit flipped (Flip), cut short (Truncate) or an older object's
// bytes (Stale: key → the key whose bytes it returns instead), and List
// lists objects that do not exist (Phantom). Writes go to the inner
// backend. It is safe for concurrent use once configured.
type Byzantine struct {
	backends.Backend
	mu       sync.Mutex
	Flip     map[string]bool
	Truncate map[string]bool
	Stale    map[string]string
	Phantom  []string
}

// NewByzantine returns a Byzantine wrapper of b that lies about nothing yet.
func NewByzantine(b backends.Backend) *Byzantine {
	return &Byzantine{Backend: b, Flip: map[string]bool{}, Truncate: map[string]bool{}, Stale: map[string]string{}}
}

// Name says it is Byzantine.
func (z *Byzantine) Name() string { return "byzantine+" + z.Backend.Name() }

// Get returns the object, or a lie about it.
func (z *Byzantine) Get(ctx context.Context, key string) ([]byte, error) {
	z.mu.Lock()
	flip, trunc, stale := z.Flip[key], z.Truncate[key], z.Stale[key]
	z.mu.Unlock()
	if stale != "" {
		key = stale
	}
	data, err := z.Backend.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	switch {
	case flip && len(data) > 0:
		data[len(data)/2] ^= 0x10
	case trunc:
		data = data[:len(data)/2]
	}
	return data, nil
}

// List adds the phantom objects to the inner backend's list.
func (z *Byzantine) List(ctx context.Context, prefix string) ([]backends.ObjectInfo, error) {
	infos, err := z.Backend.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, k := range z.Phantom {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			infos = append(infos, backends.ObjectInfo{Key: k, Size: 100})
		}
	}
	return infos, nil
}

func errorsIsExists(err error) bool { return errors.Is(err, backends.ErrExists) }
