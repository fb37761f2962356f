package integrity

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// Checkpoint is a C2SP tlog-checkpoint: a commitment by the log's key to the
// tree of its first Size records.
//
// Its body (see Body) is the origin line, the tree size in decimal and the
// standard base64 root hash, each ending in a newline, followed by this
// package's extension lines: "time <RFC 3339 UTC>" when Time is set and
// "epoch <n>" when Epoch is not zero, in that order.
type Checkpoint struct {
	// Origin names the log. By the C2SP convention it equals the name of
	// the key that signs the checkpoint.
	Origin string
	// Size is the number of records the tree holds.
	Size uint64
	// Root is the RFC 6962 root of the tree of the first Size records.
	Root Hash
	// Time is when the checkpoint was made (optional: the zero Time
	// writes no time line). It is written in UTC with nanoseconds.
	Time time.Time
	// Epoch is the forward-secure key epoch whose key signs the
	// checkpoint (see EpochKeys); zero writes no epoch line.
	Epoch uint64
}

// MaxCheckpointSize is the largest signed note (body and signatures) that
// OpenCheckpoint, OpenRotation and CheckpointLog accept.
const MaxCheckpointSize = 64 << 10

// maxTreeSize is the largest tree size a checkpoint may state: sizes must
// fit an int64, as file offsets and counts elsewhere do.
const maxTreeSize = math.MaxInt64

// Reason says why a checkpoint or a key rotation statement was rejected.
// The strings are stable: tools may match on them.
type Reason string

// Reasons for rejecting a checkpoint or a rotation statement.
const (
	// ReasonMalformed: the note or its body does not parse, or is not in
	// canonical form.
	ReasonMalformed Reason = "malformed"
	// ReasonUnsigned: the note carries no signature line at all (it was
	// never signed, or its signatures were stripped).
	ReasonUnsigned Reason = "unsigned"
	// ReasonUnknownKey: every signature is by a key that is not trusted.
	ReasonUnknownKey Reason = "unknown-key"
	// ReasonBadSignature: a signature names a trusted key (name and key
	// ID) but does not verify with it: it was forged or altered, the text
	// was altered, or a different key shares the trusted key's ID.
	ReasonBadSignature Reason = "bad-signature"
	// ReasonWrongOrigin: the body's origin is not the name of the trusted
	// key that signed it.
	ReasonWrongOrigin Reason = "wrong-origin"
	// ReasonKeyCollision: the trusted key set could not name a single key
	// for a signature, for instance because it holds two different keys
	// with the same name and key ID.
	ReasonKeyCollision Reason = "key-collision"
	// ReasonUnknownEpoch: a checkpoint claims a key epoch that the
	// rotation statements at hand do not reach, so no key can be
	// established for it from the genesis key.
	ReasonUnknownEpoch Reason = "unknown-epoch"
)

// CheckpointError is the error returned for a rejected checkpoint or key
// rotation statement. It matches ErrCheckpoint with errors.Is.
type CheckpointError struct {
	Reason Reason // what kind of rejection
	Detail string // what exactly was wrong, for people
}

// Error describes the rejection.
func (e *CheckpointError) Error() string {
	return fmt.Sprintf("%v (%s): %s", ErrCheckpoint, e.Reason, e.Detail)
}

// Is reports whether target is ErrCheckpoint.
func (e *CheckpointError) Is(target error) bool { return target == ErrCheckpoint }

