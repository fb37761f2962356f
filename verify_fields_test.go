package audit

import (
	"reflect"
	"testing"

	"github.com/willibrandon/mtlog-audit/internal/verify"
)

// TestVerifyTypesMatch checks that the exported report types and their
// counterparts in internal/verify have the same fields, in order, so that
// verifyLog's copy and the conversions of Problem and Progress lose nothing.
func TestVerifyTypesMatch(t *testing.T) {
	for _, c := range []struct{ root, low any }{
		{IntegrityReport{}, verify.Report{}},
		{Problem{}, verify.Problem{}},
		{Progress{}, verify.Progress{}},
	} {
		r, l := reflect.TypeOf(c.root), reflect.TypeOf(c.low)
		if r.NumField() != l.NumField() {
			t.Fatalf("%s has %d fields, %s %d: keep them alike", r, r.NumField(), l, l.NumField())
		}
		for i := range r.NumField() {
			if r.Field(i).Name != l.Field(i).Name {
				t.Errorf("%s field %d is %s, %s's is %s", r, i, r.Field(i).Name, l, l.Field(i).Name)
			}
		}
	}
}
