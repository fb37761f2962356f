// Package remotetest holds the test helpers of remote copies: Ship writes a
// log's objects into a backend with the remote object layout (a backend
// that lies is internal/faultbackend's).
package remotetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"path/filepath"
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
	err := b.Put(context.Background(), key, backends.ReaderAt(data), int64(len(data)), backends.PutOptions{SHA256: sha256.Sum256(data)})
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

func errorsIsExists(err error) bool { return errors.Is(err, backends.ErrExists) }
