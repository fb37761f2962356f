package event

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// version1 is the only encoding version written by this package.
const version1 byte = 1

// maxDepth is the deepest container nesting that is encoded. The
// Properties map is at depth 0, property values at depth 1; a map, slice,
// array, struct or pointer at a depth greater than maxDepth is replaced by
// Unsupported (and rejected by Decode).
const maxDepth = 64

// maxValues bounds the number of values encoded for one event, so that
// pathological inputs (for example a DAG of shared maps whose unfolding is
// exponential) terminate quickly. Containers that would exceed the budget
// are replaced by Unsupported.
const maxValues = 1 << 18

// Value tags. The numbers are part of the encoding format; never reuse or
// renumber them.
const (
	tagNil         byte = 0x00
	tagFalse       byte = 0x01
	tagTrue        byte = 0x02
	tagInt         byte = 0x03 // zigzag varint
	tagUint        byte = 0x04 // uvarint
	tagFloat       byte = 0x05 // 8 bytes, IEEE 754 bits, little endian
	tagComplex     byte = 0x06 // 2 × 8 bytes: real, imaginary
	tagString      byte = 0x07 // uvarint length, bytes
	tagBytes       byte = 0x08 // uvarint length, bytes
	tagTime        byte = 0x09 // time payload
	tagDuration    byte = 0x0A // zigzag varint nanoseconds
	tagError       byte = 0x0B // string payload
	tagJSON        byte = 0x0C // string payload, compact valid JSON
	tagUnsupported byte = 0x0D // string payload (type), string payload (reason)
	tagArray       byte = 0x0E // uvarint count, values
	tagMap         byte = 0x0F // uvarint count, (string payload key, value)…, keys strictly ascending
)

const (
	reasonDepth   = "nested deeper than 64 levels"
	reasonCycle   = "cycle: the value contains itself"
	reasonTooMany = "too many values in one event (limit 262144)"
)

var errNilEvent = errors.New("event: AppendEncode called with a nil *Event; pass a non-nil event")

// AppendEncode appends the canonical encoding of e to dst and returns the
// extended buffer. The encoding is deterministic: equal events give
// identical bytes (map keys are sorted bytewise). It is versioned: the
// first byte is the encoding version (1).
//
// Values that cannot be encoded are stored as Unsupported placeholders, so
// the only error is a nil e. AppendEncode does not allocate when dst has
// enough capacity and the properties are strings, integers, floats, bools,
// time.Time, time.Duration, []byte, errors, nil, []any or map[string]any
// values of at most 16 keys each (a larger map costs one allocation for
// sorting its keys).
func AppendEncode(dst []byte, e *Event) ([]byte, error) {
	if e == nil {
		return dst, errNilEvent
	}
	enc := encoder{buf: dst, budget: maxValues}
	enc.head(e, e.Message)
	if e.Properties == nil {
		enc.buf = append(enc.buf, tagNil)
	} else {
		enc.stringMap(e.Properties, 0)
	}
	return enc.buf, nil
}

// Normalize returns the value Decode would return for v when v is stored
// as a property value: what v looks like after a round trip. It is meant
// for tests (compare Normalize(want) with the decoded property).
func Normalize(v any) any {
	enc := encoder{budget: maxValues}
	enc.value(v, 1)
	d := decoder{b: enc.buf, s: string(enc.buf)}
	out, err := d.value(1)
	if err == nil && d.off != len(d.b) {
		err = d.fail("trailing bytes")
	}
	if err != nil {
		// Unreachable unless encoder and decoder disagree.
		return Unsupported{Type: typeName(v), Reason: "internal error: " + err.Error()}
	}
	return out
}

type encoder struct {
	buf    []byte
	budget int
	// path[d] identifies the container being encoded at depth d (zero for
	// values such as structs and arrays, which cannot be part of a
	// cycle by themselves). A map, slice or pointer that is already on the
	// path is a cycle.
	path [maxDepth + 1]pathEntry
}

// pathEntry identifies a map, slice or pointer: its address, its length
// (slices) and its type (a pointer to a struct and a pointer to its first
// field share an address).
type pathEntry struct {
	addr uintptr
	n    int
	typ  reflect.Type
}

