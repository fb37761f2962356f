package integrity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Fixed test keys. cpKeyB has the same name as cpKeyA (as a later epoch's
// key would); cpKeyO belongs to another log.
const (
	cpOrigin = "example.com/audit"
	cpSKeyA  = "PRIVATE+KEY+example.com/audit+c0b321e4+Aaocvyn5aIIGedlx8Vz6yTUadbi9l6awLcxx5CHvrrRk"
	cpVKeyA  = "example.com/audit+c0b321e4+AS22ltSGmtuOWgx+m75y+Hth9O7BnQhmZNe+Q+HUVncu"
	cpSKeyB  = "PRIVATE+KEY+example.com/audit+0396918b+AQKTCME/7uITTkP2pyEmFQXMHDIrVrqsrj+F8pLqKq0G"
	cpVKeyB  = "example.com/audit+0396918b+AfNXHaVoGtOLVcorCM7HH4BU/yGULBLYkgaU48y3EEED"
	cpSKeyO  = "PRIVATE+KEY+other.example/log+6962a6fe+AQAiJMX5eRfBFkowmbO3gNgw3xn6vFORYHhEx12TjAzk"
	cpVKeyO  = "other.example/log+6962a6fe+AX9m+GnWMvC/DCwuLbKNI055XrkS9KMNLCNzfLTQJolw"
)

func cpSigner(t testing.TB, skey string) note.Signer {
	t.Helper()
	s, err := NewSigner(skey)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	return s
}

func cpVerifiers(t testing.TB, vkeys ...string) note.Verifiers {
	t.Helper()
	vs, err := NewVerifiers(vkeys...)
	if err != nil {
		t.Fatalf("NewVerifiers: %v", err)
	}
	return vs
}

func cpRoot(b byte) Hash {
	var h Hash
	for i := range h {
		h[i] = b + byte(i)
	}
	return h
}

func cpSample() Checkpoint {
	return Checkpoint{
		Origin: cpOrigin,
		Size:   1234,
		Root:   cpRoot(7),
		Time:   time.Date(2025, 3, 4, 5, 6, 7, 890000000, time.UTC),
		Epoch:  2,
	}
}

func cpEqual(a, b Checkpoint) bool {
	return a.Origin == b.Origin && a.Size == b.Size && a.Root == b.Root && a.Time.Equal(b.Time) && a.Epoch == b.Epoch
}

// wantReason fails unless err is a *CheckpointError with reason r that
// matches ErrCheckpoint.
func wantReason(t *testing.T, err error, r Reason) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want reason %s", r)
	}
	if !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("err = %v does not match ErrCheckpoint", err)
	}
	var ce *CheckpointError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v is not a *CheckpointError", err)
	}
	if ce.Reason != r {
		t.Fatalf("reason = %s (%v), want %s", ce.Reason, err, r)
	}
	if ce.Detail == "" || !strings.Contains(err.Error(), string(r)) {
		t.Fatalf("error %q should name its reason and explain it", err)
	}
}

func TestCheckpointBodyFormat(t *testing.T) {
	c := cpSample()
	want := "example.com/audit\n1234\n" + c.Root.String() + "\ntime 2025-03-04T05:06:07.89Z\nepoch 2\n"
	if got := c.Body(); got != want {
		t.Fatalf("Body() = %q, want %q", got, want)
	}
	c.Time, c.Epoch = time.Time{}, 0
	want = "example.com/audit\n1234\n" + c.Root.String() + "\n"
	if got := c.Body(); got != want {
		t.Fatalf("Body() without extensions = %q, want %q", got, want)
	}
	// A time in another zone is written in UTC.
	c.Time = time.Date(2025, 3, 4, 7, 6, 7, 0, time.FixedZone("x", 2*3600))
	if got := c.Body(); !strings.Contains(got, "time 2025-03-04T05:06:07Z\n") {
		t.Fatalf("Body() = %q, want the time in UTC", got)
	}
}

