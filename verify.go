package audit

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"time"

	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// IntegrityReport is the result of verifying a log.
type IntegrityReport struct {
	Segments int
	Records  uint64 // records of every kind (events, seals, ...)
	Events   uint64
	FirstSeq uint64
	LastSeq  uint64
	Bytes    int64
	// TornTail is set when the log ends in bytes a crash left behind that
	// were never acknowledged (Open removes them).
	TornTail *wal.TailInfo
	// OK is true when every record verified.
	OK bool
	// Problem describes the first damage found ("" when OK).
	Problem string
}

// VerifyIntegrity checks the durable part of the open log: every checksum,
// sequence continuity, the chain between segments, and that every event
// decodes. Damage gives a report with OK false and an error matching
// ErrCorrupt.
func (s *Sink) VerifyIntegrity() (*IntegrityReport, error) {
	return verify(context.Background(), s.w.Reader())
}

// Verify checks the log in dir like VerifyIntegrity, without opening it for
// writing (it may be a copy, or a log no process has open).
func Verify(ctx context.Context, dir string) (*IntegrityReport, error) {
	return VerifyFS(ctx, vfs.OS(), dir)
}

// VerifyFS is Verify on the given filesystem.
func VerifyFS(ctx context.Context, fsys vfs.FS, dir string) (*IntegrityReport, error) {
	return verify(ctx, wal.NewReader(fsys, dir))
}

func verify(ctx context.Context, r *wal.Reader) (*IntegrityReport, error) {
	rep := &IntegrityReport{}
	var decodeErr error
	wr, err := r.Check(ctx, func(rec wal.Record) error {
		if rec.Type != wal.RecordEvent {
			return nil
		}
		if _, err := event.Decode(rec.Payload); err != nil {
			decodeErr = &wal.CorruptError{Segment: rec.Segment, Offset: rec.Offset, Reason: fmt.Sprintf("event %d passes its checksum but does not decode: %v", rec.Seq, err)}
			return decodeErr
		}
		return nil
	})
	if wr != nil {
		rep.Segments, rep.Records, rep.Events = wr.Segments, wr.Records, wr.Events
		rep.FirstSeq, rep.LastSeq, rep.Bytes, rep.TornTail = wr.FirstSeq, wr.LastSeq, wr.Bytes, wr.TornTail
	}
	if err != nil {
		if errors.Is(err, wal.ErrCorrupt) {
			rep.Problem = err.Error()
		}
		return rep, err
	}
	rep.OK = true
	return rep, nil
}

func replay(ctx context.Context, r *wal.Reader, from, to time.Time) iter.Seq2[*Event, error] {
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if !from.IsZero() {
		lo = from.UnixNano()
	}
	if !to.IsZero() {
		hi = to.UnixNano()
	}
	return func(yield func(*Event, error) bool) {
		for rec, err := range r.Between(ctx, lo, hi) {
			if err != nil {
				yield(nil, err)
				return
			}
			ev, err := event.Decode(rec.Payload)
			if err != nil {
				yield(nil, fmt.Errorf("audit: event %d in segment %d: %w", rec.Seq, rec.Segment, err))
				return
			}
			if !yield(ev, nil) {
				return
			}
		}
	}
}

// Replay reads the events of the log in dir whose timestamps lie in
// [from, to) (a zero bound is open), without opening it for writing.
func Replay(ctx context.Context, dir string, from, to time.Time) iter.Seq2[*Event, error] {
	return replay(ctx, wal.NewReader(vfs.OS(), dir), from, to)
}
