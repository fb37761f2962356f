package protect

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"strconv"

	"github.com/willibrandon/mtlog-audit/event"
)

// DefaultSubjectProperty is the property that names an event's data
// subject unless KeyOptions.SubjectProperty says otherwise.
const DefaultSubjectProperty = "SubjectId"

// KeyOptions are what the pseudonym and encryption stages share.
type KeyOptions struct {
	// Keyring holds the per-subject keys (required).
	Keyring *Keyring
	// SubjectProperty names the property that holds the event's data
	// subject, such as a user ID ("" means DefaultSubjectProperty). Its
	// value, a string (anything else is taken as its fmt %v), selects the
	// subject's keys. An event without it uses the keys of the "" subject,
	// which is never shredded on its own. The property itself is personal
	// data: it is stored as the subject's pseudonym (with
	// WithPseudonymize) or encrypted (with WithEncryption only), never in
	// clear.
	SubjectProperty string
}

func (o KeyOptions) subjectProperty() string {
	if o.SubjectProperty == "" {
		return DefaultSubjectProperty
	}
	return o.SubjectProperty
}

// subjectName returns the subject ev names through prop ("" if none), and
// whether the property holds a pseudonym already (set by the pseudonym
// stage, which runs first).
func subjectName(ev *event.Event, prop string) (name string, pseudo string, present bool) {
	v, ok := ev.Properties[prop]
	if !ok || v == nil {
		return "", "", false
	}
	switch x := v.(type) {
	case string:
		if _, _, isTok := parseToken(x, pseudoPrefix); isTok {
			return "", x, true
		}
		return x, "", true
	case int:
		return strconv.Itoa(x), "", true
	case int64:
		return strconv.FormatInt(x, 10), "", true
	}
	return fmt.Sprint(v), "", true
}

// pseudonym returns the token of v under the pseudonym key e.
func (k *Keyring) pseudonym(ctx context.Context, e *keyEntry, v any) (string, error) {
	key, _, err := k.unwrap(ctx, e)
	if err != nil {
		return "", err
	}
	var buf [128]byte
	p, err := appendValue(buf[:0], v)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, key)
	m.Write(p)
	return pseudoPrefix + e.rec.ID + ":" + b64.EncodeToString(m.Sum(nil)), nil
}

// subjectOfPseudonym returns the subject whose pseudonym tok is (the
// subject property after the pseudonym stage), checking that it is.
func (k *Keyring) subjectOfPseudonym(ctx context.Context, tok string) (string, error) {
	id, _, _ := parseToken(tok, pseudoPrefix)
	e, err := k.key(id)
	if err != nil {
		return "", fmt.Errorf("protect: the subject property holds pseudonym %s…: %w", id, err)
	}
	k.mu.RLock()
	s := e.subj
	k.mu.RUnlock()
	if s == nil || s.pseudo != e {
		return "", fmt.Errorf("protect: the subject property holds a token of key %s, which is not a pseudonym key", id)
	}
	want, err := k.pseudonym(ctx, e, s.name)
	if err != nil {
		return "", err
	}
	if !hmac.Equal([]byte(want), []byte(tok)) {
		return "", fmt.Errorf("protect: the subject property holds a pseudonym token that its key %s did not make", id)
	}
	return s.name, nil
}
