package integrity

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseCheckpoint feeds arbitrary bytes to ParseCheckpointBody,
// OpenCheckpoint and OpenRotation with a fixed trusted key. None may panic;
// every error must be a *CheckpointError; whatever opens must survive
// re-signing and reopening unchanged.
func FuzzParseCheckpoint(f *testing.F) {
	signer := cpSigner(f, cpSKeyA)
	trusted := cpVerifiers(f, cpVKeyA)
	verifier := mustNoteVerifier(f, cpVKeyA)
	c := cpSample()
	f.Add([]byte(c.Body()))
	if msg, err := SignCheckpoint(c, signer); err == nil {
		f.Add(msg)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkCPErr := func(what string, err error) {
			var ce *CheckpointError
			if !errors.Is(err, ErrCheckpoint) || !errors.As(err, &ce) || ce.Detail == "" {
				t.Fatalf("%s: error %v is not a *CheckpointError matching ErrCheckpoint", what, err)
			}
		}
		if c, err := ParseCheckpointBody(string(data)); err == nil {
			if c.Body() != string(data) {
				t.Fatalf("accepted body %q is not canonical: Body() = %q", data, c.Body())
			}
		} else {
			checkCPErr("ParseCheckpointBody", err)
		}

		if c, err := OpenCheckpoint(data, trusted); err == nil {
			msg, err := SignCheckpoint(c, signer)
			if err != nil {
				t.Fatalf("re-signing opened checkpoint %+v: %v", c, err)
			}
			c2, err := OpenCheckpoint(msg, trusted)
			if err != nil {
				t.Fatalf("reopening re-signed checkpoint: %v", err)
			}
			if !cpEqual(c, c2) {
				t.Fatalf("re-signed checkpoint changed: %+v -> %+v", c, c2)
			}
		} else {
			checkCPErr("OpenCheckpoint", err)
		}

		if r, err := OpenRotation(data, verifier); err == nil {
			msg, err := SignRotation(r, signer)
			if err != nil {
				t.Fatalf("re-signing opened rotation %+v: %v", r, err)
			}
			r2, err := OpenRotation(msg, verifier)
			if err != nil || r2 != r {
				t.Fatalf("reopening re-signed rotation: %+v, %v; want %+v", r2, err, r)
			}
		} else {
			checkCPErr("OpenRotation", err)
		}
	})
}

// readCPSeed decodes a "go test fuzz v1" file holding one []byte value.
func readCPSeed(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() || sc.Text() != "go test fuzz v1" || !sc.Scan() {
		t.Fatalf("%s: not a fuzz corpus file", path)
	}
	lit, ok := strings.CutPrefix(sc.Text(), "[]byte(")
	lit, ok2 := strings.CutSuffix(lit, ")")
	if !ok || !ok2 {
		t.Fatalf("%s: want one []byte value", path)
	}
	s, err := strconv.Unquote(lit)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}

// TestFuzzParseCheckpointSeeds checks that the committed seeds still
// exercise what their names say, so the corpus keeps reaching the success
// paths as the format evolves.
func TestFuzzParseCheckpointSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParseCheckpoint")
	trusted := cpVerifiers(t, cpVKeyA)
	want := map[string]Reason{
		"signed-valid":          "",
		"signed-minimal":        "",
		"signed-extra-unknown":  "",
		"stripped":              ReasonUnsigned,
		"unknown-key":           ReasonUnknownKey,
		"bad-signature":         ReasonBadSignature,
		"colliding-second-sig":  ReasonBadSignature,
		"wrong-origin":          ReasonWrongOrigin,
		"body-unknown-ext":      ReasonMalformed,
		"body-leading-zero":     ReasonMalformed,
		"body-time-not-utc":     ReasonMalformed,
		"rotation-signed-valid": ReasonMalformed, // not a checkpoint
	}
	for name, reason := range want {
		msg := readCPSeed(t, filepath.Join(dir, name))
		_, err := OpenCheckpoint(msg, trusted)
		if reason == "" {
			if err != nil {
				t.Errorf("seed %s: %v", name, err)
			}
			continue
		}
		var ce *CheckpointError
		if !errors.As(err, &ce) || ce.Reason != reason {
			t.Errorf("seed %s: err = %v, want reason %s", name, err, reason)
		}
	}
	msg := readCPSeed(t, filepath.Join(dir, "rotation-signed-valid"))
	if _, err := OpenRotation(msg, mustNoteVerifier(t, cpVKeyA)); err != nil {
		t.Errorf("seed rotation-signed-valid: %v", err)
	}
}