var (
	typeMapAny   = reflect.TypeFor[map[string]any]()
	typeSliceAny = reflect.TypeFor[[]any]()
)

func (e *encoder) uvarint(x uint64) { e.buf = binary.AppendUvarint(e.buf, x) }

func (e *encoder) varint(x int64) { e.buf = binary.AppendVarint(e.buf, x) }

func (e *encoder) str(s string) {
	e.buf = binary.AppendUvarint(e.buf, uint64(len(s)))
	e.buf = append(e.buf, s...)
}

func (e *encoder) timePayload(t time.Time) {
	name, offset := t.Zone()
	e.varint(t.Unix())
	e.uvarint(uint64(t.Nanosecond()))
	e.varint(int64(offset))
	e.str(name)
}

func (e *encoder) float(f float64) {
	e.buf = append(e.buf, tagFloat)
	e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(f))
}

func (e *encoder) complex(c complex128) {
	e.buf = append(e.buf, tagComplex)
	e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(real(c)))
	e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(imag(c)))
}

func (e *encoder) int(i int64) {
	e.buf = append(e.buf, tagInt)
	e.varint(i)
}

func (e *encoder) uint(u uint64) {
	e.buf = append(e.buf, tagUint)
	e.uvarint(u)
}

func (e *encoder) string(s string) {
	e.buf = append(e.buf, tagString)
	e.str(s)
}

func (e *encoder) bytes(b []byte) {
	e.buf = append(e.buf, tagBytes)
	e.uvarint(uint64(len(b)))
	e.buf = append(e.buf, b...)
}

func (e *encoder) bool(b bool) {
	if b {
		e.buf = append(e.buf, tagTrue)
	} else {
		e.buf = append(e.buf, tagFalse)
	}
}

func (e *encoder) nil() { e.buf = append(e.buf, tagNil) }

func (e *encoder) unsupported(typ, reason string) {
	e.buf = append(e.buf, tagUnsupported)
	e.str(typ)
	e.str(reason)
}

// value encodes one value found at the given depth. The type switch
// handles the common kinds without reflection and without boxing; other
// values go through other.
func (e *encoder) value(v any, depth int) {
	e.budget--
	switch x := v.(type) {
	case nil:
		e.nil()
	case string:
		e.string(x)
	case bool:
		e.bool(x)
	case int:
		e.int(int64(x))
	case int64:
		e.int(x)
	case int32:
		e.int(int64(x))
	case int16:
		e.int(int64(x))
	case int8:
		e.int(int64(x))
	case uint:
		e.uint(uint64(x))
	case uint64:
		e.uint(x)
	case uint32:
		e.uint(uint64(x))
	case uint16:
		e.uint(uint64(x))
	case uint8:
		e.uint(uint64(x))
	case uintptr:
		e.uint(uint64(x))
	case float64:
		e.float(x)
	case float32:
		e.float(float64(x))
	case complex128:
		e.complex(x)
	case complex64:
		e.complex(complex128(x))
	case []byte:
		if x == nil {
			e.nil()
		} else {
			e.bytes(x)
		}
	case time.Time:
		e.buf = append(e.buf, tagTime)
		e.timePayload(x)
	case *time.Time:
		if x == nil {
			e.nil()
		} else {
			e.buf = append(e.buf, tagTime)
			e.timePayload(*x)
		}
	case time.Duration:
		e.buf = append(e.buf, tagDuration)
		e.varint(int64(x))
	case *time.Duration:
		if x == nil {
			e.nil()
		} else {
			e.buf = append(e.buf, tagDuration)
			e.varint(int64(*x))
		}
	case map[string]any:
		if x == nil {
			e.nil()
		} else {
			e.stringMap(x, depth)
		}
	case []any:
		if x == nil {
			e.nil()
		} else {
			e.slice(x, depth)
		}
	case *ErrorValue:
		if x == nil {
			e.nil()
		} else {
			e.buf = append(e.buf, tagError)
			e.str(x.Message)
		}
	case Unsupported:
		e.unsupported(x.Type, x.Reason)
	case *Unsupported:
		if x == nil {
			e.nil()
		} else {
			e.unsupported(x.Type, x.Reason)
		}
	case json.RawMessage:
		if x == nil {
			e.nil()
		} else {
			e.rawJSON(x, "json.RawMessage")
		}
	case error:
		// Checked before the nil-pointer rule: an error interface holding a
		// nil pointer is a non-nil error; its Error() may handle the nil
		// receiver or panic.
		msg, panicked := callError(x)
		if panicked != nil {
			e.unsupported(typeName(x), panicReason("Error", panicked))
		} else {
			e.buf = append(e.buf, tagError)
			e.str(msg)
		}
	default:
		e.other(v, depth)
	}
}