func TestCheckpointBodyRoundTrip(t *testing.T) {
	base := cpSample()
	cases := []Checkpoint{
		base,
		{Origin: cpOrigin, Size: 0, Root: EmptyRoot()},
		{Origin: cpOrigin, Size: maxTreeSize, Root: cpRoot(1), Epoch: 1<<63 - 1},
		{Origin: "log with spaces", Size: 1, Root: cpRoot(2), Time: time.Unix(0, 1)},
		{Origin: cpOrigin, Size: 5, Root: cpRoot(3), Epoch: 9},
		{Origin: cpOrigin, Size: 5, Root: cpRoot(3), Time: time.Date(2020, 1, 1, 0, 0, 0, 0, time.Local)},
	}
	for _, c := range cases {
		got, err := ParseCheckpointBody(c.Body())
		if err != nil {
			t.Fatalf("ParseCheckpointBody(%q): %v", c.Body(), err)
		}
		if !cpEqual(got, c) {
			t.Fatalf("round trip of %q gave %+v, want %+v", c.Body(), got, c)
		}
		if got.Body() != c.Body() {
			t.Fatalf("body changed in round trip: %q -> %q", c.Body(), got.Body())
		}
	}
}

func TestParseCheckpointBodyRejects(t *testing.T) {
	root := cpRoot(7).String()
	head := cpOrigin + "\n12\n" + root + "\n"
	cases := map[string]string{
		"empty":                 "",
		"no final newline":      cpOrigin + "\n12\n" + root,
		"two lines":             cpOrigin + "\n12\n",
		"empty origin":          "\n12\n" + root + "\n",
		"control in origin":     "exa\tmple\n12\n" + root + "\n",
		"invalid utf8":          "ex\xffample\n12\n" + root + "\n",
		"empty size":            cpOrigin + "\n\n" + root + "\n",
		"leading zero size":     cpOrigin + "\n012\n" + root + "\n",
		"plus size":             cpOrigin + "\n+12\n" + root + "\n",
		"negative size":         cpOrigin + "\n-1\n" + root + "\n",
		"hex size":              cpOrigin + "\n0x10\n" + root + "\n",
		"space in size":         cpOrigin + "\n12 \n" + root + "\n",
		"size 2^63":             cpOrigin + "\n9223372036854775808\n" + root + "\n",
		"size overflow":         cpOrigin + "\n18446744073709551616\n" + root + "\n",
		"short root":            cpOrigin + "\n12\n" + base64.StdEncoding.EncodeToString(make([]byte, 31)) + "\n",
		"long root":             cpOrigin + "\n12\n" + base64.StdEncoding.EncodeToString(make([]byte, 33)) + "\n",
		"unpadded root":         cpOrigin + "\n12\n" + base64.RawStdEncoding.EncodeToString(make([]byte, 32)) + "\n",
		"url base64 root":       cpOrigin + "\n12\n" + strings.Repeat("_", 43) + "=\n",
		"non-canonical root":    cpOrigin + "\n12\n" + strings.Repeat("A", 42) + "B=\n",
		"root with cr":          cpOrigin + "\n12\n" + root[:20] + "\r" + root[21:] + "\n",
		"unknown extension":     head + "witness foo\n",
		"empty extension line":  head + "\n",
		"duplicate time":        head + "time 2025-01-01T00:00:00Z\ntime 2025-01-01T00:00:00Z\n",
		"duplicate epoch":       head + "epoch 1\nepoch 1\n",
		"epoch before time":     head + "epoch 1\ntime 2025-01-01T00:00:00Z\n",
		"epoch 0":               head + "epoch 0\n",
		"epoch leading zero":    head + "epoch 01\n",
		"epoch not a number":    head + "epoch one\n",
		"epoch missing value":   head + "epoch\n",
		"time not utc":          head + "time 2025-01-01T02:00:00+02:00\n",
		"time trailing zeros":   head + "time 2025-01-01T00:00:00.500Z\n",
		"time garbage":          head + "time yesterday\n",
		"time zero":             head + "time 0001-01-01T00:00:00Z\n",
		"time missing value":    head + "time\n",
		"time two spaces":       head + "time  2025-01-01T00:00:00Z\n",
		"crlf":                  cpOrigin + "\r\n12\r\n" + root + "\r\n",
		"too long":              head + strings.Repeat("x", MaxCheckpointSize) + "\n",
		"signature block in it": head + "\n— " + cpOrigin + " AAAA\n",
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseCheckpointBody(body)
			wantReason(t, err, ReasonMalformed)
		})
	}
}

