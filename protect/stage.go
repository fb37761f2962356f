// Package protect holds the data-protection stages that run on every audit
// event before it is encoded: card-data tokenization, masking, pseudonyms
// and field encryption. Each stage is a pure transformation of an
// event.Event; the audit package runs them on the caller's goroutine, before
// the group commit, so that nothing they remove or hide ever reaches disk.
//
// The package sits below audit and above event: it imports event and the
// standard library (and, for key providers, their client libraries), never
// audit.
package protect

import (
	"context"
	"errors"

	"github.com/willibrandon/mtlog-audit/event"
)

// A Stage is one data-protection transformation.
//
// Protect returns ev itself when it changes nothing, or a changed copy. It
// never modifies ev, its Properties map, or any value reachable from them:
// they belong to the caller. A stage that changes a property copies what it
// changes (copy on write), so that an event that needs no change costs no
// allocation.
//
// An error refuses the event: it is not written. An error matching
// ErrUnavailable (a key provider that cannot be reached, say) is transient:
// the sink's failure policy decides whether to wait and retry. Any other
// error is permanent for this event (the sink reports it as unwritable).
// A stage never falls back to writing a value in clear.
type Stage interface {
	Protect(ctx context.Context, ev *event.Event) (*event.Event, error)
}

// ErrUnavailable is matched by stage errors that may pass if the event is
// written again later, such as a key provider that does not answer.
var ErrUnavailable = errors.New("protect: unavailable")

// Pipeline is a sequence of stages run in order; the output of one is the
// input of the next. The zero Pipeline changes nothing.
type Pipeline []Stage

// Protect runs the stages in order and returns the final event, or the
// first error.
func (p Pipeline) Protect(ctx context.Context, ev *event.Event) (*event.Event, error) {
	for _, s := range p {
		var err error
		if ev, err = s.Protect(ctx, ev); err != nil {
			return nil, err
		}
	}
	return ev, nil
}

// An Encoder is a Stage that can also append the canonical encoding
// (event.AppendEncode) of the event it would return, without building that
// event (Encryptor does). On an error it appends nothing of the event.
type Encoder interface {
	Stage
	AppendEncode(ctx context.Context, dst []byte, ev *event.Event) ([]byte, error)
}

// AppendEncode runs the stages in order and appends the canonical
// encoding of the final event to dst, or returns the first error (with
// nothing of the event appended). The last stage writes the encoding
// itself when it is an Encoder.
func (p Pipeline) AppendEncode(ctx context.Context, dst []byte, ev *event.Event) ([]byte, error) {
	if len(p) == 0 {
		return event.AppendEncode(dst, ev)
	}
	ev, err := p[:len(p)-1].Protect(ctx, ev)
	if err != nil {
		return dst, err
	}
	last := p[len(p)-1]
	if enc, ok := last.(Encoder); ok {
		return enc.AppendEncode(ctx, dst, ev)
	}
	if ev, err = last.Protect(ctx, ev); err != nil {
		return dst, err
	}
	return event.AppendEncode(dst, ev)
}
