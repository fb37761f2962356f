package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/willibrandon/mtlog-audit/compliance"
	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// Hold is a legal hold (see compliance.Hold): while it is in force,
// ApplyRetention deletes no segment holding an event in [From, To].
type Hold = compliance.Hold

// ErrHold is matched by SetHold's and ClearHold's errors about the hold
// asked for: a malformed ID, no reason, a hold already set, or none to
// clear.
var ErrHold = errors.New("audit: legal hold")

// The properties of the LifecycleHoldSet and LifecycleHoldClear events.
const (
	HoldIDProperty     = "HoldID" // the hold's ID
	HoldReasonProperty = "Reason" // why it was set or cleared
	HoldFromProperty   = "From"   // RFC 3339 start of the covered event times ("" open)
	HoldToProperty     = "To"     // RFC 3339 end of the covered event times ("" open)
)

// SetHold places legal hold id (a word without spaces, such as a case
// number) with the given reason, covering events timed in [from, to] (a
// zero bound is open). It is recorded only as a LifecycleHoldSet event in
// the log itself, chained and signed like every record, so that no file
// outside the log can be edited or deleted to lift it; a later retention
// checkpoint carries it on when its event is pruned.
func (s *Sink) SetHold(ctx context.Context, id, reason string, from, to time.Time) (Receipt, error) {
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return Receipt{}, fmt.Errorf("%w: hold %s ends (%s) before it starts (%s)", ErrHold, id, to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	return s.changeHold(ctx, id, reason, func(h *Hold) (Receipt, error) {
		if h != nil {
			return Receipt{}, fmt.Errorf("%w: hold %s is already in force (set %s: %s); clear it first or use another ID", ErrHold, id, h.Set.Format(time.RFC3339), h.Reason)
		}
		return s.appendLifecycle(ctx, LifecycleHoldSet, "Legal hold {HoldID} set: {Reason}", map[string]any{
			HoldIDProperty: id, HoldReasonProperty: reason, HoldFromProperty: rfc3339(from), HoldToProperty: rfc3339(to),
		})
	})
}

// ClearHold lifts legal hold id, recording reason in a LifecycleHoldClear
// event.
func (s *Sink) ClearHold(ctx context.Context, id, reason string) (Receipt, error) {
	return s.changeHold(ctx, id, reason, func(h *Hold) (Receipt, error) {
		if h == nil {
			return Receipt{}, fmt.Errorf("%w: no hold %s is in force (see Holds)", ErrHold, id)
		}
		return s.appendLifecycle(ctx, LifecycleHoldClear, "Legal hold {HoldID} cleared: {Reason}", map[string]any{HoldIDProperty: id, HoldReasonProperty: reason})
	})
}

// changeHold checks id and reason and runs change, with no other retention
// run or hold change in between, on the hold in force with that ID (nil:
// none).
func (s *Sink) changeHold(ctx context.Context, id, reason string, change func(*Hold) (Receipt, error)) (Receipt, error) {
	if err := checkHold(id, reason); err != nil {
		return Receipt{}, err
	}
	s.retMu.Lock()
	defer s.retMu.Unlock()
	holds, err := s.Holds(ctx)
	if err != nil {
		return Receipt{}, err
	}
	for i := range holds {
		if holds[i].ID == id {
			return change(&holds[i])
		}
	}
	return change(nil)
}

// Holds returns the legal holds in force, oldest first: those the log's
// retention checkpoint carries, then every hold set and clear event after
// it, in log order. It reads the log's lifecycle events (every event is
// decoded: a full read of the log).
func (s *Sink) Holds(ctx context.Context) ([]Hold, error) {
	rc, err := readRetention(s.cfg.fs, s.w.Dir())
	if err != nil {
		return nil, err
	}
	return foldHolds(ctx, s.w.Reader(), rc)
}

func (s *Sink) holds(ctx context.Context, rc *integrity.RetentionCheckpoint) ([]Hold, error) {
	return foldHolds(ctx, s.w.Reader(), rc)
}

// Holds returns the legal holds in force in the log in dir, without
// opening it for writing (see Sink.Holds).
func Holds(ctx context.Context, fsys vfs.FS, dir string) ([]Hold, error) {
	rc, err := readRetention(fsys, dir)
	if err != nil {
		return nil, err
	}
	return foldHolds(ctx, wal.NewReader(fsys, dir), rc)
}

// holdMark preselects the records that may be hold events, before decoding.
var holdMark = []byte(HoldIDProperty)

func foldHolds(ctx context.Context, r *wal.Reader, rc *integrity.RetentionCheckpoint) ([]Hold, error) {
	var holds []Hold
	var from uint64 = 1
	if rc != nil {
		from = rc.Size + 1
		for _, h := range rc.Holds {
			holds = append(holds, Hold{ID: h.ID, Reason: h.Reason, Set: h.Set, From: h.From, To: h.To})
		}
	}
	for rec, err := range r.Records(ctx, from) {
		if err != nil {
			return nil, fmt.Errorf("audit: read the log's legal holds: %w", err)
		}
		// Only hold events are decoded: they carry the property name in
		// the clear (the Sink writes them, not through protection).
		if rec.Type != wal.RecordEvent || !bytes.Contains(rec.Payload, holdMark) {
			continue
		}
		ev, err := event.Decode(rec.Payload)
		if err != nil {
			return nil, fmt.Errorf("audit: read the log's legal holds: event %d: %w", rec.Seq, err)
		}
		kind, _ := ev.Properties[LifecycleProperty].(string)
		if kind != LifecycleHoldSet && kind != LifecycleHoldClear {
			continue
		}
		id, _ := ev.Properties[HoldIDProperty].(string)
		holds = dropHold(holds, id)
		if kind == LifecycleHoldSet {
			reason, _ := ev.Properties[HoldReasonProperty].(string)
			f, _ := ev.Properties[HoldFromProperty].(string)
			t, _ := ev.Properties[HoldToProperty].(string)
			holds = append(holds, Hold{ID: id, Reason: reason, Set: ev.Timestamp, From: parseRFC3339(f), To: parseRFC3339(t)})
		}
	}
	return holds, nil
}

func dropHold(holds []Hold, id string) []Hold {
	out := holds[:0]
	for _, h := range holds {
		if h.ID != id {
			out = append(out, h)
		}
	}
	return out
}

func checkHold(id, reason string) error {
	switch {
	case id == "" || strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return fmt.Errorf("%w: hold ID %q: give one word without spaces, such as a case number", ErrHold, id)
	case strings.TrimSpace(reason) == "":
		return fmt.Errorf("%w: hold %s: give a reason (it is recorded in the log)", ErrHold, id)
	}
	return nil
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseRFC3339(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}