// other handles the values the fast path does not know: interfaces
// (json.Marshaler, encoding.TextMarshaler, fmt.Stringer) and then
// reflection by kind.
func (e *encoder) other(v any, depth int) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice:
		if rv.IsNil() {
			e.nil()
			return
		}
	}
	switch x := v.(type) {
	case json.Marshaler:
		out, panicked, err := callMarshalJSON(x)
		switch {
		case panicked != nil:
			e.unsupported(typeName(v), panicReason("MarshalJSON", panicked))
		case err != nil:
			e.unsupported(typeName(v), "MarshalJSON failed: "+safeErrorText(err))
		default:
			e.rawJSON(out, typeName(v))
		}
		return
	case encoding.TextMarshaler:
		out, panicked, err := callMarshalText(x)
		switch {
		case panicked != nil:
			e.unsupported(typeName(v), panicReason("MarshalText", panicked))
		case err != nil:
			e.unsupported(typeName(v), "MarshalText failed: "+safeErrorText(err))
		default:
			e.buf = append(e.buf, tagString)
			e.uvarint(uint64(len(out)))
			e.buf = append(e.buf, out...)
		}
		return
	case fmt.Stringer:
		s, panicked := callString(x)
		if panicked != nil {
			e.unsupported(typeName(v), panicReason("String", panicked))
		} else {
			e.string(s)
		}
		return
	}
	e.kind(rv, depth)
}

// child encodes a value reached through reflection (a field, element,
// map value or pointee). Values that can be turned back into interfaces go
// through value (so their methods are honored); read-only values (reached
// through unexported embedded structs) are encoded by kind only.
func (e *encoder) child(rv reflect.Value, depth int) {
	if !rv.IsValid() {
		e.budget--
		e.nil()
		return
	}
	if rv.CanInterface() {
		e.value(rv.Interface(), depth)
		return
	}
	e.budget--
	e.kind(rv, depth)
}

