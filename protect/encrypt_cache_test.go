package protect

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/willibrandon/mtlog-audit/event"
)

// The caches of the stage (the last subject's key, the rendering of each
// template) never serve what changed: after a rotation, a shred or Close
// the next event uses the keyring's current state, and each stored
// message is the one an encryptor with no cache renders.
func TestEncryptCachesFollowChanges(t *testing.T) {
	ctx := context.Background()
	kr := openTestKeyring(t)
	e := encryptor(t, kr)
	keyOf := func(ev *event.Event) string { return storedEnvelope(t, ev).keyID }
	protect := func(ev *event.Event) *event.Event {
		t.Helper()
		out, err := e.Protect(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		if want, err := encryptor(t, kr).Protect(ctx, ev); err != nil || keyOf(out) != keyOf(want) || out.Message != want.Message {
			t.Fatalf("key %s, message %q; an encryptor without caches uses %s, renders %q (%v)", keyOf(out), out.Message, keyOf(want), want.Message, err)
		}
		return out
	}
	a1 := protect(testEvent("amy"))
	if a2 := protect(testEvent("amy")); keyOf(a2) != keyOf(a1) || a2.Message != a1.Message {
		t.Fatalf("one subject, one key: %s %q, then %s %q", keyOf(a1), a1.Message, keyOf(a2), a2.Message)
	}
	b := protect(testEvent("ben")) // another subject: its own key, in its message too
	if keyOf(b) == keyOf(a1) || b.Message == a1.Message {
		t.Fatalf("ben's event under amy's key or message: %s %q", keyOf(b), b.Message)
	}
	if err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if a3 := protect(testEvent("amy")); keyOf(a3) == keyOf(a1) || a3.Message == a1.Message {
		t.Fatalf("after Rotate the old key %s or its message %q", keyOf(a3), a3.Message)
	}
	rotated := keyOf(protect(testEvent("amy")))
	ids, err := kr.Shred(ctx, "amy")
	if err != nil {
		t.Fatal(err)
	}
	a4 := protect(testEvent("amy"))
	for _, id := range ids {
		if keyOf(a4) == id {
			t.Fatalf("after Shred the event is under the shredded key %s (was %s)", id, rotated)
		}
	}
	if got, err := Reveal(ctx, roundTrip(t, a4), kr); err != nil || got.Properties["Email"] != "amy@example.com" {
		t.Fatalf("the event after the shred reads %v, %v", got.Properties["Email"], err)
	}
	// A hole naming a property that is not encrypted, or none, is never
	// served from the cache.
	chosen := encryptor(t, kr, "Email")
	for _, when := range []string{"noon", "dusk"} {
		ev := testEvent("cat")
		ev.Properties["When"] = when
		out, err := chosen.Protect(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("User <encrypted key=%[1]s> changed <encrypted key=%[1]s> at %s", keyOf(out), when); out.Message != want {
			t.Fatalf("message %q, want %q", out.Message, want)
		}
	}
	ev := testEvent("cat")
	ev.MessageTemplate = "{Email} {Missing}"
	for range 2 {
		out := protect(ev)
		if want := fmt.Sprintf("<encrypted key=%s> {Missing}", keyOf(out)); out.Message != want {
			t.Fatalf("message %q, want %q", out.Message, want)
		}
	}
	kr.Close()
	if _, err := e.Protect(ctx, testEvent("ben")); !errors.Is(err, errClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// The template cache keeps at most maxTemplates templates, none longer
// than maxTemplateSize, and renders the others as before.
func TestEncryptTemplateCacheBound(t *testing.T) {
	ctx := context.Background()
	kr := openTestKeyring(t)
	e := encryptor(t, kr)
	for i := range maxTemplates + 10 {
		ev := testEvent("dee")
		ev.MessageTemplate = fmt.Sprintf("%d {Email}", i)
		out, err := e.Protect(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("%d <encrypted key=%s>", i, storedEnvelope(t, out).keyID); out.Message != want {
			t.Fatalf("message %q, want %q", out.Message, want)
		}
	}
	if n := e.templates.n.Load(); n != maxTemplates {
		t.Fatalf("%d templates kept, want %d", n, maxTemplates)
	}
	if encryptor(t, kr).templates.get(string(make([]byte, maxTemplateSize+1))) != nil {
		t.Fatal("a template longer than the bound was kept")
	}
}

// A look-up that raced with a change may leave the key it found in the
// cache after the change cleared it: it is never used, since the keyring's
// version moved on.
func TestDataKeyStaleEntry(t *testing.T) {
	ctx := context.Background()
	kr := openTestKeyring(t)
	ver := kr.ver.Load()
	oldID, oldAEAD, err := kr.dataKey(ctx, "eve")
	if err != nil {
		t.Fatal(err)
	}
	if err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	kr.last.Store(&subjectKey{ver: ver, subject: "eve", id: oldID, aead: oldAEAD}) // as the racing look-up stores it
	if id, _, err := kr.dataKey(ctx, "eve"); err != nil || id == oldID {
		t.Fatalf("after Rotate: key %s (the old one is %s), %v", id, oldID, err)
	}
}
