package audit

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/willibrandon/mtlog-audit/protect"
)

// ShredKeysProperty is the property of a tombstone event (see Sink.Shred)
// that lists the IDs of the keys destroyed.
const ShredKeysProperty = "ShreddedKeys"

// tombstoneTemplate is the message template of a tombstone event.
const tombstoneTemplate = "Crypto-shredded {KeyCount} keys {" + ShredKeysProperty + "}"

// ShredResult is what Sink.Shred did.
type ShredResult struct {
	// Keys are the IDs of the keys destroyed (the subject's pseudonym key
	// and data keys).
	Keys []string
	// Tombstone is the Receipt of the tombstone event that names them.
	Tombstone Receipt
}

// ErrNoKeyring is returned by Shred on a Sink opened without WithKeyring.
var ErrNoKeyring = errors.New("audit: no keyring: open the Sink with WithKeyring")

// Shred crypto-shreds a data subject (GDPR Art. 17): it destroys the
// subject's data keys and pseudonym key in the keyring file, durably (the
// file is replaced and fsynced with its directory; the keys never live in
// the log directory or its mirrors), and then appends a tombstone event
// naming the destroyed keys by their random IDs, never by the subject.
// Afterwards the subject's encrypted fields read as Shredded, their
// pseudonyms can no longer be linked to them, and Verify and every
// inclusion and consistency proof still check, since the log holds only
// ciphertext. Events of the subject written later get new keys.
//
// When the keys are destroyed but the tombstone cannot be written (or the
// process dies in between), the error says so and the next New writes the
// tombstone. Shred of a subject without keys returns an error matching
// protect.ErrNoSubject. docs/compliance/README.md says what crypto-shredding
// is, and is not, worth as erasure.
func (s *Sink) Shred(ctx context.Context, subject string) (ShredResult, error) {
	kr := s.Keyring()
	if kr == nil {
		return ShredResult{}, ErrNoKeyring
	}
	if s.closed.Load() {
		return ShredResult{}, ErrSinkClosed
	}
	ids, err := kr.Shred(ctx, subject)
	if err != nil {
		return ShredResult{}, fmt.Errorf("audit: shred: %w", err)
	}
	rc, err := s.tombstone(ctx, ids)
	if err != nil {
		return ShredResult{Keys: ids}, fmt.Errorf("audit: shred: the keys %v are destroyed, but their tombstone event is not written (New writes it): %w", ids, err)
	}
	return ShredResult{Keys: ids, Tombstone: rc}, nil
}

// tombstone appends the tombstone event of the shred of ids, and records
// in the keyring that it is in the log. It bypasses the protection
// stages: it holds only key IDs.
func (s *Sink) tombstone(ctx context.Context, ids []string) (Receipt, error) {
	list := make([]any, len(ids))
	for i, id := range ids {
		list[i] = id
	}
	rc, err := s.appendLifecycle(ctx, LifecycleShred, tombstoneTemplate, map[string]any{"KeyCount": len(ids), ShredKeysProperty: list})
	if err != nil {
		return Receipt{}, err
	}
	return rc, s.Keyring().MarkLogged(ids)
}

// logPendingShreds writes the tombstones of shreds that a crash or an error
// kept out of the log.
func (s *Sink) logPendingShreds() error {
	kr := s.Keyring()
	if kr == nil {
		return nil
	}
	for _, ids := range kr.Pending() {
		if _, err := s.tombstone(context.Background(), ids); err != nil {
			return fmt.Errorf("audit: write the tombstone of an earlier shred of keys %v: %w", ids, err)
		}
	}
	return nil
}

// reveal decrypts the fields of the events of seq with the Sink's keyring
// (see Sink.Replay).
func (s *Sink) reveal(ctx context.Context, seq iter.Seq2[*Event, error]) iter.Seq2[*Event, error] {
	kr := s.Keyring()
	if kr == nil {
		return seq
	}
	return RevealEvents(ctx, seq, kr)
}

// RevealEvents decrypts, with kr, the fields that WithEncryption encrypted
// in the events of seq (such as Replay's): see protect.Reveal. With a nil
// kr the fields read as Encrypted. An event with fields that do not
// decrypt is yielded with a *protect.FieldError per field (joined), and
// the sequence goes on if the caller goes on.
func RevealEvents(ctx context.Context, seq iter.Seq2[*Event, error], kr *protect.Keyring) iter.Seq2[*Event, error] {
	return func(yield func(*Event, error) bool) {
		for ev, err := range seq {
			if err == nil {
				ev, err = protect.Reveal(ctx, ev, kr)
			}
			if !yield(ev, err) {
				return
			}
		}
	}
}
