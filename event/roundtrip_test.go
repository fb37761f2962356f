package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// Types used by the round-trip table.

type userID string
type count int16
type ratio float32
type flag bool
type hash []byte

type jsonOK struct{ A int }

func (j jsonOK) MarshalJSON() ([]byte, error) { return []byte(`{ "a" : [1, 2 ,3] }`), nil }

type jsonInvalid struct{}

func (jsonInvalid) MarshalJSON() ([]byte, error) { return []byte(`{"a":`), nil }

type jsonFails struct{}

func (jsonFails) MarshalJSON() ([]byte, error) { return nil, errors.New("no way") }

type jsonPanics struct{}

func (jsonPanics) MarshalJSON() ([]byte, error) { panic("json kaboom") }

type textOK struct{ v string }

func (t textOK) MarshalText() ([]byte, error) { return []byte("text:" + t.v), nil }

type textPanics struct{}

func (textPanics) MarshalText() ([]byte, error) { panic("text kaboom") }

type stringerOK struct{ n int }

func (s stringerOK) String() string { return fmt.Sprintf("S%d", s.n) }

type stringerPanics struct{}

func (stringerPanics) String() string { panic("string kaboom") }

// ptrStringer has a pointer-receiver String method.
type ptrStringer struct{ n int }

func (p *ptrStringer) String() string { return fmt.Sprintf("P%d", p.n) }

// valueErr has a value-receiver Error method: calling it through a nil
// *valueErr panics.
type valueErr struct{ msg string }

func (v valueErr) Error() string { return v.msg }

// nilSafeErr handles a nil receiver.
type nilSafeErr struct{}

func (e *nilSafeErr) Error() string {
	if e == nil {
		return "nil nilSafeErr"
	}
	return "nilSafeErr"
}

// fieldErr dereferences its receiver.
type fieldErr struct{ msg string }

func (e *fieldErr) Error() string { return e.msg }

type Inner struct {
	X int
	Y string
}

type inner struct {
	Z bool
}

type outer struct {
	Name string `json:"name"`
	Skip string `json:"-"`
	//lint:ignore SA5008 deliberate: encoding/json names this field "-", which the test checks
	Dash     string `json:"-,"`
	Opt      int    `json:",omitempty"`
	hidden   int
	Ptr      *int
	NilPtr   *int
	Inner    // exported embedded struct: nested under "Inner"
	inner    // unexported embedded struct: nested under "inner"
	Tags     []string
	When     time.Time
	Children map[string]Inner
	Any      any
}

func ptr[T any](v T) *T { return &v }

