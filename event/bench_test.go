package event

import (
	"errors"
	"testing"
	"time"
)

// typicalEvent is a ~256-byte audit event with five properties.
func typicalEvent() *Event {
	return &Event{
		Timestamp:       time.Date(2024, 6, 1, 12, 30, 45, 123456789, time.UTC),
		Level:           LevelInformation,
		MessageTemplate: "User {UserId} performed {Action} on {Resource}",
		Message:         "User u-8c2f4e1a performed document.delete on /docs/2024/report-7781.pdf",
		Properties: map[string]any{
			"UserId":    "u-8c2f4e1a",
			"Action":    "document.delete",
			"Resource":  "/docs/2024/report-7781.pdf",
			"RequestId": "7f3b9c2e-51aa-4d0e-9b8f-2c6d1e0a4b17",
			"Elapsed":   1830 * time.Microsecond,
		},
	}
}

func BenchmarkAppendEncode(b *testing.B) {
	ev := typicalEvent()
	buf := make([]byte, 0, 1024)
	out, _ := AppendEncode(buf, ev)
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf, _ = AppendEncode(buf[:0], ev)
	}
}

func BenchmarkAppendEncodeWithError(b *testing.B) {
	ev := typicalEvent()
	ev.Exception = errors.New("permission denied")
	ev.Properties["Details"] = map[string]any{"attempt": 3, "ok": false, "tags": []any{"a", "b"}}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf, _ = AppendEncode(buf[:0], ev)
	}
}

func BenchmarkDecode(b *testing.B) {
	enc, _ := AppendEncode(nil, typicalEvent())
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}
