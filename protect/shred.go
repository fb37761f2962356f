package protect

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// ErrNoSubject is matched by the error of Shred for a subject the keyring
// holds no keys of (never seen, or already shredded).
var ErrNoSubject = errors.New("protect: no keys for this subject")

// Shred destroys every key of subject (its data keys and its pseudonym
// key) durably: the keyring file is replaced by one without them, and the
// replacement is fsynced with its directory before Shred returns. It
// returns the IDs of the keys destroyed, which a tombstone may name (they
// are random and say nothing about the subject). After a crash the file
// holds either all of the subject's keys or none.
//
// The shred is recorded, by key ID only, as not yet logged: see Pending
// and MarkLogged. Shred of the "" subject (events that name no subject) is
// refused, as is a subject with no keys (ErrNoSubject).
func (k *Keyring) Shred(ctx context.Context, subject string) ([]string, error) {
	if subject == "" {
		return nil, errors.New("protect: Shred(\"\"): the empty subject holds the keys of events that name no subject; give a subject")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k.wmu.Lock()
	defer k.wmu.Unlock()
	st, err := k.snapshot()
	if err != nil {
		return nil, err
	}
	i := st.subjectIndex(subject)
	if i < 0 {
		return nil, fmt.Errorf("%w (keyring %s)", ErrNoSubject, k.path)
	}
	sr := st.Subjects[i]
	ids := []string{sr.Pseudonym.ID}
	for _, d := range sr.Data {
		ids = append(ids, d.ID)
	}
	st.Subjects = slices.Delete(st.Subjects, i, i+1)
	st.Shredded = append(st.Shredded, shredRecord{Keys: ids})
	k.mu.RLock()
	var dead []*keyEntry
	for _, id := range ids {
		dead = append(dead, k.byID[id])
	}
	k.mu.RUnlock()
	if err := k.commit(st); err != nil {
		return nil, err
	}
	for _, e := range dead { // a key never unwrapped can no longer be
		if e != nil {
			e.once.Do(func() { e.err = fmt.Errorf("protect: key %s: %w", e.rec.ID, ErrShredded) })
		}
	}
	return ids, nil
}

// Shredded reports whether the key of the given ID was shredded.
func (k *Keyring) Shredded(id string) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.shredded[id]
}

// Pending returns the key IDs of each shred whose tombstone is not known
// to be in the log (a crash came between the shred and its tombstone),
// oldest first.
func (k *Keyring) Pending() [][]string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var out [][]string
	for _, sh := range k.state.Shredded {
		if !sh.Logged {
			out = append(out, slices.Clone(sh.Keys))
		}
	}
	return out
}

// MarkLogged records durably that the tombstone of the shred of the given
// keys (one of Pending's entries, or Shred's result) is in the log.
func (k *Keyring) MarkLogged(ids []string) error {
	k.wmu.Lock()
	defer k.wmu.Unlock()
	st, err := k.snapshot()
	if err != nil {
		return err
	}
	changed := false
	for i := range st.Shredded {
		if !st.Shredded[i].Logged && slices.Equal(st.Shredded[i].Keys, ids) {
			st.Shredded[i].Logged, changed = true, true
		}
	}
	if !changed {
		return nil
	}
	return k.commit(st)
}