func cpErr(r Reason, format string, args ...any) *CheckpointError {
	return &CheckpointError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// Body returns the checkpoint's note text. It is canonical: a body that
// ParseCheckpointBody accepts is exactly the Body of what it returns.
func (c Checkpoint) Body() string {
	var b strings.Builder
	b.WriteString(c.Origin)
	b.WriteByte('\n')
	b.WriteString(strconv.FormatUint(c.Size, 10))
	b.WriteByte('\n')
	b.WriteString(c.Root.String())
	b.WriteByte('\n')
	if !c.Time.IsZero() {
		b.WriteString("time ")
		b.WriteString(c.Time.UTC().Format(time.RFC3339Nano))
		b.WriteByte('\n')
	}
	if c.Epoch != 0 {
		b.WriteString("epoch ")
		b.WriteString(strconv.FormatUint(c.Epoch, 10))
		b.WriteByte('\n')
	}
	return b.String()
}

// ParseCheckpointBody parses a checkpoint body (a note's text, without the
// signatures). It is strict: the origin must be non-empty UTF-8 without
// control characters; the size a canonical decimal (no sign, no leading
// zeros) of at most 2^63-1; the root exactly 32 bytes in canonical standard
// base64. Extension lines must be this package's: "time" (RFC 3339 in UTC,
// as Body writes it) and then "epoch" (a canonical decimal above zero), each
// at most once.
//
// Unknown extension lines are rejected rather than ignored (C2SP lets
// clients ignore them): only this package writes these checkpoints, and a
// verifier that cannot interpret a signed statement should say so instead
// of passing it as understood. A later format that adds lines will
// therefore be refused by this version, loudly.
func ParseCheckpointBody(text string) (Checkpoint, error) {
	var c Checkpoint
	bad := func(format string, args ...any) (Checkpoint, error) {
		return Checkpoint{}, cpErr(ReasonMalformed, "checkpoint body: "+format, args...)
	}
	if len(text) > MaxCheckpointSize {
		return bad("longer than %d bytes", MaxCheckpointSize)
	}
	if !strings.HasSuffix(text, "\n") {
		return bad("does not end in a newline")
	}
	if !utf8.ValidString(text) {
		return bad("not valid UTF-8")
	}
	lines := strings.Split(text[:len(text)-1], "\n")
	if len(lines) < 3 {
		return bad("has %d lines, want at least origin, size and root", len(lines))
	}
	c.Origin = lines[0]
	if c.Origin == "" {
		return bad("empty origin")
	}
	if strings.ContainsFunc(c.Origin, isControl) {
		return bad("origin contains a control character")
	}
	size, err := parseDecimal(lines[1])
	if err != nil {
		return bad("tree size %q: %v", lines[1], err)
	}
	c.Size = size
	if c.Root, err = parseRoot(lines[2]); err != nil {
		return bad("root %q: %v", lines[2], err)
	}
	var haveTime, haveEpoch bool
	for _, ln := range lines[3:] {
		key, val, _ := strings.Cut(ln, " ")
		switch key {
		case "time":
			if haveTime {
				return bad("more than one time line")
			}
			haveTime = true
			t, err := time.Parse(time.RFC3339Nano, val)
			if err != nil || t.IsZero() {
				return bad("time line %q is not an RFC 3339 time", ln)
			}
			c.Time = t.UTC()
			if c.Time.Format(time.RFC3339Nano) != val {
				return bad("time line %q is not in canonical form (UTC, %s)", ln, time.RFC3339Nano)
			}
		case "epoch":
			if haveEpoch {
				return bad("more than one epoch line")
			}
			haveEpoch = true
			e, err := parseDecimal(val)
			if err != nil {
				return bad("epoch line %q: %v", ln, err)
			}
			if e == 0 {
				return bad("epoch line %q: epoch 0 is written as no epoch line", ln)
			}
			c.Epoch = e
		case "":
			return bad("empty line")
		default:
			return bad("unknown extension line %q (written by a newer version?)", ln)
		}
	}
	if c.Body() != text {
		return bad("not in canonical form (extension lines must be time, then epoch)")
	}
	return c, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// parseDecimal parses a canonical unsigned decimal of at most 2^63-1.
func parseDecimal(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("empty number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a decimal number")
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, errors.New("leading zero")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > maxTreeSize {
		return 0, errors.New("larger than 2^63-1")
	}
	return n, nil
}

// parseRoot decodes a canonical standard base64 encoding of a 32-byte hash.
func parseRoot(s string) (Hash, error) {
	var h Hash
	if len(s) != base64.StdEncoding.EncodedLen(len(h)) {
		return h, fmt.Errorf("want %d base64 characters for 32 bytes, have %d", base64.StdEncoding.EncodedLen(len(h)), len(s))
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != len(h) || base64.StdEncoding.EncodeToString(b) != s {
		return h, errors.New("not canonical standard base64 of 32 bytes")
	}
	copy(h[:], b)
	return h, nil
}

// SignCheckpoint signs c's body with each signer and returns the signed
// note. One signer must be named c.Origin (the log's key; others, such as
// witnesses, may be added). It refuses a checkpoint whose body would not
// parse back to c (an origin with control characters, a time before year 0
// or after 9999, a size above 2^63-1).
func SignCheckpoint(c Checkpoint, signers ...note.Signer) ([]byte, error) {
	body := c.Body()
	back, err := ParseCheckpointBody(body)
	if err != nil {
		return nil, fmt.Errorf("integrity: cannot sign checkpoint: %w", err)
	}
	if back.Origin != c.Origin || back.Size != c.Size || back.Root != c.Root || !back.Time.Equal(c.Time) || back.Epoch != c.Epoch {
		return nil, errors.New("integrity: cannot sign checkpoint: its body does not parse back to it")
	}
	if !signedByOrigin(c.Origin, signers) {
		return nil, fmt.Errorf("integrity: cannot sign checkpoint: no signer is named after its origin %q", c.Origin)
	}
	return note.Sign(&note.Note{Text: body}, signers...)
}

func signedByOrigin(origin string, signers []note.Signer) bool {
	for _, s := range signers {
		if s != nil && s.Name() == origin {
			return true
		}
	}
	return false
}

// OpenCheckpoint verifies a signed checkpoint and returns it.
//
// Signatures by keys that trusted does not know are ignored, but at least
// one signature must verify with a trusted key, and that key's name must
// equal the checkpoint's origin. A signature that names a trusted key
// (name and key ID) but does not verify rejects the whole note, even when
// another signature verifies: it is a forgery or a different key whose ID
// collides with a trusted one. Every error is a *CheckpointError matching
// ErrCheckpoint.
func OpenCheckpoint(msg []byte, trusted note.Verifiers) (Checkpoint, error) {
	text, names, err := openNote(msg, trusted, "checkpoint")
	if err != nil {
		return Checkpoint{}, err
	}
	c, err := ParseCheckpointBody(text)
	if err != nil {
		return Checkpoint{}, err
	}
	if !containsString(names, c.Origin) {
		return Checkpoint{}, cpErr(ReasonWrongOrigin, "checkpoint origin %q is not the name of the trusted key that signed it (%s)", c.Origin, strings.Join(names, ", "))
	}
	return c, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// lookupRecorder passes key look-ups to a note.Verifiers and keeps the first
// error other than an unknown key, so that openNote can classify it.
type lookupRecorder struct {
	vs  note.Verifiers
	err error
}

func (l *lookupRecorder) Verifier(name string, hash uint32) (note.Verifier, error) {
	if l.vs == nil {
		return nil, &note.UnknownVerifierError{Name: name, KeyHash: hash}
	}
	v, err := l.vs.Verifier(name, hash)
	var unknown *note.UnknownVerifierError
	if err != nil && !errors.As(err, &unknown) && l.err == nil {
		l.err = err
	}
	if err == nil && (v == nil || v.Name() != name || v.KeyHash() != hash) {
		err = fmt.Errorf("trusted key set answered key %s+%08x with a different key", name, hash)
		if l.err == nil {
			l.err = err
		}
	}
	return v, err
}

// openNote verifies a signed note against trusted and returns its text and
// the names of the trusted keys whose signatures verified.
func openNote(msg []byte, trusted note.Verifiers, what string) (string, []string, error) {
	if len(msg) > MaxCheckpointSize {
		return "", nil, cpErr(ReasonMalformed, "%s note is longer than %d bytes", what, MaxCheckpointSize)
	}
	rec := &lookupRecorder{vs: trusted}
	n, err := note.Open(msg, rec)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case rec.err != nil:
			return "", nil, cpErr(ReasonKeyCollision, "%s: the trusted keys cannot name the signing key: %v", what, rec.err)
		case errors.As(err, &invalid):
			return "", nil, cpErr(ReasonBadSignature, "%s: the signature by trusted key %s+%08x does not verify (forged or altered, or a different key with the same key ID)", what, invalid.Name, invalid.Hash)
		case errors.As(err, &unverified):
			var keys []string
			for _, s := range unverified.Note.UnverifiedSigs {
				keys = append(keys, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
			}
			return "", nil, cpErr(ReasonUnknownKey, "%s is signed only by keys that are not trusted (%s)", what, strings.Join(keys, ", "))
		case unsignedShape(msg):
			return "", nil, cpErr(ReasonUnsigned, "%s carries no signature: it was never signed, or its signatures were stripped", what)
		default:
			return "", nil, cpErr(ReasonMalformed, "%s is not a well-formed signed note: %v", what, err)
		}
	}
	// note.Open verifies only the first signature per key and skips
	// repeats; a repeated signature line that names a trusted key must
	// verify too, or the note is rejected.
	if name, id, ok := badRepeatedSignature(msg, n.Text, rec); !ok {
		return "", nil, cpErr(ReasonBadSignature, "%s: a second signature by trusted key %s+%08x does not verify (forged or altered, or a different key with the same key ID)", what, name, id)
	}
	names := make([]string, 0, len(n.Sigs))
	for _, s := range n.Sigs {
		names = append(names, s.Name)
	}
	return n.Text, names, nil
}

// badRepeatedSignature checks every signature line of a note that note.Open
// accepted, against the trusted key it names, if any. It returns ok false
// and the key of the first line that does not verify.
func badRepeatedSignature(msg []byte, text string, trusted note.Verifiers) (name string, id uint32, ok bool) {
	type nameID struct {
		name string
		id   uint32
	}
	first := make(map[nameID]bool) // note.Open verified the first of each
	sigs := msg[len(text)+1:]
	for len(sigs) > 0 {
		line, rest, _ := bytes.Cut(sigs, []byte("\n"))
		sigs = rest
		line = bytes.TrimPrefix(line, []byte("— "))
		n, b64, _ := bytes.Cut(line, []byte(" "))
		raw, err := base64.StdEncoding.DecodeString(string(b64))
		if err != nil || len(raw) < 5 {
			return string(n), 0, false // note.Open accepted it, so unreachable
		}
		id := binary.BigEndian.Uint32(raw)
		if k := (nameID{string(n), id}); !first[k] {
			first[k] = true
			continue
		}
		v, err := trusted.Verifier(string(n), id)
		if err != nil {
			continue
		}
		if !v.Verify([]byte(text), raw[4:]) {
			return string(n), id, false
		}
	}
	return "", 0, true
}

// unsignedShape reports whether msg looks like note text with no signature
// lines: valid UTF-8 without control characters other than newline, ending
// in a newline, with either no blank line or nothing after the last one.
func unsignedShape(msg []byte) bool {
	if len(msg) == 0 || msg[len(msg)-1] != '\n' || !utf8.Valid(msg) {
		return false
	}
	if bytes.ContainsFunc(msg, func(r rune) bool { return r != '\n' && isControl(r) && r != 0x7f }) {
		return false
	}
	return !bytes.Contains(msg, []byte("\n\n")) || bytes.HasSuffix(msg, []byte("\n\n"))
}
