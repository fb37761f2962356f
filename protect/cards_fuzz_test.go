package protect

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/willibrandon/mtlog-audit/event"
)

// FuzzCards feeds random text (random bytes, invalid UTF-8) to the card
// stage and the masks, as a message, a key, a string and a []byte: none
// panics, and no card number the scanner finds in the input survives in
// any text of the written event: neither as a whole run of digits once
// separators are removed, nor as a card number the scanner finds again.
// (The texts are read from the decoded event: in the encoding, a length
// byte can be an ASCII digit next to a string's digits.)
func FuzzCards(f *testing.F) {
	for _, s := range []string{
		"", "4111111111111111", "4111 1111 1111 1111", "x%B4111111111111111^A^2512?y",
		";4111111111111111=2512?", "\xff4111-1111-1111-1111\xfe", "1234 4111111111111111 5678",
		strings.Repeat("1 ", 100), "cvv 123",
	} {
		f.Add(s)
	}
	tok, _ := NewCards(CardPolicy{KeyID: "k", Key: testKey})
	trunc, _ := NewCards(CardPolicy{Truncate: true})
	mask, _ := NewMask([]string{"a"}, []string{"b"})
	stages := Pipeline{NewSADFilter(), mask, tok}
	f.Fuzz(func(t *testing.T, s string) {
		ev := &event.Event{
			MessageTemplate: s, Message: s,
			Properties: map[string]any{s: s, "b": []byte(s), "cvv": s, "a": s, "n": []any{s, map[string]any{s: s}}},
		}
		var found, spans []string
		for i := 0; ; {
			p, ok := findPAN(s, i)
			if !ok {
				break
			}
			found = append(found, string(p.digits[:p.n]))
			spans = append(spans, s[p.start:p.end])
			i = p.end
		}
		for _, st := range []Stage{stages, trunc} {
			out, err := st.Protect(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			b, err := event.AppendEncode(nil, out)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := event.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range texts(dec) {
				if st == trunc {
					// The digits a truncation keeps may join neighbouring
					// digits into new runs; the number as written must not
					// be left.
					for _, sp := range spans {
						if wholeRun(x, sp) {
							t.Fatalf("card number %s of %q survives in %q", sp, s, x)
						}
					}
					continue
				}
				flat := strings.NewReplacer(" ", "", "-", "").Replace(x)
				for _, d := range found {
					if wholeRun(flat, d) {
						t.Fatalf("card number %s of %q survives in %q", d, s, x)
					}
				}
				for i := 0; ; {
					p, ok := findPAN(x, i)
					if !ok {
						break
					}
					if slices.Contains(found, string(p.digits[:p.n])) {
						t.Fatalf("card number %s of %q survives in %q", p.digits[:p.n], s, x)
					}
					i = p.end
				}
			}
		}
	})
}

// wholeRun reports whether the digits d stand in s as a whole run of
// digits (a run of more digits is not a card number, and may stay).
func wholeRun(s, d string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], d)
		if j < 0 {
			return false
		}
		j += i
		if (j == 0 || !isDigit(s[j-1])) && (j+len(d) == len(s) || !isDigit(s[j+len(d)])) {
			return true
		}
		i = j + 1
	}
}

// texts returns every string of a decoded event: its messages, exception,
// keys and string values.
func texts(ev *event.Event) []string {
	out := []string{ev.MessageTemplate, ev.Message}
	if ev.Exception != nil {
		out = append(out, ev.Exception.Error())
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			out = append(out, x)
		case []byte:
			out = append(out, string(x))
		case []any:
			for _, y := range x {
				walk(y)
			}
		case map[string]any:
			for k, y := range x {
				out = append(out, k)
				walk(y)
			}
		}
	}
	walk(ev.Properties)
	return out
}
