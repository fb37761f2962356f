package event

import (
	"encoding/binary"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"
)

func sampleEvent() *Event {
	return &Event{
		Timestamp:       time.Date(2024, 6, 1, 12, 30, 0, 123456789, time.FixedZone("CEST", 7200)),
		Level:           LevelInformation,
		MessageTemplate: "User {UserId} performed {Action} on {Resource}",
		Message:         "User 42 performed delete on /docs/7",
		Exception:       errors.New("permission check failed"),
		Properties: map[string]any{
			"UserId": 42, "Action": "delete", "Resource": "/docs/7",
			"Elapsed": 15 * time.Millisecond, "Ok": false, "Ratio": math.NaN(),
			"Raw": []byte{1, 2, 3}, "When": time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
			"Nested": map[string]any{"list": []any{uint64(math.MaxUint64), nil, -1.5, complex(1, 2)}},
			"Err":    errors.New("x"), "Json": jsonOK{}, "Bad": make(chan int),
		},
	}
}

func mustEncode(t testing.TB, ev *Event) []byte {
	t.Helper()
	b, err := AppendEncode(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeEveryTruncation(t *testing.T) {
	b := mustEncode(t, sampleEvent())
	if _, err := Decode(b); err != nil {
		t.Fatalf("full encoding: %v", err)
	}
	for i := 0; i < len(b); i++ {
		ev, err := Decode(b[:i])
		if err == nil {
			t.Fatalf("Decode of the first %d of %d bytes succeeded: %#v", i, len(b), ev)
		}
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncation %d: error %v does not wrap ErrMalformed", i, err)
		}
	}
}

func TestDecodeMutationsNoPanic(t *testing.T) {
	b := mustEncode(t, sampleEvent())
	buf := make([]byte, len(b))
	for i := 1; i < len(b); i++ {
		for _, x := range []byte{0x00, 0x01, 0x7f, 0x80, 0xff, b[i] ^ 0x01} {
			copy(buf, b)
			buf[i] = x
			ev, err := Decode(buf)
			if err == nil {
				// Whatever decodes must re-encode to the same bytes.
				if again := mustEncode(t, ev); string(again) != string(buf) {
					t.Fatalf("mutation at %d to %#x decoded but does not re-encode canonically", i, x)
				}
			}
		}
	}
}

func TestDecodeTrailingGarbage(t *testing.T) {
	b := mustEncode(t, sampleEvent())
	_, err := Decode(append(b, 0))
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "trailing") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "offset") {
		t.Errorf("error should give the offset: %v", err)
	}
}

func TestDecodeUnknownVersion(t *testing.T) {
	b := mustEncode(t, sampleEvent())
	for _, v := range []byte{0, 2, 3, 0x7f, 0xff} {
		b[0] = v
		_, err := Decode(b)
		if !errors.Is(err, ErrUnknownVersion) || errors.Is(err, ErrMalformed) {
			t.Errorf("version %d: err = %v", v, err)
		}
	}
	if _, err := Decode(nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("empty input: err = %v", err)
	}
}

// header returns a minimal valid prefix: version, zero UTC time, level,
// empty template and message, no exception.
func header() []byte {
	e := encoder{}
	e.buf = append(e.buf, version1)
	e.timePayload(time.Unix(0, 0).UTC())
	e.buf = append(e.buf, 2)
	e.str("")
	e.str("")
	e.buf = append(e.buf, tagNil)
	return e.buf
}

func withProps(props ...byte) []byte {
	return append(header(), props...)
}