func TestRoundTripKinds(t *testing.T) {
	cest := time.FixedZone("CEST", 2*3600)
	weird := time.FixedZone("", -(3*3600 + 30*60))
	nan := math.Float64frombits(0x7ff8000000000123)
	var nilErrPtr *valueErr
	var nilSafe *nilSafeErr
	var nilFieldErr *fieldErr
	intPtr := 42
	strPtr := "deep"
	strPtrPtr := &strPtr
	ch := make(chan int)

	cases := []struct {
		name string
		in   any
		want any
	}{
		{"nil", nil, nil},
		{"typed nil pointer", (*int)(nil), nil},
		{"typed nil map", map[string]int(nil), nil},
		{"typed nil map any", map[string]any(nil), nil},
		{"typed nil slice", []int(nil), nil},
		{"typed nil slice any", []any(nil), nil},
		{"typed nil bytes", []byte(nil), nil},
		{"typed nil stringer pointer", (*ptrStringer)(nil), nil},
		{"typed nil time pointer", (*time.Time)(nil), nil},
		{"typed nil raw json", json.RawMessage(nil), nil},
		{"true", true, true},
		{"false", false, false},
		{"int", -7, int64(-7)},
		{"int8 min", int8(math.MinInt8), int64(math.MinInt8)},
		{"int16 max", int16(math.MaxInt16), int64(math.MaxInt16)},
		{"int32 min", int32(math.MinInt32), int64(math.MinInt32)},
		{"int64 min", int64(math.MinInt64), int64(math.MinInt64)},
		{"int64 max", int64(math.MaxInt64), int64(math.MaxInt64)},
		{"uint", uint(7), uint64(7)},
		{"uint8", uint8(255), uint64(255)},
		{"uint16", uint16(65535), uint64(65535)},
		{"uint32", uint32(math.MaxUint32), uint64(math.MaxUint32)},
		{"uint64 max", uint64(math.MaxUint64), uint64(math.MaxUint64)},
		{"uintptr", uintptr(0xdeadbeef), uint64(0xdeadbeef)},
		{"float64", 3.25, 3.25},
		{"float32", float32(1.1), float64(float32(1.1))},
		{"NaN payload", nan, nan},
		{"float32 NaN", float32(math.NaN()), float64(float32(math.NaN()))},
		{"+Inf", math.Inf(1), math.Inf(1)},
		{"-Inf", math.Inf(-1), math.Inf(-1)},
		{"-0", math.Copysign(0, -1), math.Copysign(0, -1)},
		{"float32 -0", float32(math.Copysign(0, -1)), math.Copysign(0, -1)},
		{"complex64", complex64(complex(1.5, -2)), complex(1.5, -2)},
		{"complex128", complex(math.Inf(1), nan), complex(math.Inf(1), nan)},
		{"string", "héllo", "héllo"},
		{"empty string", "", ""},
		{"invalid utf8", "a\xff\xfe\x00b", "a\xff\xfe\x00b"},
		{"bytes", []byte{0, 1, 2, 255}, []byte{0, 1, 2, 255}},
		{"empty bytes", []byte{}, []byte{}},
		{"named bytes", hash{9, 8}, []byte{9, 8}},
		{"time UTC", time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC), time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)},
		{"time zone", time.Date(2024, 5, 6, 7, 8, 9, 1, cest), time.Date(2024, 5, 6, 7, 8, 9, 1, cest)},
		{"time unnamed zone", time.Date(1999, 12, 31, 23, 59, 59, 999999999, weird), time.Date(1999, 12, 31, 23, 59, 59, 999999999, weird)},
		{"zero time", time.Time{}, time.Time{}},
		{"year 1", time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)},
		{"year 9999", time.Date(9999, 12, 31, 23, 59, 59, 999999999, cest), time.Date(9999, 12, 31, 23, 59, 59, 999999999, cest)},
		{"year 1500", time.Date(1500, 2, 3, 4, 5, 6, 7, time.UTC), time.Date(1500, 2, 3, 4, 5, 6, 7, time.UTC)},
		{"time pointer", ptr(time.Date(2030, 1, 1, 0, 0, 0, 5, cest)), time.Date(2030, 1, 1, 0, 0, 0, 5, cest)},
		{"duration", 1500 * time.Millisecond, 1500 * time.Millisecond},
		{"negative duration", -time.Nanosecond, -time.Nanosecond},
		{"duration pointer", ptr(time.Minute), time.Minute},
		{"error", errors.New("disk full"), &ErrorValue{Message: "disk full"}},
		{"wrapped error", fmt.Errorf("save: %w", errors.New("disk full")), &ErrorValue{Message: "save: disk full"}},
		{"value error", valueErr{"v"}, &ErrorValue{Message: "v"}},
		{"nil-safe nil pointer error", nilSafe, &ErrorValue{Message: "nil nilSafeErr"}},
		{"error value", &ErrorValue{Message: "kept"}, &ErrorValue{Message: "kept"}},
		{"unsupported", Unsupported{Type: "T", Reason: "R"}, Unsupported{Type: "T", Reason: "R"}},
		{"unsupported pointer", &Unsupported{Type: "T", Reason: "R"}, Unsupported{Type: "T", Reason: "R"}},
		{"raw json", json.RawMessage(`{"b": 1,  "a":[ true ]}`), json.RawMessage(`{"b":1,"a":[true]}`)},
		{"json marshaler", jsonOK{}, json.RawMessage(`{"a":[1,2,3]}`)},
		{"json marshaler pointer", &jsonOK{}, json.RawMessage(`{"a":[1,2,3]}`)},
		{"text marshaler", textOK{"x"}, "text:x"},
		{"netip addr", netip.MustParseAddr("192.0.2.1"), "192.0.2.1"},
		{"stringer", stringerOK{3}, "S3"},
		{"pointer stringer", &ptrStringer{4}, "P4"},
		{"named string", userID("u-1"), "u-1"},
		{"named int", count(-3), int64(-3)},
		{"named float", ratio(0.5), 0.5},
		{"named bool", flag(true), true},
		{"int pointer", &intPtr, int64(42)},
		{"pointer to pointer", &strPtrPtr, "deep"},
		{"int slice", []int{1, 2, 3}, []any{int64(1), int64(2), int64(3)}},
		{"string array", [2]string{"a", "b"}, []any{"a", "b"}},
		{"byte array", [2]byte{1, 2}, []any{uint64(1), uint64(2)}},
		{"empty slice", []string{}, []any{}},
		{"any slice", []any{1, "x", nil, []byte("b")}, []any{int64(1), "x", nil, []byte("b")}},
		{"string map", map[string]int{"a": 1, "b": 2}, map[string]any{"a": int64(1), "b": int64(2)}},
		{"int key map", map[int]string{10: "ten", 2: "two"}, map[string]any{"10": "ten", "2": "two"}},
		{"named key map", map[userID]bool{"x": true}, map[string]any{"x": true}},
		{"empty map", map[string]any{}, map[string]any{}},
		{"nested", map[string]any{
			"list": []any{map[string]any{"k": []int{1}}, []string{"s"}},
			"map":  map[string]map[string]float64{"in": {"f": 1.5}},
		}, map[string]any{
			"list": []any{map[string]any{"k": []any{int64(1)}}, []any{"s"}},
			"map":  map[string]any{"in": map[string]any{"f": 1.5}},
		}},
		{"struct", outer{
			Name: "n", Skip: "s", Dash: "d", Opt: 0, hidden: 9, Ptr: &intPtr,
			Inner: Inner{X: 1, Y: "y"}, inner: inner{Z: true},
			Tags: []string{"t"}, When: time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC),
			Children: map[string]Inner{"c": {X: 2}},
			Any:      stringerOK{5},
		}, map[string]any{
			"name": "n", "-": "d", "Opt": int64(0), "Ptr": int64(42), "NilPtr": nil,
			"Inner": map[string]any{"X": int64(1), "Y": "y"},
			"inner": map[string]any{"Z": true},
			"Tags":  []any{"t"}, "When": time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC),
			"Children": map[string]any{"c": map[string]any{"X": int64(2), "Y": ""}},
			"Any":      "S5",
		}},
		{"struct pointer", &Inner{X: 3}, map[string]any{"X": int64(3), "Y": ""}},
		{"chan", ch, Unsupported{Type: "chan int", Reason: "cannot encode channels"}},
		{"nil chan", (chan string)(nil), Unsupported{Type: "chan string", Reason: "cannot encode channels"}},
		{"func", func() {}, Unsupported{Type: "func()", Reason: "cannot encode functions"}},
		{"unsafe pointer", unsafe.Pointer(&intPtr), Unsupported{Type: "unsafe.Pointer", Reason: "cannot encode unsafe pointers"}},
		{"chan in slice", []any{1, ch}, []any{int64(1), Unsupported{Type: "chan int", Reason: "cannot encode channels"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Normalize(tc.in); !equalValue(got, tc.want) {
				t.Errorf("Normalize = %#v (%T), want %#v (%T)", got, got, tc.want, tc.want)
			}
			ev := &Event{Properties: map[string]any{"P": tc.in}}
			b, err := AppendEncode(nil, ev)
			if err != nil {
				t.Fatal(err)
			}
			out, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			got := out.Properties["P"]
			if !equalValue(got, tc.want) {
				t.Errorf("round trip = %#v (%T), want %#v (%T)", got, got, tc.want, tc.want)
			}
			// The decoded value encodes to the same bytes.
			b2, _ := AppendEncode(nil, out)
			if !bytes.Equal(b, b2) {
				t.Errorf("re-encoding the decoded event changed the bytes")
			}
		})
	}

	// Unsupported results whose reasons carry variable text.
	partial := []struct {
		name   string
		in     any
		typ    string
		reason string
	}{
		{"invalid json", jsonInvalid{}, "event.jsonInvalid", "invalid JSON"},
		{"failing json", jsonFails{}, "event.jsonFails", "MarshalJSON failed: no way"},
		{"panicking json", jsonPanics{}, "event.jsonPanics", "MarshalJSON() panicked: json kaboom"},
		{"panicking text", textPanics{}, "event.textPanics", "MarshalText() panicked: text kaboom"},
		{"panicking stringer", stringerPanics{}, "event.stringerPanics", "String() panicked: string kaboom"},
		{"nil pointer value-receiver error", nilErrPtr, "*event.valueErr", "Error() panicked"},
		{"nil pointer field error", nilFieldErr, "*event.fieldErr", "Error() panicked"},
		{"nil error value", (*ErrorValue)(nil), "", ""},
	}
	for _, tc := range partial {
		t.Run(tc.name, func(t *testing.T) {
			got := Normalize(tc.in)
			if tc.typ == "" {
				if got != nil {
					t.Errorf("got %#v, want nil", got)
				}
				return
			}
			u, ok := got.(Unsupported)
			if !ok || u.Type != tc.typ || !strings.Contains(u.Reason, tc.reason) {
				t.Errorf("got %#v, want Unsupported{%q, …%q…}", got, tc.typ, tc.reason)
			}
		})
	}
}

