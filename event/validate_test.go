package event

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// validateCases are valid encodings covering every value kind.
func validateCases(t *testing.T) [][]byte {
	t.Helper()
	every := typicalEvent()
	every.Exception = errors.New("denied")
	every.Timestamp = time.Date(2024, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))
	every.Properties = map[string]any{
		"b": true, "f": false, "n": nil, "i": int64(-5), "u": uint64(7), "fl": 1.5,
		"c": complex(1, 2), "s": "str", "by": []byte{1, 2}, "t": time.Unix(5, 6).UTC(),
		"d": time.Second, "e": errors.New("x"), "j": json.RawMessage(`{"a":[1,2]}`),
		"arr": []any{int64(1), "two", []any{}}, "m": map[string]any{"k": map[string]any{"z": 1}},
		"un": make(chan int),
	}
	var out [][]byte
	for _, ev := range []*Event{typicalEvent(), every, sampleEvent(), mapHeavyEvent(), {}} {
		b, err := AppendEncode(nil, ev)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// Validate accepts exactly what Decode accepts, with the same error, on
// every truncation and single-byte change of valid encodings.
func TestValidateAgreesWithDecode(t *testing.T) {
	check := func(b []byte) {
		_, derr := Decode(b)
		verr := Validate(b)
		if (derr == nil) != (verr == nil) || (derr != nil && derr.Error() != verr.Error()) {
			t.Fatalf("disagree on %x:\n Validate: %v\n Decode:   %v", b, verr, derr)
		}
	}
	for _, enc := range validateCases(t) {
		if err := Validate(enc); err != nil {
			t.Fatalf("a valid encoding: %v", err)
		}
		for n := range len(enc) {
			check(enc[:n])
		}
		b := make([]byte, len(enc))
		for i := range enc {
			for _, x := range []byte{0x01, 0x02, 0x10, 0x80, 0xff} {
				copy(b, enc)
				b[i] ^= x
				check(b)
			}
		}
		check(append(enc[:len(enc):len(enc)], 0))
	}
}

// Validate allocates nothing on a typical event.
func TestValidateDoesNotAllocate(t *testing.T) {
	enc, _ := AppendEncode(nil, typicalEvent())
	if n := testing.AllocsPerRun(100, func() {
		if err := Validate(enc); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Validate allocated %v times per run", n)
	}
}

func BenchmarkValidate(b *testing.B) {
	enc, _ := AppendEncode(nil, typicalEvent())
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate(enc); err != nil {
			b.Fatal(err)
		}
	}
}
