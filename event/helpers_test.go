package event

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"time"
)

// equalValue compares two decoded values exactly: floats by bits, times by
// instant and zone, byte slices by content and nil-ness, containers
// recursively, everything else by dynamic type and ==.
func equalValue(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case float64:
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	case complex128:
		y, ok := b.(complex128)
		return ok && math.Float64bits(real(x)) == math.Float64bits(real(y)) &&
			math.Float64bits(imag(x)) == math.Float64bits(imag(y))
	case time.Time:
		y, ok := b.(time.Time)
		return ok && equalTime(x, y)
	case []byte:
		y, ok := b.([]byte)
		return ok && (x == nil) == (y == nil) && bytes.Equal(x, y)
	case json.RawMessage:
		y, ok := b.(json.RawMessage)
		return ok && (x == nil) == (y == nil) && bytes.Equal(x, y)
	case *ErrorValue:
		y, ok := b.(*ErrorValue)
		if !ok || (x == nil) != (y == nil) {
			return false
		}
		return x == nil || x.Message == y.Message
	case []any:
		y, ok := b.([]any)
		if !ok || (x == nil) != (y == nil) || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		return ok && equalMap(x, y)
	}
	if b == nil || reflect.TypeOf(a) != reflect.TypeOf(b) || !reflect.TypeOf(a).Comparable() {
		return false
	}
	return a == b
}

func equalMap(x, y map[string]any) bool {
	if (x == nil) != (y == nil) || len(x) != len(y) {
		return false
	}
	for k, xv := range x {
		yv, ok := y[k]
		if !ok || !equalValue(xv, yv) {
			return false
		}
	}
	return true
}

func equalTime(x, y time.Time) bool {
	xn, xo := x.Zone()
	yn, yo := y.Zone()
	return x.Equal(y) && xn == yn && xo == yo
}

// equalEvent compares two events the way a round trip should preserve
// them.
func equalEvent(a, b *Event) bool {
	if a == nil || b == nil {
		return a == b
	}
	if !equalTime(a.Timestamp, b.Timestamp) || a.Level != b.Level ||
		a.MessageTemplate != b.MessageTemplate || a.Message != b.Message {
		return false
	}
	if (a.Exception == nil) != (b.Exception == nil) {
		return false
	}
	if a.Exception != nil && a.Exception.Error() != b.Exception.Error() {
		return false
	}
	return equalMap(a.Properties, b.Properties)
}
