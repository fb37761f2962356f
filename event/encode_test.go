package event

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func mapHeavyEvent() *Event {
	props := map[string]any{}
	for i := 0; i < 40; i++ {
		props[fmt.Sprintf("k%02d", i)] = map[string]any{
			"a": i, "b": []any{i, "x", map[string]any{"z": 1, "y": 2, "x": 3}},
			"c": map[int]string{i: "v", i + 1: "w", i + 2: "u"},
		}
	}
	return &Event{
		Timestamp:       time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC),
		Level:           LevelInformation,
		MessageTemplate: "t",
		Properties:      props,
	}
}

func TestDeterministicRepeated(t *testing.T) {
	ev := mapHeavyEvent()
	first, err := AppendEncode(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		b, _ := AppendEncode(nil, ev)
		if !bytes.Equal(b, first) {
			t.Fatalf("encoding %d differs from the first", i)
		}
	}
}

func TestDeterministicInsertionOrder(t *testing.T) {
	for _, n := range []int{2, 5, 16, 17, 100} { // small (stack sort) and large maps
		keys := make([]string, n)
		for i := range keys {
			keys[i] = fmt.Sprintf("key-%d", (i*7919)%1000)
		}
		fwd := map[string]any{}
		for _, k := range keys {
			fwd[k] = map[string]any{"v": k, "w": len(k)}
		}
		rev := map[string]any{}
		for i := len(keys) - 1; i >= 0; i-- {
			k := keys[i]
			rev[k] = map[string]any{"w": len(k), "v": k}
		}
		a, _ := AppendEncode(nil, &Event{Properties: fwd})
		b, _ := AppendEncode(nil, &Event{Properties: rev})
		if !bytes.Equal(a, b) {
			t.Errorf("n=%d: same content, different insertion order, different bytes", n)
		}
		// Keys come out sorted bytewise: decode and check the raw order.
		out, err := Decode(a)
		if err != nil || len(out.Properties) != n {
			t.Fatalf("n=%d: %v", n, err)
		}
	}
	// Keys are sorted bytewise (not by Unicode collation or case).
	a, _ := AppendEncode(nil, &Event{Properties: map[string]any{"b": 1, "B": 2, "é": 3, "a": 4}})
	ia, iB, ib, ie := bytes.Index(a, []byte("\x01a")), bytes.Index(a, []byte("\x01B")), bytes.Index(a, []byte("\x01b")), bytes.Index(a, []byte("\x02é"))
	if !(iB < ia && ia < ib && ib < ie) {
		t.Errorf("keys not in bytewise order: B=%d a=%d b=%d é=%d", iB, ia, ib, ie)
	}
}

func TestMapKeyCollisionsDeterministic(t *testing.T) {
	// 1 and "1" both become the key "1"; the entry with the smallest
	// encoding wins, whatever the iteration order.
	var first []byte
	for i := 0; i < 50; i++ {
		m := map[any]any{1: "from int", "1": "from string", 2: "two", "x": 1.5}
		b, _ := AppendEncode(nil, &Event{Properties: map[string]any{"m": m}})
		if first == nil {
			first = b
		} else if !bytes.Equal(first, b) {
			t.Fatal("map with colliding keys encodes nondeterministically")
		}
	}
	got := Normalize(map[any]any{1: "from int", "1": "from string"}).(map[string]any)
	if len(got) != 1 || got["1"] != "from int" {
		t.Errorf("got %#v", got)
	}
}

type node struct {
	Name string
	Next *node
}

type selfPtr *selfPtr

// findUnsupported walks a decoded value and returns the first Unsupported
// and the depth at which it was found.
func findUnsupported(v any, depth int) (Unsupported, int, bool) {
	switch x := v.(type) {
	case Unsupported:
		return x, depth, true
	case []any:
		for _, e := range x {
			if u, d, ok := findUnsupported(e, depth+1); ok {
				return u, d, true
			}
		}
	case map[string]any:
		for _, e := range x {
			if u, d, ok := findUnsupported(e, depth+1); ok {
				return u, d, true
			}
		}
	}
	return Unsupported{}, 0, false
}