func TestSignOpenCheckpoint(t *testing.T) {
	a := cpSigner(t, cpSKeyA)
	trusted := cpVerifiers(t, cpVKeyA)
	for _, c := range []Checkpoint{cpSample(), {Origin: cpOrigin, Size: 0, Root: EmptyRoot()}} {
		msg, err := SignCheckpoint(c, a)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(msg, []byte(c.Body()+"\n— "+cpOrigin+" ")) {
			t.Fatalf("signed note %q does not start with body, blank line, signature", msg)
		}
		got, err := OpenCheckpoint(msg, trusted)
		if err != nil {
			t.Fatalf("OpenCheckpoint: %v", err)
		}
		if !cpEqual(got, c) {
			t.Fatalf("OpenCheckpoint = %+v, want %+v", got, c)
		}
		// The x/mod verifier accepts it too: the format is standard.
		v, err := note.NewVerifier(cpVKeyA)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
			t.Fatalf("note.Open: %v", err)
		}
	}
}

func TestSignCheckpointRefuses(t *testing.T) {
	a := cpSigner(t, cpSKeyA)
	o := cpSigner(t, cpSKeyO)
	c := cpSample()
	if _, err := SignCheckpoint(c); err == nil {
		t.Error("signing with no signer succeeded")
	}
	if _, err := SignCheckpoint(c, o); err == nil {
		t.Error("signing with no signer named after the origin succeeded")
	}
	if _, err := SignCheckpoint(c, o, a); err != nil {
		t.Errorf("signing with the origin's key and a second key: %v", err)
	}
	bad := []Checkpoint{
		{Origin: "", Size: 1, Root: cpRoot(1)},
		{Origin: cpOrigin + "\nx", Size: 1, Root: cpRoot(1)},
		{Origin: cpOrigin, Size: 1 << 63, Root: cpRoot(1)},
		{Origin: cpOrigin, Size: 1, Root: cpRoot(1), Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Origin: cpOrigin, Size: 1, Root: cpRoot(1), Time: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, c := range bad {
		if msg, err := SignCheckpoint(c, a); err == nil {
			t.Errorf("SignCheckpoint(%+v) = %q, want an error", c, msg)
		}
	}
}

func TestOpenCheckpointUnsigned(t *testing.T) {
	msg, err := SignCheckpoint(cpSample(), cpSigner(t, cpSKeyA))
	if err != nil {
		t.Fatal(err)
	}
	trusted := cpVerifiers(t, cpVKeyA)
	body := cpSample().Body()
	for _, m := range []string{body, body + "\n", body + "\n\n"} {
		_, err := OpenCheckpoint([]byte(m), trusted)
		wantReason(t, err, ReasonUnsigned)
	}
	// Strip the signature line from a signed note.
	i := bytes.Index(msg, []byte("\n\n"))
	_, err = OpenCheckpoint(msg[:i+2], trusted)
	wantReason(t, err, ReasonUnsigned)
}

func TestOpenCheckpointUnknownKey(t *testing.T) {
	c := cpSample()
	b := cpSigner(t, cpSKeyB)
	msg, err := SignCheckpoint(c, b)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenCheckpoint(msg, cpVerifiers(t, cpVKeyA))
	wantReason(t, err, ReasonUnknownKey)
	if !strings.Contains(err.Error(), "0396918b") {
		t.Errorf("error %q should name the untrusted key", err)
	}
	_, err = OpenCheckpoint(msg, nil)
	wantReason(t, err, ReasonUnknownKey)

	// A signature by an unknown key beside a trusted one is ignored.
	msg, err = SignCheckpoint(c, cpSigner(t, cpSKeyO), b, cpSigner(t, cpSKeyA))
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenCheckpoint(msg, cpVerifiers(t, cpVKeyA))
	if err != nil || !cpEqual(got, c) {
		t.Fatalf("OpenCheckpoint with extra unknown signatures = %+v, %v", got, err)
	}
}

// flipSignature flips one bit of the signature bytes (not the key ID) of
// the first signature line.
func flipSignature(t *testing.T, msg []byte) []byte {
	t.Helper()
	i := bytes.Index(msg, []byte("\n\n— "))
	line := msg[i+2:]
	end := bytes.IndexByte(line, '\n')
	sp := bytes.IndexByte(line, ' ') + 1
	sp += bytes.IndexByte(line[sp:], ' ') + 1
	raw, err := base64.StdEncoding.DecodeString(string(line[sp:end]))
	if err != nil {
		t.Fatal(err)
	}
	raw[10] ^= 0x01
	out := append([]byte{}, msg[:i+2]...)
	out = append(out, line[:sp]...)
	out = append(out, base64.StdEncoding.EncodeToString(raw)...)
	return append(out, line[end:]...)
}

func TestOpenCheckpointBadSignature(t *testing.T) {
	c := cpSample()
	a := cpSigner(t, cpSKeyA)
	trusted := cpVerifiers(t, cpVKeyA)
	msg, err := SignCheckpoint(c, a)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenCheckpoint(flipSignature(t, msg), trusted)
	wantReason(t, err, ReasonBadSignature)

	// Altering the body under an intact signature.
	altered := bytes.Replace(msg, []byte("\n1234\n"), []byte("\n1235\n"), 1)
	_, err = OpenCheckpoint(altered, trusted)
	wantReason(t, err, ReasonBadSignature)

	// A bad signature by a trusted key rejects the note even when
	// another trusted signature verifies, whichever comes first.
	msgB, err := SignCheckpoint(c, cpSigner(t, cpSKeyB))
	if err != nil {
		t.Fatal(err)
	}
	both := cpVerifiers(t, cpVKeyA, cpVKeyB)
	badB := flipSignature(t, msgB)
	sigA := msg[bytes.Index(msg, []byte("\n\n"))+2:]
	_, err = OpenCheckpoint(append(bytes.Clone(badB), sigA...), both)
	wantReason(t, err, ReasonBadSignature)
}

// collidingSigner signs with one key while claiming another key's name and
// key ID: what an attacker who found a key-ID collision could do.
type collidingSigner struct {
	name string
	id   uint32
	key  ed25519.PrivateKey
}

func (s collidingSigner) Name() string                    { return s.name }
func (s collidingSigner) KeyHash() uint32                 { return s.id }
func (s collidingSigner) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.key, msg), nil }