// kind encodes rv by its reflect.Kind.
func (e *encoder) kind(rv reflect.Value, depth int) {
	switch rv.Kind() {
	case reflect.Bool:
		e.bool(rv.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.int(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.uint(rv.Uint())
	case reflect.Float32, reflect.Float64:
		e.float(rv.Float())
	case reflect.Complex64, reflect.Complex128:
		e.complex(rv.Complex())
	case reflect.String:
		e.string(rv.String())
	case reflect.Pointer:
		if rv.IsNil() {
			e.nil()
			return
		}
		if !e.enter(pathEntry{addr: rv.Pointer(), typ: rv.Type()}, 1, depth) {
			return
		}
		e.child(rv.Elem(), depth+1)
	case reflect.Interface:
		if rv.IsNil() {
			e.nil()
			return
		}
		e.child(rv.Elem(), depth)
	case reflect.Slice:
		if rv.IsNil() {
			e.nil()
			return
		}
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			e.bytes(rv.Bytes())
			return
		}
		e.list(rv, depth)
	case reflect.Array:
		e.list(rv, depth)
	case reflect.Map:
		if rv.IsNil() {
			e.nil()
			return
		}
		e.reflectMap(rv, depth)
	case reflect.Struct:
		e.structValue(rv, depth)
	case reflect.Chan:
		e.unsupported(rv.Type().String(), "cannot encode channels")
	case reflect.Func:
		e.unsupported(rv.Type().String(), "cannot encode functions")
	case reflect.UnsafePointer:
		e.unsupported(rv.Type().String(), "cannot encode unsafe pointers")
	default:
		e.unsupported(rv.Type().String(), "cannot encode values of kind "+rv.Kind().String())
	}
}

// enter reports whether a container of n elements identified by id (id.addr
// is 0 for structs and arrays) may be encoded at depth, and records it on
// the path. If not, it writes the Unsupported placeholder.
func (e *encoder) enter(id pathEntry, n, depth int) bool {
	if depth > maxDepth {
		e.unsupported(id.typ.String(), reasonDepth)
		return false
	}
	if id.addr != 0 {
		for i := 0; i < depth; i++ {
			if p := &e.path[i]; p.addr == id.addr && p.n == id.n && p.typ == id.typ {
				e.unsupported(id.typ.String(), reasonCycle)
				return false
			}
		}
	}
	if n > e.budget {
		e.unsupported(id.typ.String(), reasonTooMany)
		return false
	}
	e.path[depth] = id
	return true
}

type kv struct {
	k string
	v any
}

func compareKV(a, b kv) int { return strings.Compare(a.k, b.k) }

// stringMap encodes a map[string]any. Up to 16 keys are sorted in a stack
// array; larger maps cost one allocation.
func (e *encoder) stringMap(m map[string]any, depth int) {
	if !e.enter(pathEntry{addr: reflect.ValueOf(m).Pointer(), typ: typeMapAny}, len(m), depth) {
		return
	}
	var stack [16]kv
	var entries []kv
	if len(m) <= len(stack) {
		entries = stack[:0]
	} else {
		entries = make([]kv, 0, len(m))
	}
	for k, v := range m {
		entries = append(entries, kv{k, v})
	}
	slices.SortFunc(entries, compareKV)
	e.buf = append(e.buf, tagMap)
	e.uvarint(uint64(len(entries)))
	for i := range entries {
		e.str(entries[i].k)
		e.value(entries[i].v, depth+1)
		entries[i] = kv{}
	}
}

func (e *encoder) slice(s []any, depth int) {
	if !e.enter(pathEntry{addr: uintptr(unsafe.Pointer(unsafe.SliceData(s))), n: len(s), typ: typeSliceAny}, len(s), depth) {
		return
	}
	e.buf = append(e.buf, tagArray)
	e.uvarint(uint64(len(s)))
	for _, x := range s {
		e.value(x, depth+1)
	}
}

// list encodes a slice or array through reflection.
func (e *encoder) list(rv reflect.Value, depth int) {
	n := rv.Len()
	id := pathEntry{typ: rv.Type()}
	if rv.Kind() == reflect.Slice {
		id.addr, id.n = rv.Pointer(), n
	}
	if !e.enter(id, n, depth) {
		return
	}
	e.buf = append(e.buf, tagArray)
	e.uvarint(uint64(n))
	for i := 0; i < n; i++ {
		e.child(rv.Index(i), depth+1)
	}
}

type mapEntry struct {
	key string
	val reflect.Value
}

// reflectMap encodes any map as map[string]any: string-kind keys are used
// as they are, other keys are turned into strings with fmt.Sprint. When
// two keys give the same string, the entry whose encoded value is
// bytewise smallest is kept, so the result stays deterministic.
func (e *encoder) reflectMap(rv reflect.Value, depth int) {
	if !e.enter(pathEntry{addr: rv.Pointer(), typ: rv.Type()}, rv.Len(), depth) {
		return
	}
	stringKeys := rv.Type().Key().Kind() == reflect.String
	entries := make([]mapEntry, 0, rv.Len())
	it := rv.MapRange()
	for it.Next() {
		k := it.Key()
		var ks string
		if stringKeys {
			ks = k.String()
		} else {
			ks = fmt.Sprint(k)
		}
		entries = append(entries, mapEntry{ks, it.Value()})
	}
	slices.SortStableFunc(entries, func(a, b mapEntry) int { return strings.Compare(a.key, b.key) })
	unique := 0
	for i := range entries {
		if i == 0 || entries[i].key != entries[i-1].key {
			unique++
		}
	}
	e.buf = append(e.buf, tagMap)
	e.uvarint(uint64(unique))
	for i := 0; i < len(entries); {
		j := i + 1
		for j < len(entries) && entries[j].key == entries[i].key {
			j++
		}
		e.str(entries[i].key)
		if j == i+1 {
			e.child(entries[i].val, depth+1)
		} else {
			var best []byte
			for _, en := range entries[i:j] {
				tmp := encoder{budget: e.budget, path: e.path}
				tmp.child(en.val, depth+1)
				e.budget = tmp.budget
				if best == nil || bytes.Compare(tmp.buf, best) < 0 {
					best = tmp.buf
				}
			}
			e.buf = append(e.buf, best...)
		}
		i = j
	}
}

// structField describes one encoded field of a struct type.
type structField struct {
	name  string
	index int
}

var structFieldCache sync.Map // reflect.Type -> []structField

// fieldsOf returns the encoded fields of struct type t sorted by name.
// Exported fields are included under their name, or the name from a
// `json:"name"` tag; `json:"-"` skips a field. Embedded structs (exported
// or not) appear as one nested map under their type name. When two fields
// get the same name, the first declared wins.
func fieldsOf(t reflect.Type) []structField {
	if f, ok := structFieldCache.Load(t); ok {
		return f.([]structField)
	}
	var fields []structField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		embeddedStruct := false
		if f.Anonymous {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			embeddedStruct = ft.Kind() == reflect.Struct
		}
		if !f.IsExported() && !embeddedStruct {
			continue
		}
		name := f.Name
		if tag, ok := f.Tag.Lookup("json"); ok {
			if tag == "-" {
				continue
			}
			if n, _, _ := strings.Cut(tag, ","); n != "" {
				name = n
			}
		}
		fields = append(fields, structField{name: name, index: i})
	}
	slices.SortStableFunc(fields, func(a, b structField) int { return strings.Compare(a.name, b.name) })
	fields = slices.CompactFunc(fields, func(a, b structField) bool { return a.name == b.name })
	f, _ := structFieldCache.LoadOrStore(t, fields)
	return f.([]structField)
}

