package protect

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/willibrandon/mtlog-audit/event"
)

// Pseudonymizer is the stage of WithPseudonymize: each named property, and
// the subject property, becomes its pseudonym, "pseu:<key ID>:<HMAC>", the
// HMAC-SHA256 of the value under the subject's pseudonym key. The same
// value of the same subject always gives the same pseudonym while the key
// exists, so events still correlate; once the subject is shredded nobody
// can tell whose it was, or recompute it from a guess.
type Pseudonymizer struct {
	opts   KeyOptions
	fields []string
}

// NewPseudonymizer returns the stage that pseudonymises the named
// properties (matched case-insensitively, at the top level of
// Properties) and the subject property.
func NewPseudonymizer(opts KeyOptions, fields ...string) (*Pseudonymizer, error) {
	if opts.Keyring == nil {
		return nil, errors.New("protect: NewPseudonymizer: no keyring; open one with OpenKeyring")
	}
	return &Pseudonymizer{opts: opts, fields: fields}, nil
}

func (p *Pseudonymizer) wants(name string, sp string) bool {
	if name == sp {
		return true
	}
	for _, f := range p.fields {
		if strings.EqualFold(f, name) {
			return true
		}
	}
	return false
}

// Protect implements Stage.
func (p *Pseudonymizer) Protect(ctx context.Context, ev *event.Event) (*event.Event, error) {
	sp := p.opts.subjectProperty()
	hit := false
	for name, v := range ev.Properties {
		if v != nil && p.wants(name, sp) {
			hit = true
			break
		}
	}
	if !hit {
		return ev, nil
	}
	subj, tok, _ := subjectName(ev, sp)
	if tok != "" {
		return nil, fmt.Errorf("protect: property %s already holds a pseudonym token; pass the subject's ID", sp)
	}
	_, pk, err := p.opts.Keyring.forSubject(ctx, subj)
	if err != nil {
		return nil, err
	}
	out := *ev
	out.Properties = make(map[string]any, len(ev.Properties))
	changed := map[string]bool{}
	for name, v := range ev.Properties {
		if v == nil || !p.wants(name, sp) {
			out.Properties[name] = v
			continue
		}
		if name == sp {
			v = subj
		}
		t, err := p.opts.Keyring.pseudonym(ctx, pk, v)
		if err != nil {
			return nil, err
		}
		out.Properties[name] = t
		changed[name] = true
	}
	if msg, ok := rerender(out.MessageTemplate, out.Properties, func(n string) bool { return changed[n] }, showPlain); ok {
		out.Message = msg
	}
	return &out, nil
}
