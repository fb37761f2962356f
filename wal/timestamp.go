package wal

import (
	"math"
	"time"
)

// UnixNano returns the i64 that a record header stores for an event that
// occurred at t: t.UnixNano() for a time from 1677-09-21T00:12:43.145224192Z
// to 2262-04-11T23:47:16.854775807Z, where that is defined, and
// math.MinInt64 for an earlier time or math.MaxInt64 for a later one, where
// t.UnixNano() would overflow. The map is monotone (t before u implies
// UnixNano(t) ≤ UnixNano(u)), so the index orders every time correctly; it
// only ties the times beyond either end with that end. A record storing
// math.MinInt64 or math.MaxInt64 can hold any time at or beyond that end:
// only its payload tells which (see Window).
func UnixNano(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// Window is the half-open range [From, To) of event times that a reader
// selects; a zero From or To leaves that end open. Its Bounds select the
// records for Between, RecordsBetween and FollowOptions.SkipBefore from
// their stored times; those selected are the records that may hold an event
// in the window, and the caller decides each with Contains on the event's
// own timestamp. The stored time decides alone for a record that stores
// neither extreme of UnixNano, whatever the bounds, except in a window that
// holds the zero time (0001-01-01T00:00:00Z), where Bounds also selects the
// stored times from math.MinInt64 to 0 (see Bounds).
type Window struct {
	From, To time.Time
}

// Contains reports whether t lies in w.
func (w Window) Contains(t time.Time) bool {
	return (w.From.IsZero() || !t.Before(w.From)) && (w.To.IsZero() || t.Before(w.To))
}

// Bounds returns the stored-time range [lo, hi) to give Between and
// RecordsBetween (and lo for FollowOptions.SkipBefore): it holds the stored
// time of every event in w, and hi is math.MaxInt64, which those take as
// no upper bound, when w has none or ends at or after the last time that
// UnixNano stores exactly (2262-04-11T23:47:16.854775807Z).
func (w Window) Bounds() (lo, hi int64) {
	lo, hi = math.MinInt64, math.MaxInt64
	if !w.From.IsZero() {
		lo = UnixNano(w.From)
	}
	if !w.To.IsZero() {
		// An event before To stores at most UnixNano(To), which it equals
		// only at an extreme: the range is closed there.
		hi = UnixNano(w.To)
		if hi == math.MinInt64 {
			hi++
		}
	}
	if w.Contains(time.Time{}) {
		// A log written before zero timestamps were stamped (see
		// audit.Sink.Write) stores them as 0: such a window reads the
		// stored times up to 0 as well.
		hi = max(hi, 1)
	}
	return lo, hi
}

// MayHold reports whether a record that stores ts may hold an event in w:
// whether ts lies in w's Bounds.
func (w Window) MayHold(ts int64) bool {
	lo, hi := w.Bounds()
	return inBounds(ts, lo, hi)
}

// inBounds reports whether a stored time ts lies in [from, to), where to ==
// math.MaxInt64 leaves the range open above (UnixNano stores every time
// from its upper end on as math.MaxInt64).
func inBounds(ts, from, to int64) bool {
	return ts >= from && (ts < to || to == math.MaxInt64)
}

// sealMisses reports whether a sealed segment holds no event whose stored
// time lies in [from, to) (as inBounds): it holds no event at all (its
// MinTime > MaxTime, which no event can make), or all lie outside.
func sealMisses(s sealInfo, from, to int64) bool {
	return s.MinTime > s.MaxTime || s.MaxTime < from || (s.MinTime >= to && to != math.MaxInt64)
}
