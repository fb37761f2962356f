package replica_test

import (
	"errors"
	"testing"

	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/replica"
)

func TestObjectKeys(t *testing.T) {
	var sum [32]byte
	for i := range sum {
		sum[i] = byte(i * 7)
	}
	seg := replica.SegmentObject{Segment: 12, FirstSeq: 1000, LastSeq: 2047, SHA256: sum}
	key := seg.Key()
	if want := "segments/0000000012-00000000000000001000-00000000000000002047-00070e151c232a31383f464d545b626970777e858c939aa1a8afb6bdc4cbd2d9.wal"; key != want {
		t.Fatalf("segment key = %s, want %s", key, want)
	}
	if err := backends.CheckKey(key); err != nil {
		t.Fatal(err)
	}
	if got, err := replica.ParseSegmentKey(key); err != nil || got != seg {
		t.Fatalf("ParseSegmentKey = %+v, %v", got, err)
	}
	cp := replica.CheckpointObject{Size: 42, SHA256: sum}
	if got, err := replica.ParseCheckpointKey(cp.Key()); err != nil || got != cp || backends.CheckKey(cp.Key()) != nil {
		t.Fatalf("ParseCheckpointKey(%s) = %+v, %v", cp.Key(), got, err)
	}
	for _, bad := range []string{
		"segments/12-1000-2047-00.wal",
		"segments/0000000012-00000000000000002047-00000000000000001000-" + sum64 + ".wal",
		"segments/0000000012-00000000000000001000-00000000000000002047-" + sum64 + ".note",
		"segments/0000000012-00000000000000001000-00000000000000002047-" + upper64 + ".wal",
		"checkpoints/42-" + sum64 + ".note",
		"checkpoints/00000000000000000042-" + sum64 + ".wal",
		"other/00000000000000000042-" + sum64 + ".note",
	} {
		_, err1 := replica.ParseSegmentKey(bad)
		_, err2 := replica.ParseCheckpointKey(bad)
		if !errors.Is(err1, replica.ErrObjectKey) || !errors.Is(err2, replica.ErrObjectKey) {
			t.Errorf("%s: parsed (%v, %v)", bad, err1, err2)
		}
	}
}

const (
	sum64   = "00070e151c232a31383f464d545b626970777e858c939aa1a8afb6bdc4cbd2d9"
	upper64 = "00070E151C232A31383F464D545B626970777E858C939AA1A8AFB6BDC4CBD2D9"
)
