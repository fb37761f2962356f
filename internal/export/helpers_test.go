package export

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"syscall"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/event"
)

// roundTrip stores and replays ev as the WAL does.
func roundTrip(t testing.TB, ev *event.Event) *event.Event {
	t.Helper()
	b, err := event.AppendEncode(nil, ev)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	out, err := event.Decode(b)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return out
}

// allKinds returns properties holding every kind event.Decode returns.
func allKinds() map[string]any {
	return map[string]any{
		"nil":      nil,
		"true":     true,
		"false":    false,
		"int":      int64(-42),
		"intMin":   int64(math.MinInt64),
		"uintMax":  uint64(math.MaxUint64),
		"float":    1.5,
		"floatBig": 1e21,
		"floatSm":  1e-7,
		"negZero":  math.Copysign(0, -1),
		"nan":      math.NaN(),
		"inf":      math.Inf(1),
		"ninf":     math.Inf(-1),
		"complex":  complex(1, -2),
		"string":   "a\"b\\c\n\t<>&\u2028é",
		"bytes":    []byte{0, 1, 2, 0xff},
		"empty":    []byte{},
		"time":     time.Date(2024, 2, 3, 4, 5, 6, 7, time.FixedZone("CET", 3600)),
		"dur":      1500 * time.Millisecond,
		"raw":      json.RawMessage(`{"n":12345678901234567890123,"f":0.1}`),
		"err":      &event.ErrorValue{Message: "disk full"},
		"unsup":    event.Unsupported{Type: "chan int", Reason: "cannot encode channels"},
		"list":     []any{int64(1), "two", nil, []any{false}},
		"map":      map[string]any{"b": int64(2), "a": map[string]any{"z": "y"}},
	}
}

// allKindsJSON is the JSON object of allKinds.
const allKindsJSON = `{` +
	`"bytes":"AAEC/w==",` +
	`"complex":"(1-2i)",` +
	`"dur":"1.5s",` +
	`"empty":"",` +
	`"err":"disk full",` +
	`"false":false,` +
	`"float":1.5,` +
	`"floatBig":1e+21,` +
	`"floatSm":1e-7,` +
	`"inf":"+Inf",` +
	`"int":-42,` +
	`"intMin":-9223372036854775808,` +
	`"list":[1,"two",null,[false]],` +
	`"map":{"a":{"z":"y"},"b":2},` +
	`"nan":"NaN",` +
	`"negZero":-0,` +
	`"nil":null,` +
	`"ninf":"-Inf",` +
	`"raw":{"n":12345678901234567890123,"f":0.1},` +
	`"string":"a\"b\\c\n\t<>&\u2028é",` +
	`"time":"2024-02-03T04:05:06.000000007+01:00",` +
	`"true":true,` +
	`"uintMax":18446744073709551615,` +
	`"unsup":{"unsupported":"chan int","reason":"cannot encode channels"}` +
	`}`

// sampleEvents returns events covering the fields' edge cases, as replay
// returns them.
func sampleEvents(t testing.TB) []*event.Event {
	t.Helper()
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("EST", -5*3600))
	evs := []*event.Event{
		{Timestamp: ts, Level: event.LevelInformation, MessageTemplate: "User {UserId} exported {Count} records",
			Message: "User u-1 exported 42 records", Properties: map[string]any{"UserId": "u-1", "Count": 42}},
		{Timestamp: ts.Add(time.Second), Level: event.LevelError, MessageTemplate: "All kinds {string}",
			Properties: allKinds(), Exception: errors.New("boom: \"quoted\"\nsecond line")},
		{Timestamp: time.Time{}, Level: event.LevelVerbose, MessageTemplate: "", Message: ""},
		{Timestamp: time.Unix(0, 0).UTC(), Level: event.Level(9), MessageTemplate: "comma, quote \" and\r\nnewline",
			Properties: map[string]any{}, Exception: errors.New("")},
		{Timestamp: time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC), Level: event.LevelFatal,
			MessageTemplate: "{A,5}|{B,-4}|{C:000}", Properties: map[string]any{"A": "x", "B": "y", "C": 7}},
		{Timestamp: time.Date(2262, 4, 11, 23, 47, 16, 854775807, time.UTC), Level: event.LevelWarning,
			MessageTemplate: "invalid utf8 \xff here", Properties: map[string]any{"s": "bad \xfe byte"}},
		// One nanosecond past what Parquet's int64 nanoseconds hold, and the
		// first instant they do.
		{Timestamp: time.Date(2262, 4, 11, 23, 47, 16, 854775808, time.UTC), MessageTemplate: "too late"},
		{Timestamp: time.Date(1677, 9, 21, 0, 12, 43, 145224192, time.UTC), MessageTemplate: "earliest"},
	}
	for i, ev := range evs {
		evs[i] = roundTrip(t, ev)
	}
	return evs
}

// failWriter accepts limit bytes, then fails every write with ENOSPC.
type failWriter struct {
	limit, n int
}

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n+len(p) <= w.limit {
		w.n += len(p)
		return len(p), nil
	}
	k := w.limit - w.n
	w.n = w.limit
	return k, syscall.ENOSPC
}

// countWriter counts and discards what is written to it.
type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

var _ io.Writer = (*failWriter)(nil)