func (e *encoder) structValue(rv reflect.Value, depth int) {
	fields := fieldsOf(rv.Type())
	if !e.enter(pathEntry{typ: rv.Type()}, len(fields), depth) {
		return
	}
	e.buf = append(e.buf, tagMap)
	e.uvarint(uint64(len(fields)))
	for _, f := range fields {
		e.str(f.name)
		e.child(rv.Field(f.index), depth+1)
	}
}

// rawJSON writes src as compact JSON, or Unsupported if it is not valid.
func (e *encoder) rawJSON(src []byte, typ string) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, src); err != nil {
		e.unsupported(typ, "MarshalJSON returned invalid JSON: "+err.Error())
		return
	}
	e.buf = append(e.buf, tagJSON)
	e.uvarint(uint64(buf.Len()))
	e.buf = append(e.buf, buf.Bytes()...)
}

func typeName(v any) string {
	if v == nil {
		return "nil"
	}
	return reflect.TypeOf(v).String()
}

func panicReason(method string, r any) string {
	return method + "() panicked: " + safeSprint(r)
}

// safeSprint formats a panic value; fmt already recovers panics in String
// and Error methods, the extra recover is for anything else.
func safeSprint(v any) (s string) {
	defer func() {
		if recover() != nil {
			s = "(unprintable panic value)"
		}
	}()
	return fmt.Sprint(v)
}

func safeErrorText(err error) string {
	s, panicked := callError(err)
	if panicked != nil {
		return "(Error() panicked)"
	}
	return s
}

// recovered normalizes a recovered panic value so that a nil panic value
// still counts as a panic.
func recovered(r any) any {
	if r == nil {
		return "nil"
	}
	return r
}

func callError(err error) (s string, panicked any) {
	done := false
	defer func() {
		if !done {
			panicked = recovered(recover())
		}
	}()
	s = err.Error()
	done = true
	return s, nil
}

func callString(x fmt.Stringer) (s string, panicked any) {
	done := false
	defer func() {
		if !done {
			panicked = recovered(recover())
		}
	}()
	s = x.String()
	done = true
	return s, nil
}

func callMarshalJSON(x json.Marshaler) (out []byte, panicked any, err error) {
	done := false
	defer func() {
		if !done {
			panicked = recovered(recover())
		}
	}()
	out, err = x.MarshalJSON()
	done = true
	return out, nil, err
}

func callMarshalText(x encoding.TextMarshaler) (out []byte, panicked any, err error) {
	done := false
	defer func() {
		if !done {
			panicked = recovered(recover())
		}
	}()
	out, err = x.MarshalText()
	done = true
	return out, nil, err
}
