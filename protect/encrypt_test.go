package protect

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/internal/benchref"
)

// openTestKeyring opens a fresh local keyring in a temporary directory.
func openTestKeyring(t testing.TB) *Keyring {
	t.Helper()
	kr, err := OpenKeyring(filepath.Join(t.TempDir(), "audit.keyring"), KeyringOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kr.Close() })
	return kr
}

func testEvent(subject string) *event.Event {
	return &event.Event{
		Timestamp: time.Unix(1_700_000_000, 0).UTC(), Level: event.LevelInformation,
		MessageTemplate: "User {SubjectId} changed {Email} at {When}",
		Message:         "User " + subject + " changed " + subject + "@example.com at noon",
		Properties: map[string]any{
			"SubjectId": subject, "Email": subject + "@example.com", "When": "noon",
			"Nested": map[string]any{"a": []any{int64(1), "x"}}, "Count": int64(3),
		},
	}
}

// roundTrip encodes and decodes ev as the log does.
func roundTrip(t testing.TB, ev *event.Event) *event.Event {
	t.Helper()
	b, err := event.AppendEncode(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	out, err := event.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func encryptor(t testing.TB, kr *Keyring, fields ...string) *Encryptor {
	t.Helper()
	e, err := NewEncryptor(KeyOptions{Keyring: kr}, fields...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Every property, nested values included, encrypts and reads back after a
// round trip through the event encoding; the stored event holds none of
// the values, and the message shows placeholders.
func TestEncryptRoundTrip(t *testing.T) {
	kr := openTestKeyring(t)
	ctx := context.Background()
	ev := testEvent("alice")
	out, err := encryptor(t, kr).Protect(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Properties["Email"] != "alice@example.com" {
		t.Fatal("the caller's event was modified")
	}
	stored := roundTrip(t, out)
	raw, _ := event.AppendEncode(nil, stored)
	for _, s := range []string{"alice", "noon"} {
		if strings.Contains(string(raw), s) {
			t.Fatalf("the stored event holds %q: %q", s, raw)
		}
	}
	if !strings.Contains(stored.Message, "<encrypted key=k-") {
		t.Fatalf("message %q", stored.Message)
	}
	back, err := Reveal(ctx, stored, kr)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range ev.Properties {
		if !reflect.DeepEqual(back.Properties[k], event.Normalize(v)) {
			t.Errorf("%s: %#v, want %#v", k, back.Properties[k], v)
		}
	}
	if back.Message != ev.Message {
		t.Errorf("message %q, want %q", back.Message, ev.Message)
	}
	// Without a keyring: placeholders, no error.
	blind, err := Reveal(ctx, stored, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := blind.Properties["Email"].(Encrypted); !ok || !strings.HasPrefix(p.String(), "<encrypted key=k-") {
		t.Fatalf("without keys Email is %#v", blind.Properties["Email"])
	}
}

// Chosen fields only: the others and the events without them pass as they
// are, and an event without a chosen field costs nothing.
func TestEncryptChosenFields(t *testing.T) {
	kr := openTestKeyring(t)
	e := encryptor(t, kr, "email")
	ev := testEvent("bob")
	out, err := e.Protect(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if out.Properties["When"] != "noon" || out.Properties["Count"] != int64(3) {
		t.Fatalf("an unchosen field changed: %v", out.Properties)
	}
	for _, f := range []string{"Email", "SubjectId"} {
		if v, ok := out.Properties[f]; ok {
			t.Fatalf("%s not encrypted: %v", f, v)
		}
	}
	env, err := parseEnvelope(out.Properties[EnvelopeProperty].([]byte))
	if err != nil || !reflect.DeepEqual(env.names, []string{"Email", "SubjectId"}) || len(env.sealed) != 2 || len(env.sealed[0]) < 12+16 {
		t.Fatalf("envelope %+v, %v", env, err)
	}
	plain := &event.Event{MessageTemplate: "x", Properties: map[string]any{"Other": 1}}
	if got, _ := e.Protect(context.Background(), plain); got != plain {
		t.Fatal("an event without chosen fields was copied")
	}
}

// A ciphertext moved to another event, or to another field of the same
// event, fails to decrypt with an error naming the field; the other fields
// still read.
func TestEncryptMovedCiphertext(t *testing.T) {
	kr := openTestKeyring(t)
	ctx := context.Background()
	e := encryptor(t, kr)
	a, _ := e.Protect(ctx, testEvent("alice"))
	b, _ := e.Protect(ctx, testEvent("alice")) // same subject, same key: only the binding differs
	a, b = roundTrip(t, a), roundTrip(t, b)

	// To another event.
	ea, eb := storedEnvelope(t, a), storedEnvelope(t, b)
	eb.sealed[slices.Index(eb.names, "Email")] = ea.sealed[slices.Index(ea.names, "Email")]
	b.Properties[EnvelopeProperty] = encodeEnvelope(eb)
	got, err := Reveal(ctx, b, kr)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "Email" || !errors.Is(err, ErrDecrypt) {
		t.Fatalf("moved to another event: %v", err)
	}
	if _, ok := got.Properties["Email"].(Encrypted); !ok {
		t.Fatalf("the moved field reads %#v", got.Properties["Email"])
	}
	if got.Properties["When"] != "noon" {
		t.Fatalf("the other fields did not read: %v", got.Properties)
	}
	// To another field of the same event.
	ea.sealed[slices.Index(ea.names, "When")] = ea.sealed[slices.Index(ea.names, "Email")]
	a.Properties[EnvelopeProperty] = encodeEnvelope(ea)
	if _, err := Reveal(ctx, a, kr); !errors.As(err, &fe) || fe.Field != "When" || !errors.Is(err, ErrDecrypt) {
		t.Fatalf("moved to another field: %v", err)
	}
}

// storedEnvelope parses ev's envelope.
func storedEnvelope(t testing.TB, ev *event.Event) envelope {
	t.Helper()
	b, _ := ev.Properties[EnvelopeProperty].([]byte)
	env, err := parseEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// encodeEnvelope is the inverse of parseEnvelope.
func encodeEnvelope(env envelope) []byte {
	b := []byte{env.version, 0}
	if env.rendered {
		b[1] = envRendered
	}
	b = append(b, env.eid...)
	b = binary.AppendUvarint(b, uint64(len(env.keyID)))
	b = append(b, env.keyID...)
	for i, name := range env.names {
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		if env.version == envVersion {
			b = binary.AppendUvarint(b, uint64(len(env.sealed[i])))
			b = append(b, env.sealed[i]...)
		}
	}
	return b
}

// A keyring that is not the one the log was written with gives a per-field
// ErrKeyNotFound, never an empty value.
func TestRevealWrongKeyring(t *testing.T) {
	ctx := context.Background()
	out, err := encryptor(t, openTestKeyring(t)).Protect(ctx, testEvent("carol"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Reveal(ctx, roundTrip(t, out), openTestKeyring(t))
	if !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("wrong keyring: %v", err)
	}
	if _, ok := got.Properties["Email"].(Encrypted); !ok {
		t.Fatalf("Email reads %#v", got.Properties["Email"])
	}
}

// Rotation: events after Rotate use a new data key wrapped by a new
// key-encryption key version; events before it still read, also after the
// keyring is opened again.
func TestKeyringRotate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "k")
	kr, err := OpenKeyring(path, KeyringOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := encryptor(t, kr)
	before, _ := e.Protect(ctx, testEvent("dan"))
	if err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	after, _ := e.Protect(ctx, testEvent("dan"))
	id := func(ev *event.Event) string {
		env, err := parseEnvelope(ev.Properties[EnvelopeProperty].([]byte))
		if err != nil {
			t.Fatal(err)
		}
		return env.keyID
	}
	if id(before) == id(after) {
		t.Fatal("the same data key after Rotate")
	}
	kr.Close()
	kr2, err := OpenKeyring(path, KeyringOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer kr2.Close()
	for _, ev := range []*event.Event{before, after} {
		got, err := Reveal(ctx, roundTrip(t, ev), kr2)
		if err != nil || got.Properties["Email"] != "dan@example.com" {
			t.Fatalf("after reopening: %v %v", got.Properties["Email"], err)
		}
	}
	if !strings.Contains(kr2.state.Subjects[0].Data[1].Wrapped, "local:v2:") {
		t.Fatalf("the new key is not wrapped by version 2: %s", kr2.state.Subjects[0].Data[1].Wrapped)
	}
}

// Pseudonyms: stable per subject and value, different across subjects,
// one-way; the encryption stage after it finds the subject through the
// pseudonym and leaves the pseudonym in place.
func TestPseudonymize(t *testing.T) {
	ctx := context.Background()
	kr := openTestKeyring(t)
	p, _ := NewPseudonymizer(KeyOptions{Keyring: kr}, "email")
	a1, _ := p.Protect(ctx, testEvent("alice"))
	a2, _ := p.Protect(ctx, testEvent("alice"))
	b := testEvent("bob")
	b.Properties["Email"] = "alice@example.com"
	b1, _ := p.Protect(ctx, b)
	if a1.Properties["Email"] != a2.Properties["Email"] || a1.Properties["SubjectId"] != a2.Properties["SubjectId"] {
		t.Fatal("pseudonyms of one subject differ")
	}
	if a1.Properties["Email"] == b1.Properties["Email"] {
		t.Fatal("two subjects share a pseudonym of the same value")
	}
	if strings.Contains(a1.Message, "alice") {
		t.Fatalf("message %q", a1.Message)
	}
	out, err := encryptor(t, kr, "When").Protect(ctx, a1)
	if err != nil {
		t.Fatal(err)
	}
	if out.Properties["SubjectId"] != a1.Properties["SubjectId"] {
		t.Fatal("the encryption stage changed the subject's pseudonym")
	}
	// A forged pseudonym in the subject property is refused.
	forged := *a1
	tok := a1.Properties["SubjectId"].(string)
	last := byte('A')
	if tok[len(tok)-1] == 'A' {
		last = 'B'
	}
	forged.Properties = map[string]any{"SubjectId": tok[:len(tok)-1] + string(last), "When": "x"}
	if _, err := encryptor(t, kr, "When").Protect(ctx, &forged); err == nil {
		t.Fatal("a forged pseudonym was accepted")
	}
}

// The envelope property is reserved.
func TestEncryptReservedProperty(t *testing.T) {
	ev := testEvent("e")
	ev.Properties[EnvelopeProperty] = "mine"
	if _, err := encryptor(t, openTestKeyring(t)).Protect(context.Background(), ev); err == nil {
		t.Fatal("an event with the envelope property was accepted")
	}
}

// FuzzEncryptRoundTrip: any string, bytes or nesting encrypts and reads
// back equal, without a panic, through Protect and through AppendEncode,
// which write the same but for the random event ID and what it seals.
func FuzzEncryptRoundTrip(f *testing.F) {
	f.Add("alice", []byte{0xff, 0xfe}, "x", 3)
	f.Add("\xff\xfe", []byte(nil), "", 0)
	f.Add(strings.Repeat("é", 100), []byte("y"), "{SubjectId}", 50)
	kr := openTestKeyring(f)
	e := encryptor(f, kr)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, s string, b []byte, tmpl string, depth int) {
		var nested any = s
		for range depth % 200 {
			nested = map[string]any{s: nested}
		}
		ev := &event.Event{MessageTemplate: tmpl, Message: s, Properties: map[string]any{"SubjectId": s, "S": s, "B": b, "N": nested}}
		out, err := e.Protect(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		stored := roundTrip(t, out)
		direct := appendEncoded(t, e, ev) // the sink's path: no event built
		if g, w := withoutRandom(t, direct), withoutRandom(t, stored); !bytes.Equal(g, w) {
			t.Fatalf("AppendEncode wrote\n%x\nProtect and AppendEncode\n%x", g, w)
		}
		for _, stored := range []*event.Event{stored, direct} {
			back, err := Reveal(ctx, stored, kr)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range ev.Properties {
				if !reflect.DeepEqual(back.Properties[k], event.Normalize(v)) {
					t.Fatalf("%s: %#v, want %#v", k, back.Properties[k], event.Normalize(v))
				}
			}
		}
	})
}

// Huge and deep values: a 10 MB string and 1,000 levels of nesting
// encrypt and read back (the encoding stores what is deeper than its limit
// as Unsupported, as without encryption).
func TestEncryptHugeAndDeep(t *testing.T) {
	if testing.Short() {
		t.Skip("10 MB values")
	}
	kr := openTestKeyring(t)
	ctx := context.Background()
	var deep any = "leaf"
	for range 1000 {
		deep = map[string]any{"k": deep}
	}
	big := strings.Repeat("\xffa", 5<<20)
	ev := &event.Event{Properties: map[string]any{"Big": big, "Deep": deep}}
	out, err := encryptor(t, kr).Protect(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Reveal(ctx, roundTrip(t, out), kr)
	if err != nil {
		t.Fatal(err)
	}
	if back.Properties["Big"] != big || !reflect.DeepEqual(back.Properties["Deep"], event.Normalize(deep)) {
		t.Fatal("huge or deep value did not read back")
	}
}

// oldForHoles is the first, byte-at-a-time forHoles: FuzzForHoles checks
// that the faster one renders every template the same.
func oldForHoles(tmpl string, name func(string), emit func(lit, hole, name string)) {
	var lit strings.Builder
	for i := 0; i < len(tmpl); {
		c := tmpl[i]
		switch {
		case (c == '{' || c == '}') && i+1 < len(tmpl) && tmpl[i+1] == c:
			lit.WriteByte(c)
			i += 2
			continue
		case c == '{':
			end := strings.IndexByte(tmpl[i:], '}')
			if end < 0 {
				break
			}
			hole := tmpl[i : i+end+1]
			n := strings.TrimLeft(hole[1:len(hole)-1], "@$")
			if j := strings.IndexAny(n, ",:"); j >= 0 {
				n = n[:j]
			}
			name(n)
			if emit != nil {
				emit(lit.String(), hole, n)
				lit.Reset()
			}
			i += end + 1
			continue
		}
		lit.WriteByte(c)
		i++
	}
	if emit != nil {
		emit(lit.String(), "", "")
	}
}

// FuzzForHoles: forHoles finds the same holes and renders the same text as
// the first implementation, for any template.
func FuzzForHoles(f *testing.F) {
	for _, s := range []string{"", "User {UserId} did {@Action,5:x} on {$R}", "{{a}} }} {{{b}}} {c", "}{", "{@$}", "a{b{c}d}e", "{x:y,z}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tmpl string) {
		var want, got strings.Builder
		var wantNames, gotNames []string
		oldForHoles(tmpl, func(n string) { wantNames = append(wantNames, n) }, func(lit, hole, _ string) {
			want.WriteString(lit)
			if hole != "" {
				want.WriteString("<" + hole + ">")
			}
		})
		forHoles(tmpl, func(lit, hole, name string) {
			got.WriteString(lit)
			if hole != "" {
				got.WriteString("<" + hole + ">")
				gotNames = append(gotNames, name)
			}
		})
		if got.String() != want.String() || !reflect.DeepEqual(gotNames, wantNames) {
			t.Fatalf("%q: rendered %q %q, want %q %q", tmpl, got.String(), gotNames, want.String(), wantNames)
		}
	})
}

// The stage makes few allocations per event: Protect the event, its map,
// the envelope holding every ciphertext and its boxing (4; the first
// version made 44, the second 13), AppendEncode, the sink's path, none.
// The bounds leave room for a sync.Pool that drops its scratch (one
// allocation), as it does at random under the race detector.
func TestEncryptAllocations(t *testing.T) {
	kr := openTestKeyring(t)
	e, err := NewEncryptor(KeyOptions{Keyring: kr, SubjectProperty: "UserId"})
	if err != nil {
		t.Fatal(err)
	}
	ev := benchref.Event()
	ctx := context.Background()
	buf, err := e.AppendEncode(ctx, nil, ev) // makes the subject's key
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := e.Protect(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}); n > 10 {
		t.Fatalf("Protect: %v allocations per event, want at most 10", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		if buf, err = e.AppendEncode(ctx, buf[:0], ev); err != nil {
			t.Fatal(err)
		}
	}); n > 1 {
		t.Fatalf("AppendEncode: %v allocations per event, want 0 (at most 1 under the race detector)", n)
	}
}

// Each value is sealed under its own nonce, the event ID's first 12 bytes
// plus its index (carrying across all 96 bits), stored before its
// ciphertext; no two values of an event share one.
func TestEncryptNonces(t *testing.T) {
	eid := []byte{0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 9, 9, 9, 9}
	var n [12]byte
	fieldNonce(n[:], eid, 3)
	if want := []byte{0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1}; !reflect.DeepEqual(n[:], want) {
		t.Fatalf("nonce %x, want %x", n, want)
	}
	all := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	fieldNonce(n[:], all, 1)
	if n != [12]byte{} {
		t.Fatalf("nonce %x, want it to wrap to zero", n)
	}

	kr := openTestKeyring(t)
	out, err := encryptor(t, kr).Protect(context.Background(), testEvent("frank"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := parseEnvelope(out.Properties[EnvelopeProperty].([]byte))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[[12]byte]bool{}
	for i, name := range env.names {
		fieldNonce(n[:], env.eid, i)
		sealed := env.sealed[i]
		if !reflect.DeepEqual(sealed[:12], n[:]) {
			t.Fatalf("%s: nonce %x, want %x", name, sealed[:12], n)
		}
		if seen[n] {
			t.Fatalf("%s: nonce %x used twice", name, n)
		}
		seen[n] = true
	}
}

// Events of the first format (each value "enc:<key ID>:<base64url>", the
// envelope a map) still read back.
func TestRevealFirstFormat(t *testing.T) {
	ctx := context.Background()
	kr := openTestKeyring(t)
	dk, _, err := kr.forSubject(ctx, "gina")
	if err != nil {
		t.Fatal(err)
	}
	_, aead, err := kr.unwrap(ctx, dk)
	if err != nil {
		t.Fatal(err)
	}
	eid := "AAAAAAAAAAAAAAAAAAAAAA"
	token := func(name string, v any) string {
		pt, _ := appendValue(nil, v)
		nonce := make([]byte, 12)
		nonce[11] = byte(len(name))
		return encPrefix + dk.rec.ID + ":" + b64.EncodeToString(aead.Seal(nonce, nonce, pt, appendAD1(nil, eid, name, dk.rec.ID)))
	}
	ev := &event.Event{
		MessageTemplate: "{SubjectId} wrote {Email}",
		Message:         "<encrypted key=" + dk.rec.ID + "> wrote <encrypted key=" + dk.rec.ID + ">",
		Properties: map[string]any{
			"SubjectId": token("SubjectId", "gina"), "Email": token("Email", "g@example.com"), "When": "noon",
			EnvelopeProperty: map[string]any{"id": eid, "encrypted": []any{"Email", "SubjectId"}, "message": true},
		},
	}
	got, err := Reveal(ctx, roundTrip(t, ev), kr)
	if err != nil {
		t.Fatal(err)
	}
	if got.Properties["Email"] != "g@example.com" || got.Properties["SubjectId"] != "gina" || got.Message != "gina wrote g@example.com" {
		t.Fatalf("read back %v %q", got.Properties, got.Message)
	}
	blind, err := Reveal(ctx, ev, nil)
	if err != nil || blind.Properties["Email"] != (Encrypted{KeyID: dk.rec.ID}) {
		t.Fatalf("without keys: %v %v", blind.Properties["Email"], err)
	}
}

// Events of the second format (each value's nonce | ciphertext | tag in
// its property, the envelope holding only the names) still read back.
func TestRevealSecondFormat(t *testing.T) {
	ctx := context.Background()
	kr := openTestKeyring(t)
	out, err := encryptor(t, kr).Protect(ctx, testEvent("ida"))
	if err != nil {
		t.Fatal(err)
	}
	env := storedEnvelope(t, out)
	_, aead, err := kr.dataKey(ctx, "ida")
	if err != nil {
		t.Fatal(err)
	}
	old := *out
	old.Properties = maps.Clone(out.Properties)
	for i, name := range env.names { // sealed again as the second format did
		pt, err := aead.Open(nil, env.sealed[i][:12], env.sealed[i][12:], appendAD(nil, envVersion, env.eid, name, env.keyID))
		if err != nil {
			t.Fatal(err)
		}
		nonce := env.sealed[i][:12]
		old.Properties[name] = aead.Seal(slices.Clone(nonce), nonce, pt, appendAD(nil, envNamesOnly, env.eid, name, env.keyID))
	}
	third := env.sealed
	env.version, env.sealed = envNamesOnly, nil
	old.Properties[EnvelopeProperty] = encodeEnvelope(env)
	got, err := Reveal(ctx, roundTrip(t, &old), kr)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Reveal(ctx, roundTrip(t, out), kr)
	if !reflect.DeepEqual(got.Properties["Email"], "ida@example.com") || got.Message != want.Message || !reflect.DeepEqual(got.Properties["Nested"], want.Properties["Nested"]) {
		t.Fatalf("read back %v %q", got.Properties, got.Message)
	}
	// A value sealed for the third format does not read in the second:
	// the additional data names the format.
	old.Properties["Email"] = third[slices.Index(env.names, "Email")]
	var fe *FieldError
	if _, err := Reveal(ctx, &old, kr); !errors.As(err, &fe) || fe.Field != "Email" || !errors.Is(err, ErrDecrypt) {
		t.Fatalf("a value of the third format read as the second's: %v", err)
	}
}

// An envelope that is not one (damaged, or written by hand) is an error
// matching ErrDecrypt, never a panic; the event comes back as it is.
func FuzzRevealEnvelope(f *testing.F) {
	kr := openTestKeyring(f)
	out, err := encryptor(f, kr).Protect(context.Background(), testEvent("hal"))
	if err != nil {
		f.Fatal(err)
	}
	good := out.Properties[EnvelopeProperty].([]byte)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte{envVersion, envRendered})
	f.Fuzz(func(t *testing.T, env []byte) {
		ev := *out
		ev.Properties = maps.Clone(out.Properties)
		ev.Properties[EnvelopeProperty] = env
		got, err := Reveal(context.Background(), &ev, kr)
		if got == nil {
			t.Fatal("no event")
		}
		if _, perr := parseEnvelope(env); perr != nil && !errors.Is(err, ErrDecrypt) {
			t.Fatalf("envelope %x: %v", env, err)
		}
	})
}

// BenchmarkEncryptorProtect measures the encryption stage alone on the
// ~256-byte event of the root package's BenchmarkEncryption, every
// property encrypted under one subject's key.
func BenchmarkEncryptorProtect(b *testing.B) {
	kr := openTestKeyring(b)
	e, err := NewEncryptor(KeyOptions{Keyring: kr, SubjectProperty: "UserId"})
	if err != nil {
		b.Fatal(err)
	}
	ev := benchref.Event()
	ctx := context.Background()
	var buf []byte
	b.Run("protect+encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out, err := e.Protect(ctx, ev)
			if err != nil {
				b.Fatal(err)
			}
			if buf, err = event.AppendEncode(buf[:0], out); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(buf)), "bytes/event")
	})
	b.Run("append-encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if buf, err = e.AppendEncode(ctx, buf[:0], ev); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(buf)), "bytes/event")
	})
}