func TestTimeDetails(t *testing.T) {
	// Monotonic reading dropped, instant kept.
	now := time.Now()
	got := Normalize(now).(time.Time)
	if !got.Equal(now) || got.Nanosecond() != now.Nanosecond() {
		t.Errorf("instant changed: %v vs %v", got, now)
	}
	if got.String() == now.String() && strings.Contains(now.String(), "m=") {
		t.Error("monotonic reading should be dropped")
	}
	// UTC comes back as time.UTC.
	u := Normalize(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)).(time.Time)
	if u.Location() != time.UTC {
		t.Errorf("UTC location = %v", u.Location())
	}
	// Zero time comes back as the zero time.
	z := Normalize(time.Time{}).(time.Time)
	if !z.IsZero() || z != (time.Time{}) {
		t.Errorf("zero time = %#v", z)
	}
	// A named zone keeps its name and offset.
	if loc, err := time.LoadLocation("America/New_York"); err == nil {
		in := time.Date(2024, 7, 4, 12, 0, 0, 0, loc)
		out := Normalize(in).(time.Time)
		name, off := out.Zone()
		if !out.Equal(in) || name != "EDT" || off != -4*3600 {
			t.Errorf("got %v (%s %d)", out, name, off)
		}
		if out.Format(time.RFC3339Nano) != in.Format(time.RFC3339Nano) {
			t.Errorf("format differs: %s vs %s", out.Format(time.RFC3339Nano), in.Format(time.RFC3339Nano))
		}
	}
	// Extreme instants (outside the UnixNano range) survive.
	for _, tm := range []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(-5000, 1, 1, 0, 0, 0, 3, time.UTC),
		time.Date(300000, 1, 1, 0, 0, 0, 3, time.UTC),
	} {
		out := Normalize(tm).(time.Time)
		if !out.Equal(tm) || out.Year() != tm.Year() {
			t.Errorf("time %v came back as %v", tm, out)
		}
	}
}

