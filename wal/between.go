package wal

import (
	"context"
	"errors"
	"iter"
)

// RecordsBetween iterates over every record, of every type, of the segments
// that may hold an event whose stored timestamp t satisfies from ≤ t < to
// (as in Between), in sequence order. Like Between, it skips sealed segments
// whose recorded time range misses [from, to) without reading them; unlike
// Between, it yields the records that are not events (seals, rotation
// statements) and the events outside the range of the segments it reads,
// so that a caller can tell why sequence numbers skip. The caller selects
// the events by time itself. It never modifies the directory.
func (r *Reader) RecordsBetween(ctx context.Context, from, to int64) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		skip := func(s sealInfo) bool { return s.Count == 1 || sealMisses(s, from, to) }
		_, err := r.walk(ctx, 0, skip, func(rec Record) error {
			if !yield(rec, nil) {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			yield(Record{}, err)
		}
	}
}
