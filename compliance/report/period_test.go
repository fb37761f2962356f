package report

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestParsePeriod covers each form of period and its bounds.
func TestParsePeriod(t *testing.T) {
	d := func(y int, m time.Month, day int) time.Time { return time.Date(y, m, day, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		in       string
		from, to time.Time
	}{
		{"2026-Q1", d(2026, 1, 1), d(2026, 4, 1)},
		{"2026-Q4", d(2026, 10, 1), d(2027, 1, 1)},
		{"2026-q2", d(2026, 4, 1), d(2026, 7, 1)},
		{"2026-03", d(2026, 3, 1), d(2026, 4, 1)},
		{"2026-02", d(2026, 2, 1), d(2026, 3, 1)},
		{"2026", d(2026, 1, 1), d(2027, 1, 1)},
		{"2026-03-05", d(2026, 3, 5), d(2026, 3, 6)},
		{"2026-03-01..2026-03-31", d(2026, 3, 1), d(2026, 4, 1)},
		{" 2026-03-01..2026-03-01 ", d(2026, 3, 1), d(2026, 3, 2)},
		{"2026-03-01T10:00:00Z..2026-03-01T12:30:00Z", time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)},
		{"2026-03-01T10:00:00+02:00..2026-03-02", time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC), d(2026, 3, 3)},
	} {
		p, err := ParsePeriod(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !p.From.Equal(tc.from) || !p.To.Equal(tc.to) || p.From.Location() != time.UTC {
			t.Errorf("%q: [%v, %v), want [%v, %v)", tc.in, p.From, p.To, tc.from, tc.to)
		}
		if p.Text != strings.TrimSpace(tc.in) {
			t.Errorf("%q: text %q", tc.in, p.Text)
		}
	}
}

// TestParsePeriodErrors: each bad period is an ErrPeriod that says which
// forms work.
func TestParsePeriodErrors(t *testing.T) {
	for _, in := range []string{"", "Q1", "2026-Q5", "2026-Q0", "2026-Q12", "2026-13", "26-03", "0000", "2026-03-32",
		"2026-03-31..2026-03-01", "2026-03-01T12:00:00Z..2026-03-01T12:00:00Z", "2026-03-01T12:00:00Z", "yesterday",
		"2026-03-01..", "..2026-03-01", "2026-03-01...2026-03-02", "10000", "2026-03-01T00:00:00Z..10000-01-01T00:00:00Z"} {
		_, err := ParsePeriod(in)
		if !errors.Is(err, ErrPeriod) {
			t.Errorf("%q: %v, want ErrPeriod", in, err)
			continue
		}
		if !strings.Contains(err.Error(), "2026-Q1") || !strings.Contains(err.Error(), "FROM..TO") {
			t.Errorf("%q: the error does not say which forms work: %v", in, err)
		}
	}
}

// FuzzParsePeriod: any input gives a period with From before To, or
// ErrPeriod; never a panic.
func FuzzParsePeriod(f *testing.F) {
	for _, s := range []string{"2026-Q1", "2026-03", "2026", "2026-03-05", "2026-03-01..2026-03-31",
		"2026-03-01T10:00:00Z..2026-03-01T12:30:00Z", "9999-Q4", "0001-01-01..9999-12-31", "..", "-Q", "2026-q"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePeriod(s)
		if err != nil {
			if !errors.Is(err, ErrPeriod) {
				t.Fatalf("%q: %v is not ErrPeriod", s, err)
			}
			return
		}
		if !p.From.Before(p.To) {
			t.Fatalf("%q: [%v, %v) is empty", s, p.From, p.To)
		}
		_, bs := buckets(p)
		if len(bs) == 0 || len(bs) > 10000 {
			t.Fatalf("%q: %d timeline buckets", s, len(bs))
		}
	})
}