func uv(x uint64) []byte { return binary.AppendUvarint(nil, x) }

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestDecodeRejects(t *testing.T) {
	if _, err := Decode(withProps(tagNil)); err != nil {
		t.Fatalf("minimal event: %v", err)
	}
	deep := []byte{tagMap, 1, 1, 'k'}
	for i := 0; i < maxDepth; i++ {
		deep = append(deep, tagArray, 1)
	}
	deepOK := append(append([]byte{}, deep...), tagNil)
	if _, err := Decode(withProps(deepOK...)); err != nil {
		t.Fatalf("64 levels of nesting should decode: %v", err)
	}
	deepBad := append(append([]byte{}, deep...), tagArray, 0)

	cases := map[string][]byte{
		"unknown tag":          withProps(tagMap, 1, 1, 'k', 0x10),
		"unknown tag 0xff":     withProps(tagMap, 1, 1, 'k', 0xff),
		"bad properties tag":   withProps(tagString, 0),
		"bad exception tag":    append(header()[:len(header())-1], tagString, 0, tagNil),
		"depth 65":             withProps(deepBad...),
		"string past end":      withProps(tagMap, 1, 1, 'k', tagString, 5, 'a'),
		"key past end":         withProps(tagMap, 1, 9, 'k'),
		"non-minimal varint":   withProps(tagMap, 1, 1, 'k', tagInt, 0x80, 0x00),
		"varint overflow":      withProps(tagMap, 1, 1, 'k', tagUint, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
		"unsorted keys":        withProps(tagMap, 2, 1, 'b', tagNil, 1, 'a', tagNil),
		"duplicate keys":       withProps(tagMap, 2, 1, 'a', tagNil, 1, 'a', tagNil),
		"short float":          withProps(tagMap, 1, 1, 'k', tagFloat, 0, 0, 0),
		"invalid json":         withProps(tagMap, 1, 1, 'k', tagJSON, 2, '{', '}'+1),
		"non-compact json":     withProps(tagMap, 1, 1, 'k', tagJSON, 3, '[', ' ', ']'),
		"nanoseconds 1e9":      cat([]byte{version1}, binary.AppendVarint(nil, 0), uv(1e9), []byte{0, 0, 2, 0, 0, tagNil, tagNil}),
		"array count too big":  withProps(tagMap, 1, 1, 'k', tagArray, 5, tagNil),
		"map count too big":    withProps(tagMap, 3, 1, 'k', tagNil),
		"truncated level":      header()[:len(header())-4],
		"trailing after props": withProps(tagNil, 0),
	}
	for name, b := range cases {
		_, err := Decode(b)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
			continue
		}
		if !strings.Contains(err.Error(), "at offset ") {
			t.Errorf("%s: error %q lacks the offset", name, err)
		}
	}
}

func TestDecodeHugeLengthsDoNotAllocate(t *testing.T) {
	huge := uv(1 << 62)
	inputs := map[string][]byte{
		"template length": cat([]byte{version1}, binary.AppendVarint(nil, 0), []byte{0, 0, 0, 2}, huge, []byte("abc")),
		"string length":   withProps(cat([]byte{tagMap, 1, 1, 'k', tagString}, huge, []byte("abc"))...),
		"bytes length":    withProps(cat([]byte{tagMap, 1, 1, 'k', tagBytes}, huge, []byte("abc"))...),
		"array count":     withProps(cat([]byte{tagMap, 1, 1, 'k', tagArray}, huge, []byte("abc"))...),
		"map count":       withProps(cat([]byte{tagMap}, huge, []byte("abc"))...),
		"key length":      withProps(cat([]byte{tagMap, 1}, huge, []byte("abc"))...),
		"max uint64":      withProps(cat([]byte{tagMap}, uv(math.MaxUint64), []byte("abc"))...),
	}
	for name, b := range inputs {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := Decode(b)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v", name, err)
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > 64<<10 {
			t.Errorf("%s: Decode allocated %d bytes for a %d-byte input", name, d, len(b))
		}
		allocs := testing.AllocsPerRun(10, func() { _, _ = Decode(b) })
		if allocs > 40 {
			t.Errorf("%s: %v allocations", name, allocs)
		}
	}
}

func TestDecodeAllocationBounded(t *testing.T) {
	// Inputs made of the cheapest possible elements, valid or failing
	// late: the allocation stays within a small multiple of the input size.
	n := 100000
	arr := cat([]byte{tagMap, 1, 1, 'k', tagArray}, uv(uint64(n)))
	for i := 0; i < n; i++ {
		arr = append(arr, tagNil)
	}
	garbage := make([]byte, 2*n)
	for i := range garbage {
		garbage[i] = 0xff // an invalid key length
	}
	inputs := map[string]struct {
		b  []byte
		ok bool
	}{
		"array of nils":            {withProps(arr...), true},
		"array count then garbage": {withProps(cat([]byte{tagMap, 1, 1, 'k', tagArray}, uv(uint64(n)), garbage[:n])...), false},
		"map count then garbage":   {withProps(cat([]byte{tagMap}, uv(uint64(n)), garbage)...), false},
	}
	for name, in := range inputs {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := Decode(in.b)
		runtime.ReadMemStats(&after)
		if (err == nil) != in.ok {
			t.Fatalf("%s: err = %v", name, err)
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > uint64(24*len(in.b)) {
			t.Errorf("%s: Decode allocated %d bytes for a %d-byte input", name, d, len(in.b))
		}
	}
}

func TestDecodeErrorsAreDistinct(t *testing.T) {
	_, err := Decode([]byte{version1})
	if err == nil || !errors.Is(err, ErrMalformed) || errors.Is(err, ErrUnknownVersion) {
		t.Fatalf("err = %v", err)
	}
}
