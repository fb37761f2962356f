package audit

import (
	"context"
	"fmt"
	"maps"

	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog/core"
)

// LifecycleProperty is the reserved property that marks an event the Sink
// writes about itself (PCI DSS 10.2.1.6, NIST SP 800-53 AU-12(3)): its
// value is the kind of the event, one of the Lifecycle constants. The
// other properties of such an event describe what happened; they never
// hold a secret. Replay returns these events with the others, and a
// filter on the property selects them.
const LifecycleProperty = "mtlog-audit.lifecycle"

// The kinds of lifecycle events (values of LifecycleProperty).
const (
	LifecycleStart            = "start"             // the Sink opened the log
	LifecycleStop             = "stop"              // the Sink is closing the log
	LifecycleConfig           = "config"            // the configuration in force (profile, key fingerprints, mirrors, backends; never secrets)
	LifecycleRecovery         = "recovery"          // opening found and cut a torn tail, or repaired a copy
	LifecycleKeyRotation      = "key-rotation"      // a key was rotated
	LifecycleShred            = "shred"             // a subject's keys were crypto-shredded (Sink.Shred)
	LifecycleRetention        = "retention-delete"  // sealed segments were deleted under the retention policy
	LifecycleRetentionRefused = "retention-refused" // a deletion the retention policy forbids was asked for and refused
	LifecycleHoldSet          = "hold-set"          // a legal hold was placed
	LifecycleHoldClear        = "hold-clear"        // a legal hold was cleared
	LifecycleFailOpen         = "fail-open"         // events started being dropped under WithFailOpen
	LifecycleFailClosed       = "fail-closed"       // events are being written again after fail-open
	LifecycleRead             = "read"              // the log was read (access logging)
)

// appendLifecycle appends an event of the Sink's own, of the given kind,
// message template and properties, bypassing the protection stages (its
// properties hold no personal data). props is not modified.
func (s *Sink) appendLifecycle(ctx context.Context, kind, template string, props map[string]any) (Receipt, error) {
	p := make(map[string]any, len(props)+1)
	maps.Copy(p, props)
	p[LifecycleProperty] = kind
	ev := &Event{Timestamp: s.cfg.now()(), Level: LevelInformation, MessageTemplate: template, Properties: p}
	ev.Message = render(&core.LogEvent{MessageTemplate: template, Properties: p})
	b, err := event.AppendEncode(nil, ev)
	if err != nil {
		return Receipt{}, fmt.Errorf("audit: encode the %s lifecycle event: %w", kind, err)
	}
	return s.append(ctx, eventTime(ev), b)
}