// fakeVerifier claims a name and key ID and accepts every signature.
type fakeVerifier struct {
	name string
	id   uint32
}

func (v fakeVerifier) Name() string            { return v.name }
func (v fakeVerifier) KeyHash() uint32         { return v.id }
func (v fakeVerifier) Verify(_, _ []byte) bool { return true }

func TestOpenCheckpointKeyIDCollision(t *testing.T) {
	c := cpSample()
	a := cpSigner(t, cpSKeyA)
	trusted := cpVerifiers(t, cpVKeyA)
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	forger := collidingSigner{name: a.Name(), id: a.KeyHash(), key: priv}

	// Signed by the colliding key alone.
	msg, err := note.Sign(&note.Note{Text: c.Body()}, forger)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenCheckpoint(msg, trusted)
	wantReason(t, err, ReasonBadSignature)

	// The genuine signature first, the colliding one second: note.Open
	// skips a repeated key ID, OpenCheckpoint must not.
	good, err := SignCheckpoint(c, a)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := note.Sign(&note.Note{Text: c.Body()}, forger)
	if err != nil {
		t.Fatal(err)
	}
	combined := append(bytes.Clone(good), forged[bytes.Index(forged, []byte("\n\n"))+2:]...)
	if _, err := note.Open(combined, note.VerifierList(mustNoteVerifier(t, cpVKeyA))); err != nil {
		t.Fatalf("note.Open unexpectedly rejects the repeated signature itself: %v", err)
	}
	_, err = OpenCheckpoint(combined, trusted)
	wantReason(t, err, ReasonBadSignature)
	// An identical repeated signature is harmless.
	again := append(bytes.Clone(good), good[bytes.Index(good, []byte("\n\n"))+2:]...)
	if _, err := OpenCheckpoint(again, trusted); err != nil {
		t.Fatalf("repeated identical signature: %v", err)
	}

	// A public key string with the trusted key's name and ID but other
	// key bytes is refused when building the trusted set.
	pub := priv.Public().(ed25519.PublicKey)
	forgedVKey := cpOrigin + "+c0b321e4+" + base64.StdEncoding.EncodeToString(append([]byte{1}, pub...))
	if _, err := NewVerifiers(cpVKeyA, forgedVKey); err == nil || !strings.Contains(err.Error(), "collision") {
		t.Fatalf("NewVerifiers with a key-ID collision: err = %v, want a collision error", err)
	}
	if _, err := NewVerifiers(forgedVKey, cpVKeyA); err == nil || !strings.Contains(err.Error(), "collision") {
		t.Fatalf("NewVerifiers with a key-ID collision (other order): err = %v", err)
	}
	// And a trusted set that holds two keys under one name and ID (here
	// built directly) cannot vouch for either.
	ambiguous := note.VerifierList(mustNoteVerifier(t, cpVKeyA), fakeVerifier{a.Name(), a.KeyHash()})
	_, err = OpenCheckpoint(good, ambiguous)
	wantReason(t, err, ReasonKeyCollision)
}

