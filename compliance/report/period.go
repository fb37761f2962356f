package report

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrPeriod is matched (errors.Is) by the error of ParsePeriod.
var ErrPeriod = errors.New("bad period")

// PeriodHelp lists the forms ParsePeriod accepts.
const PeriodHelp = `a quarter (2026-Q1), a month (2026-03), a year (2026), a day (2026-03-05),
or FROM..TO where each end is a date (2026-03-01..2026-03-31: both days
included) or an RFC 3339 time (2026-03-01T00:00:00Z..2026-03-02T12:00:00Z:
from included, to excluded); dates are UTC`

// ParsePeriod parses a report period:
//
//   - 2026-Q1 … 2026-Q4: the quarter;
//   - 2026-03: the month; 2026: the year; 2026-03-05: the day;
//   - FROM..TO, each end a date or an RFC 3339 time: a date as FROM starts
//     at its midnight, a date as TO ends at the next midnight (the day is
//     included); a time is exact (FROM included, TO excluded).
//
// Dates are UTC. Years run from 1 to 9999. FROM must be before TO. A bad
// period gives an error that matches ErrPeriod and says which forms work.
func ParsePeriod(s string) (Period, error) {
	text := strings.TrimSpace(s)
	p, err := parsePeriod(text)
	if err != nil {
		return Period{}, fmt.Errorf("%w %q: %v; use %s", ErrPeriod, s, err, PeriodHelp)
	}
	p.Text = text
	return p, nil
}

func parsePeriod(s string) (Period, error) {
	if s == "" {
		return Period{}, errors.New("empty")
	}
	if from, to, ok := strings.Cut(s, ".."); ok {
		f, _, err := parseEnd(from)
		if err != nil {
			return Period{}, fmt.Errorf("from: %v", err)
		}
		t, day, err := parseEnd(to)
		if err != nil {
			return Period{}, fmt.Errorf("to: %v", err)
		}
		if day {
			t = t.AddDate(0, 0, 1)
		}
		if !f.Before(t) {
			return Period{}, errors.New("from is not before to")
		}
		return Period{From: f, To: t}, nil
	}
	if y, q, ok := strings.Cut(s, "-Q"); ok || strings.Contains(s, "-q") {
		if !ok {
			y, q, _ = strings.Cut(s, "-q")
		}
		year, err := parseYear(y)
		if err != nil {
			return Period{}, err
		}
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > 4 || len(q) != 1 {
			return Period{}, fmt.Errorf("quarter %q: use Q1, Q2, Q3 or Q4", q)
		}
		from := time.Date(year, time.Month(3*(n-1)+1), 1, 0, 0, 0, 0, time.UTC)
		return Period{From: from, To: from.AddDate(0, 3, 0)}, nil
	}
	switch len(s) {
	case 4:
		year, err := parseYear(s)
		if err != nil {
			return Period{}, err
		}
		from := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC)
		return Period{From: from, To: from.AddDate(1, 0, 0)}, nil
	case 7:
		from, err := time.Parse("2006-01", s)
		if err != nil || from.Year() < 1 {
			return Period{}, fmt.Errorf("month %q: use YYYY-MM", s)
		}
		return Period{From: from, To: from.AddDate(0, 1, 0)}, nil
	}
	from, day, err := parseEnd(s)
	if err != nil {
		return Period{}, err
	}
	if !day {
		return Period{}, errors.New("a single time is not a period: give FROM..TO")
	}
	return Period{From: from, To: from.AddDate(0, 0, 1)}, nil
}

// parseEnd parses one end of FROM..TO: a date (day true) or an RFC 3339
// time, returned in UTC.
func parseEnd(s string) (t time.Time, day bool, err error) {
	s = strings.TrimSpace(s)
	if len(s) == len("2006-01-02") {
		t, err := time.Parse(time.DateOnly, s)
		if err != nil || t.Year() < 1 {
			return time.Time{}, false, fmt.Errorf("date %q: use YYYY-MM-DD", s)
		}
		return t, true, nil
	}
	t, err = time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("%q is neither a date (YYYY-MM-DD) nor an RFC 3339 time (2026-03-01T00:00:00Z)", s)
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return time.Time{}, false, fmt.Errorf("time %q: the year must be 1 to 9999", s)
	}
	return t.UTC(), false, nil
}

func parseYear(s string) (int, error) {
	y, err := strconv.Atoi(s)
	if err != nil || len(s) != 4 || y < 1 {
		return 0, fmt.Errorf("year %q: use four digits, 0001 to 9999", s)
	}
	return y, nil
}

// formatSeconds formats d as a number of seconds for JSON: an integer when
// whole, else with up to nine decimals.
func formatSeconds(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10)
	}
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// human formats d for people: years, months or days for long durations
// (6y, 30 months, 400 days), else
// time.Duration's form rounded to the second.
func human(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == 0:
		return "0"
	case d%(365*day) == 0:
		return fmt.Sprintf("%dy", d/(365*day))
	case d%(30*day) == 0:
		return fmt.Sprintf("%d months", d/(30*day))
	case d >= 2*day:
		return fmt.Sprintf("%d days", (d+day/2)/day)
	case d >= time.Second:
		return d.Round(time.Second).String()
	}
	return d.String()
}