func TestEventFieldsRoundTrip(t *testing.T) {
	cest := time.FixedZone("CEST", 7200)
	ev := &Event{
		Timestamp:       time.Date(2024, 3, 4, 5, 6, 7, 8, cest),
		Level:           LevelWarning,
		MessageTemplate: "User {UserId} performed {Action}",
		Message:         "User 42 performed \"login\"",
		Properties:      map[string]any{"UserId": 42, "Action": "login"},
		Exception:       fmt.Errorf("wrapped: %w", errors.New("inner")),
	}
	b, err := AppendEncode([]byte("prefix"), ev)
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:6]) != "prefix" {
		t.Fatal("AppendEncode must append to dst")
	}
	b = b[6:]
	if b[0] != 1 {
		t.Fatalf("version byte = %d, want 1", b[0])
	}
	out, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Timestamp.Equal(ev.Timestamp) || out.Timestamp.Location().String() != "CEST" {
		t.Errorf("timestamp %v", out.Timestamp)
	}
	if out.Level != LevelWarning || out.MessageTemplate != ev.MessageTemplate || out.Message != ev.Message {
		t.Errorf("header fields differ: %+v", out)
	}
	ex, ok := out.Exception.(*ErrorValue)
	if !ok || ex.Message != "wrapped: inner" {
		t.Errorf("exception = %#v", out.Exception)
	}
	if out.Properties["UserId"] != int64(42) || out.Properties["Action"] != "login" {
		t.Errorf("properties = %v", out.Properties)
	}

	// Nil exception and nil properties stay nil; an empty map stays empty.
	for _, props := range []map[string]any{nil, {}} {
		b, _ := AppendEncode(nil, &Event{Properties: props})
		out, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if out.Exception != nil || (out.Properties == nil) != (props == nil) || len(out.Properties) != 0 {
			t.Errorf("props %v: got %#v", props, out)
		}
		if !out.Timestamp.IsZero() || out.Level != LevelVerbose {
			t.Errorf("zero event came back as %#v", out)
		}
	}

	// Every level byte survives, including unknown ones.
	for _, l := range []Level{LevelVerbose, LevelFatal, 200} {
		b, _ := AppendEncode(nil, &Event{Level: l})
		if out, err := Decode(b); err != nil || out.Level != l {
			t.Errorf("level %v: %v %v", l, out, err)
		}
	}

	if _, err := AppendEncode(nil, nil); err == nil {
		t.Error("AppendEncode(nil event) should fail")
	}
}

type panicErr struct{}

func (*panicErr) Error() string { panic("exception kaboom") }

func TestExceptionVariants(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"plain", errors.New("e"), "e"},
		{"error value", &ErrorValue{Message: "ev"}, "ev"},
		{"nil-safe nil pointer", (*nilSafeErr)(nil), "nil nilSafeErr"},
		{"panicking", &panicErr{}, "<unsupported *event.panicErr: Error() panicked: exception kaboom>"},
	}
	for _, tc := range cases {
		b, err := AppendEncode(nil, &Event{Exception: tc.err})
		if err != nil {
			t.Fatal(err)
		}
		out, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		ev, ok := out.Exception.(*ErrorValue)
		if !ok || ev.Message != tc.want {
			t.Errorf("%s: exception = %#v, want %q", tc.name, out.Exception, tc.want)
		}
	}
}