func TestCyclesTerminate(t *testing.T) {
	n := &node{Name: "loop"}
	n.Next = n

	m := map[string]any{"a": 1}
	m["self"] = m

	s := make([]any, 2)
	s[0] = "x"
	s[1] = s

	// Exponential sharing: each level refers to itself twice.
	m2 := map[string]any{}
	m2["l"] = m2
	m2["r"] = m2

	var p selfPtr
	p = &p

	type wrap struct{ M map[string]any }
	w := map[string]any{}
	w["w"] = wrap{M: w}

	for name, v := range map[string]any{
		"struct pointer": n, "map": m, "slice": s, "double map": m2, "pointer": p, "struct map": w,
	} {
		t.Run(name, func(t *testing.T) {
			done := make(chan any, 1)
			go func() {
				b, err := AppendEncode(nil, &Event{Properties: map[string]any{"v": v}})
				if err != nil {
					done <- err
					return
				}
				ev, err := Decode(b)
				if err != nil {
					done <- err
					return
				}
				done <- ev.Properties["v"]
			}()
			select {
			case got := <-done:
				if err, ok := got.(error); ok {
					t.Fatal(err)
				}
				u, depth, ok := findUnsupported(got, 1)
				if !ok {
					t.Fatalf("no Unsupported placeholder in %T", got)
				}
				if u.Reason != reasonCycle || depth > 3 {
					t.Errorf("placeholder %#v at depth %d", u, depth)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("encoding a cyclic value did not terminate")
			}
		})
	}
}

type aliasA struct {
	B aliasB
	C *aliasB
}

type aliasB struct{ N int }

func TestSharingIsNotACycle(t *testing.T) {
	shared := map[string]any{"x": 1}
	sharedSlice := []any{1, 2}
	a := &aliasA{B: aliasB{N: 7}}
	a.C = &a.B // same address as a itself, different type
	v := map[string]any{
		"a": shared, "b": []any{shared, shared, sharedSlice, sharedSlice[:1]},
		"c": map[string]any{"d": shared, "s": sharedSlice}, "alias": a,
	}
	got := Normalize(v)
	if u, _, ok := findUnsupported(got, 1); ok {
		t.Fatalf("shared (acyclic) values must be encoded in full, got %#v", u)
	}
	want := map[string]any{"B": map[string]any{"N": int64(7)}, "C": map[string]any{"N": int64(7)}}
	if !equalValue(got.(map[string]any)["alias"], want) {
		t.Errorf("alias = %#v", got.(map[string]any)["alias"])
	}
}

func TestExponentialSharingTerminates(t *testing.T) {
	// 40 levels, each referring to the next twice: 2^40 leaves if unfolded.
	var v any = "leaf"
	for i := 0; i < 40; i++ {
		v = map[string]any{"l": v, "r": v}
	}
	start := time.Now()
	got := Normalize(v)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	u, _, ok := findUnsupported(got, 1)
	if !ok || u.Reason != reasonTooMany {
		t.Errorf("got %#v", u)
	}
}

type chain struct{ Next *chain }

func TestPointerDepthLimit(t *testing.T) {
	// An acyclic chain of 100 struct pointers: each pointer and each
	// struct is one level, so it is cut at depth 64.
	var c *chain
	for i := 0; i < 100; i++ {
		c = &chain{Next: c}
	}
	got := Normalize(c)
	u, depth, ok := findUnsupported(got, 1)
	if !ok || u.Reason != reasonDepth || depth > maxDepth+1 {
		t.Fatalf("got %#v at depth %d", u, depth)
	}
}

func nestMaps(levels int) any {
	var v any = "leaf"
	for i := 0; i < levels; i++ {
		v = map[string]any{"n": v}
	}
	return v
}

func TestDepthLimit(t *testing.T) {
	// 64 nested containers inside a property are kept…
	got := Normalize(nestMaps(64))
	if _, _, ok := findUnsupported(got, 1); ok {
		t.Fatal("64 levels of nesting should be encoded")
	}
	d := 0
	for v := got; ; d++ {
		m, ok := v.(map[string]any)
		if !ok {
			if v != "leaf" {
				t.Fatalf("leaf = %#v", v)
			}
			break
		}
		v = m["n"]
	}
	if d != 64 {
		t.Fatalf("depth %d, want 64", d)
	}
	// …the 65th becomes Unsupported.
	got = Normalize(nestMaps(65))
	u, depth, ok := findUnsupported(got, 1)
	if !ok || depth != 65 || u.Type != "map[string]interface {}" {
		t.Fatalf("got %#v at depth %d", u, depth)
	}
	// Same for slices reached through reflection.
	var v any = 1
	for i := 0; i < 70; i++ {
		v = []any{[]int{1}, v}
	}
	if _, _, ok := findUnsupported(Normalize(v), 1); !ok {
		t.Fatal("deep slices should end in Unsupported")
	}
}

func TestValueBudget(t *testing.T) {
	// A flat slice larger than the per-event budget becomes one placeholder.
	big := make([]any, maxValues+1)
	got := Normalize(big)
	if u, ok := got.(Unsupported); !ok || !strings.Contains(u.Reason, "too many") {
		t.Fatalf("got %T", got)
	}
	// Just under the budget is fine.
	ok := make([]any, 1000)
	if got := Normalize(ok).([]any); len(got) != 1000 {
		t.Fatal("1000 elements should be encoded")
	}
}

func TestConcurrentEncode(t *testing.T) {
	ev := mapHeavyEvent()
	ev.Properties["err"] = errors.New("x")
	want, _ := AppendEncode(nil, ev)
	done := make(chan bool)
	for g := 0; g < 8; g++ {
		go func() {
			ok := true
			for i := 0; i < 50; i++ {
				b, _ := AppendEncode(nil, ev)
				ok = ok && bytes.Equal(b, want)
			}
			done <- ok
		}()
	}
	for g := 0; g < 8; g++ {
		if !<-done {
			t.Error("concurrent encodings differ")
		}
	}
}

type allocStruct struct{ A int }

func TestAppendEncodeZeroAlloc(t *testing.T) {
	ev := &Event{
		Timestamp:       time.Date(2024, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600)),
		Level:           LevelError,
		MessageTemplate: "User {UserId} performed {Action} on {Resource}",
		Message:         "User 42 performed delete on doc",
		Exception:       errors.New("boom"),
		Properties: map[string]any{
			"s": "str", "i": 42, "i64": int64(-1), "u": uint32(7), "f": 1.5, "f32": float32(2),
			"b": true, "t": time.Now(), "d": time.Second, "bytes": []byte("xyz"),
			"err": errors.New("e"), "nil": nil,
			"m":   map[string]any{"x": 1, "y": []any{"a", 2, nil}},
			"arr": []any{1, "two", 3.0, map[string]any{"k": "v"}},
		},
	}
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(200, func() {
		var err error
		if _, err = AppendEncode(buf[:0], ev); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("AppendEncode allocated %v times per event, want 0", allocs)
	}
	// A reflection-only value is allowed to allocate but must work.
	ev.Properties["struct"] = allocStruct{A: 1}
	if _, err := AppendEncode(buf[:0], ev); err != nil {
		t.Fatal(err)
	}
}
