package protect

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

func TestLuhn(t *testing.T) {
	for _, c := range []struct {
		d  string
		ok bool
	}{
		{"4111111111111111", true},
		{"4111111111111112", false},
		{"378282246310005", true},     // Amex test number
		{"6011111111111117", true},    // Discover
		{"4222222222222", true},       // 13-digit Visa
		{"6304000000000000", true},    // Maestro
		{"4000000000000000006", true}, // 19 digits
		{"79927398713", true},
		{"79927398710", false},
	} {
		if got := luhn([]byte(c.d)); got != c.ok {
			t.Errorf("luhn(%s) = %v, want %v", c.d, got, c.ok)
		}
	}
}

func TestFindPAN(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string // the matched span, "" for none
	}{
		{"card 4111111111111111 ok", "4111111111111111"},
		{"4111 1111 1111 1111", "4111 1111 1111 1111"},
		{"4111-1111-1111-1111.", "4111-1111-1111-1111"},
		{"x4111 - 1111 - 1111 - 1111y", "4111 - 1111 - 1111 - 1111"},
		{"3782 822463 10005", "3782 822463 10005"},
		{"order 2024 4111 1111 1111 1111", "4111 1111 1111 1111"},
		{"4111111111111112", ""},        // Luhn fails
		{"411111111111", ""},            // 12 digits
		{"41111111111111111111111", ""}, // a 23-digit run is no PAN
		{"4111    1111 1111 1111", ""},  // four spaces split it: groups too short
		{"a4111111111111111b", "4111111111111111"},
		{"%B4111111111111111^DOE/J^2512101?", "4111111111111111"},
		{"", ""},
	} {
		p, ok := findPAN(c.in, 0)
		got := ""
		if ok {
			got = c.in[p.start:p.end]
		}
		if got != c.want {
			t.Errorf("findPAN(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestLuhnFalsePositiveRate measures the share of random digit strings of
// each PAN length that pass the Luhn check: the share of numbers that are
// not card numbers that the Cards stage replaces (docs/protection.md).
func TestLuhnFalsePositiveRate(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 200000
	var d [maxPAN]byte
	for l := minPAN; l <= maxPAN; l++ {
		hits := 0
		for range n {
			for i := range l {
				d[i] = byte('0' + r.IntN(10))
			}
			if _, ok := findPAN(string(d[:l]), 0); ok {
				hits++
			}
		}
		rate := float64(hits) / n
		t.Logf("%d digits: %.2f%% of random strings pass", l, 100*rate)
		if rate < 0.095 || rate > 0.105 {
			t.Errorf("%d digits: rate %.4f, want about 0.10", l, rate)
		}
	}
	// Digits in ordinary text: random words and numbers of 1 to 12 digits
	// never match.
	var b strings.Builder
	for range 100000 {
		b.WriteString(" id ")
		for range 1 + r.IntN(12) {
			b.WriteByte(byte('0' + r.IntN(10)))
		}
	}
	if p, ok := findPAN(b.String(), 0); ok {
		t.Errorf("a PAN in short numbers: %q", b.String()[p.start:p.end])
	}
}

func TestFindPANDoesNotAllocate(t *testing.T) {
	s := strings.Repeat("user 12345 paid 99.95 EUR at 2026-12-02T10:00:00Z; ", 20)
	b := []byte(s)
	if n := testing.AllocsPerRun(100, func() {
		findPAN(s, 0)
		findPAN(b, 0)
	}); n != 0 {
		t.Errorf("findPAN allocates %v times without a match", n)
	}
}

// benchText is log text without card numbers, with the digits (times,
// amounts, IDs) that logs hold.
var benchText = strings.Repeat("User u-1001 paid 129.95 EUR for order 2026-120231 at 2026-12-02T10:00:00.123Z from 203.0.113.7 (session 8f14e45fceea167a5a36dedd4bea2543); ", 64)

func BenchmarkFindPAN(b *testing.B) {
	b.SetBytes(int64(len(benchText)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := findPAN(benchText, 0); ok {
			b.Fatal("match")
		}
	}
}

// BenchmarkFindPANDigits is the worst ordinary case: text that is all
// short digit groups.
func BenchmarkFindPANDigits(b *testing.B) {
	s := strings.Repeat("1234 5678 90 ", 1000)
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		findPAN(s, 0)
	}
}

// TestLuhnFalsePositivesInNumberLists measures how often a list of small
// numbers separated by single spaces holds a run that the scanner takes
// for a card number (docs/protection.md): separators let short numbers
// join into candidates.
func TestLuhnFalsePositivesInNumberLists(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, sep := range []string{" ", ", "} {
		const n = 20000
		hits := 0
		for range n {
			var b strings.Builder
			for range 10 {
				b.WriteString(strconv.Itoa(r.IntN(10000)))
				b.WriteString(sep)
			}
			if _, ok := findPAN(b.String(), 0); ok {
				hits++
			}
		}
		t.Logf("lists of 10 numbers below 10000 separated by %q: %.1f%% hold a match", sep, 100*float64(hits)/n)
		if sep == ", " && hits > 0 {
			t.Errorf("a comma joined numbers into a card number")
		}
	}
}
