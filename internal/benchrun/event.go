package benchrun

import (
	"fmt"
	"strings"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/event"
)

// MinEventSize is the smallest Config.EventSize accepted.
const MinEventSize = 64

// SizedEvent returns the benchmark's event: an audit.Event with a message
// template, its rendered message and properties, plus a "Payload" string
// property padded so that the event's encoding (what the Sink stores per
// record) is size bytes, or as close as the encoding allows. From about 300
// bytes up it is a typical audit event (user, action, resource, count, trace
// id, client address); below that, a leaner one. It also returns the encoded
// size.
func SizedEvent(size int) (*audit.Event, int, error) {
	if size < MinEventSize {
		return nil, 0, fmt.Errorf("benchrun: event size %d is below the minimum of %d bytes", size, MinEventSize)
	}
	var ev *audit.Event
	for _, mk := range []func() *audit.Event{typicalEvent, leanEvent} {
		ev = mk()
		ev.Properties["Payload"] = ""
		n, err := encodedSize(ev)
		if err != nil {
			return nil, 0, err
		}
		if n <= size {
			break
		}
	}
	// The string length is a varint, so the size is not linear in the
	// padding: converge in a few steps, then never overshoot.
	pad := 0
	for range 8 {
		ev.Properties["Payload"] = strings.Repeat("x", pad)
		n, err := encodedSize(ev)
		if err != nil {
			return nil, 0, err
		}
		if n == size {
			return ev, n, nil
		}
		next := pad + size - n
		if next < 0 {
			next = 0
		}
		if next == pad {
			break
		}
		pad = next
	}
	for pad > 0 {
		n, err := encodedSize(ev)
		if err != nil {
			return nil, 0, err
		}
		if n <= size {
			break
		}
		pad--
		ev.Properties["Payload"] = strings.Repeat("x", pad)
	}
	n, err := encodedSize(ev)
	return ev, n, err
}

func encodedSize(ev *audit.Event) (int, error) {
	b, err := event.AppendEncode(nil, ev)
	if err != nil {
		return 0, fmt.Errorf("benchrun: encode event: %w", err)
	}
	return len(b), nil
}

// typicalEvent is the kind of event an application audits (about 280 bytes
// encoded before padding).
func typicalEvent() *audit.Event {
	return &audit.Event{
		Timestamp:       time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC),
		Level:           audit.LevelInformation,
		MessageTemplate: "User {UserId} performed {Action} on {Resource}",
		Message:         "User u-1001 performed export on patients/42",
		Properties: map[string]any{
			"UserId": "u-1001", "Action": "export", "Resource": "patients/42",
			"Count": 250, "TraceId": strings.Repeat("f", 32), "Ip": "203.0.113.7",
		},
	}
}

// leanEvent is the smallest sensible event, for sizes below typicalEvent's.
func leanEvent() *audit.Event {
	return &audit.Event{
		Timestamp:       time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC),
		Level:           audit.LevelInformation,
		MessageTemplate: "Benchmark event",
		Message:         "Benchmark event",
		Properties:      map[string]any{},
	}
}
