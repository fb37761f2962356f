package protect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/internal/benchref"
)

// appendEncoded is Encryptor.AppendEncode after a prefix, checked to keep
// the prefix, decoded.
func appendEncoded(t testing.TB, e *Encryptor, ev *event.Event) *event.Event {
	t.Helper()
	prefix := []byte("prefix")
	b, err := e.AppendEncode(context.Background(), prefix, ev)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, prefix) {
		t.Fatalf("the prefix was overwritten: %q", b[:len(prefix)])
	}
	out, err := event.Decode(b[len(prefix):])
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := event.AppendEncode(nil, out); !bytes.Equal(again, b[len(prefix):]) {
		t.Fatalf("AppendEncode wrote a non-canonical encoding:\n%x\nre-encoded:\n%x", b[len(prefix):], again)
	}
	return out
}

// withoutRandom returns the encoding of stored (an event the stage wrote)
// with its event ID and sealed values zeroed: what two encryptions of one
// event share.
func withoutRandom(t testing.TB, stored *event.Event) []byte {
	t.Helper()
	stored = roundTrip(t, stored) // a copy: the envelope is zeroed in place
	if raw, ok := stored.Properties[EnvelopeProperty].([]byte); ok {
		env, err := parseEnvelope(raw)
		if err != nil {
			t.Fatal(err)
		}
		clear(env.eid)
		for _, s := range env.sealed {
			clear(s)
		}
	}
	b, err := event.AppendEncode(nil, stored)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// AppendEncode writes what Protect followed by event.AppendEncode writes,
// but for the event ID and what it seals, for every shape of event: all
// properties encrypted or some, none, nil properties, an exception, a
// message rendered again or kept, more kept properties than its stack
// holds; and what it writes reads back.
func TestEncryptAppendEncodeMatchesProtect(t *testing.T) {
	ctx := context.Background()
	kr := openTestKeyring(t)
	many := testEvent("mia")
	for i := range 40 {
		many.Properties[fmt.Sprintf("P%02d", i)] = i
	}
	withErr := testEvent("eve")
	withErr.Exception = errors.New("disk on fire")
	cases := []struct {
		name   string
		fields []string
		ev     *event.Event
	}{
		{"every property", nil, testEvent("alice")},
		{"chosen fields", []string{"Email", "when"}, testEvent("bob")},
		{"chosen fields, message kept", []string{"Count"}, testEvent("carl")},
		{"only the subject", []string{"Missing"}, testEvent("dan")},
		{"nothing to encrypt", []string{"Missing"}, &event.Event{Message: "m", Properties: map[string]any{"A": 1}}},
		{"nil properties", nil, &event.Event{Message: "m"}},
		{"exception", []string{"Email"}, withErr},
		{"many kept", []string{"Email"}, many},
		{"benchmark event", nil, benchref.Event()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := encryptor(t, kr, c.fields...)
			want, err := e.Protect(ctx, c.ev)
			if err != nil {
				t.Fatal(err)
			}
			got := appendEncoded(t, e, c.ev)
			if g, w := withoutRandom(t, got), withoutRandom(t, roundTrip(t, want)); !bytes.Equal(g, w) {
				t.Fatalf("AppendEncode wrote\n%x\nProtect and AppendEncode\n%x", g, w)
			}
			back, err := Reveal(ctx, got, kr)
			if err != nil {
				t.Fatal(err)
			}
			if back.Message != c.ev.Message {
				t.Errorf("message %q, want %q", back.Message, c.ev.Message)
			}
			delete(back.Properties, EnvelopeProperty) // Reveal keeps it
			if len(back.Properties) != len(c.ev.Properties) {
				t.Errorf("%d properties read back, want %d", len(back.Properties), len(c.ev.Properties))
			}
			for k, v := range c.ev.Properties {
				if !reflect.DeepEqual(back.Properties[k], event.Normalize(v)) {
					t.Errorf("%s: %#v, want %#v", k, back.Properties[k], event.Normalize(v))
				}
			}
		})
	}
}

// AppendEncode follows the keyring: a rotation and a shred take effect on
// the next event, as with Protect (its working memory, reused from event
// to event, carries no key over).
func TestEncryptAppendEncodeFollowsKeyChanges(t *testing.T) {
	ctx := context.Background()
	kr := openTestKeyring(t)
	e := encryptor(t, kr)
	keyOf := func() string {
		t.Helper()
		return storedEnvelope(t, appendEncoded(t, e, testEvent("amy"))).keyID
	}
	first := keyOf()
	if again := keyOf(); again != first {
		t.Fatalf("one subject, two keys: %s, %s", first, again)
	}
	if other := storedEnvelope(t, appendEncoded(t, e, testEvent("ben"))).keyID; other == first {
		t.Fatalf("ben's event under amy's key %s", other)
	}
	if err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	rotated := keyOf()
	if rotated == first {
		t.Fatalf("after Rotate still the old key %s", first)
	}
	ids, err := kr.Shred(ctx, "amy")
	if err != nil {
		t.Fatal(err)
	}
	after := keyOf()
	for _, id := range ids {
		if after == id {
			t.Fatalf("after Shred the event is under the shredded key %s", id)
		}
	}
}

// On an error AppendEncode appends nothing: no clear text of the event
// reaches the buffer the sink writes from.
func TestEncryptAppendEncodeError(t *testing.T) {
	ctx := context.Background()
	kr := openTestKeyring(t)
	e := encryptor(t, kr)
	reserved := testEvent("rita")
	reserved.Properties[EnvelopeProperty] = "mine"
	if b, err := e.AppendEncode(ctx, []byte("prefix"), reserved); err == nil || string(b) != "prefix" {
		t.Fatalf("the reserved property: %q, %v", b, err)
	}
	if err := kr.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := e.AppendEncode(ctx, []byte("prefix"), testEvent("carol"))
	if err == nil || string(b) != "prefix" {
		t.Fatalf("a closed keyring: %q, %v", b, err)
	}
	if strings.Contains(string(b), "carol") {
		t.Fatalf("clear text in the buffer: %q", b)
	}
}

// A scratch wipes the plaintexts it held when it goes back to the pool,
// also those its first buffer held before it grew.
func TestScratchWipesPlaintext(t *testing.T) {
	sc := scratchPool.Get().(*scratch)
	secret := []byte(strings.Repeat("s", 300))
	sc.pt = append(sc.pt, secret...)
	sc.pt = append(sc.pt, secret...) // past ptBuf: copied out
	for range 20 {
		sc.names, sc.vals = append(sc.names, "n"), append(sc.vals, secret)
	}
	pt := sc.pt
	sc.release()
	if bytes.Contains(sc.ptBuf[:], []byte("s")) || bytes.Contains(pt, []byte("s")) {
		t.Fatal("plaintext left in the scratch after release")
	}
	for i := range sc.valsBuf {
		if sc.valsBuf[i] != nil {
			t.Fatalf("value %d still referenced after release", i)
		}
	}
}