func mustNoteVerifier(t testing.TB, vkey string) note.Verifier {
	t.Helper()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOpenCheckpointWrongOrigin(t *testing.T) {
	a := cpSigner(t, cpSKeyA)
	c := cpSample()
	c.Origin = "example.com/other"
	msg, err := note.Sign(&note.Note{Text: c.Body()}, a)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenCheckpoint(msg, cpVerifiers(t, cpVKeyA))
	wantReason(t, err, ReasonWrongOrigin)

	// Signed by the trusted key of another log, under that log's origin
	// mismatch too.
	o := cpSigner(t, cpSKeyO)
	msg, err = note.Sign(&note.Note{Text: cpSample().Body()}, o)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenCheckpoint(msg, cpVerifiers(t, cpVKeyA, cpVKeyO))
	wantReason(t, err, ReasonWrongOrigin)
}

func TestOpenCheckpointMalformed(t *testing.T) {
	a := cpSigner(t, cpSKeyA)
	trusted := cpVerifiers(t, cpVKeyA)
	good, err := SignCheckpoint(cpSample(), a)
	if err != nil {
		t.Fatal(err)
	}
	// A well-signed note whose body is not a checkpoint.
	notCP, err := note.Sign(&note.Note{Text: cpOrigin + "\nhello\n"}, a)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":             nil,
		"garbage":           []byte("not a note"),
		"no final newline":  good[:len(good)-1],
		"control character": append([]byte("\x01"), good...),
		"bad signature line": append(bytes.Clone(good[:bytes.Index(good, []byte("\n\n"))+2]),
			[]byte("- example.com/audit AAAA\n")...),
		"not a checkpoint": notCP,
		"too large":        append(bytes.Repeat([]byte("x"), MaxCheckpointSize), good...),
	}
	for name, msg := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := OpenCheckpoint(msg, trusted)
			wantReason(t, err, ReasonMalformed)
		})
	}
}
