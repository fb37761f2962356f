package benchref

import (
	"strings"
	"time"

	"github.com/willibrandon/mtlog-audit/event"
)

// Event returns the event of the write benchmarks: about 256 bytes, 279
// encoded, six properties of which UserId names the data subject.
func Event() *event.Event {
	return &event.Event{
		Timestamp:       time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC),
		Level:           event.LevelInformation,
		MessageTemplate: "User {UserId} performed {Action} on {Resource}",
		Message:         "User u-1001 performed export on patients/42",
		Properties: map[string]any{
			"UserId": "u-1001", "Action": "export", "Resource": "patients/42",
			"Count": 250, "TraceId": strings.Repeat("f", 32), "Ip": "203.0.113.7",
		},
	}
}
