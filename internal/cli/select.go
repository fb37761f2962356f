package cli

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/willibrandon/mtlog-audit/internal/export"
	"github.com/willibrandon/mtlog-audit/wal"
)

// selectionHelp documents the selection flags of replay and export.
const selectionHelp = `Selecting events:
  --since T, --until T  events at or after T, and before T. T is RFC 3339
                        (2026-11-23T10:00:00Z), a date (2026-11-23) or a
                        date and time without a zone, both taken as UTC,
                        or a duration back from now: 90s, 15m, 1h, 7d.
                        (--from and --to are the same, without durations.)
  --seq A..B            sequence numbers A to B, both included (A.., ..B,
                        or one number N); seal and checkpoint records have
                        sequence numbers too, so the events' numbers skip
  --limit N             at most the first N selected events
  --last N              only the last N selected events (held in memory)`

// selection is the flags that choose events: time range, sequence range,
// filter and count.
type selection struct {
	from, to     string
	since, until string
	seq          string
	filter       string
	limit, last  int64
	keyring      string // --keyring: decrypt encrypted fields with it
	transit      string // --vault-transit: the keyring's provider
}

func (s *selection) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&s.since, "since", "", "only events at or after this time (RFC 3339, a date, or a duration back from now: 1h, 7d)")
	f.StringVar(&s.until, "until", "", "only events before this time (RFC 3339, a date, or a duration back from now)")
	f.StringVar(&s.from, "from", "", "only events at or after this time (RFC 3339, or a date YYYY-MM-DD)")
	f.StringVar(&s.to, "to", "", "only events before this time (RFC 3339, or a date YYYY-MM-DD)")
	f.StringVar(&s.seq, "seq", "", "only sequence numbers A..B (both included; A.., ..B or N)")
	f.StringVar(&s.filter, "filter", "", "only events for which this expression is true (see below)")
	f.Int64Var(&s.limit, "limit", 0, "at most the first N selected events")
	f.Int64Var(&s.last, "last", 0, "only the last N selected events")
	f.StringVar(&s.keyring, "keyring", "", "decrypt the fields encrypted by audit.WithEncryption with this keyring file (without it they read as <encrypted key=ID>)")
	f.StringVar(&s.transit, "vault-transit", "", "with --keyring: its keys are wrapped by this Vault Transit key, MOUNT/NAME")
}

// compiled is a parsed selection.
type compiled struct {
	// from and to bound the time range [from, to) where hasFrom, hasTo;
	// win selects the records that may hold an event in it by their
	// stored times (its zero bounds are open, so it can be wider).
	from, to       time.Time
	hasFrom, hasTo bool
	win            wal.Window
	seqFrom, seqTo uint64
	filter         *export.Filter
	limit          uint64
	last           int
	withHash       bool // compute each event's leaf hash (--with-hash)
	// follow keeps reading new records as they are written (--follow),
	// looking every poll; idle is called whenever everything written so
	// far was read.
	follow bool
	poll   time.Duration
	idle   func() error
	// keys reads encrypted fields back (see keys.go).
	keys reader
}

// inTime reports whether t lies in the time range.
func (c *compiled) inTime(t time.Time) bool {
	return (!c.hasFrom || !t.Before(c.from)) && (!c.hasTo || t.Before(c.to))
}

// maxLast bounds --last, whose events are held in memory.
const maxLast = 10_000_000

func (s *selection) compile(cmd *cobra.Command) (*compiled, error) {
	c := &compiled{seqFrom: 0, seqTo: math.MaxUint64}
	if err := c.keys.open(s.keyring, s.transit, cmd.ErrOrStderr()); err != nil {
		return nil, err
	}
	now := time.Now()
	changed := func(name string) bool { return cmd.Flags().Changed(name) }
	if s.since != "" && s.from != "" {
		return nil, &flagError{fmt.Errorf("--since and --from are the same: give one")}
	}
	if s.until != "" && s.to != "" {
		return nil, &flagError{fmt.Errorf("--until and --to are the same: give one")}
	}
	bound := func(flag, v string, durations bool, dst *time.Time, set *bool) error {
		if v == "" {
			return nil
		}
		t, err := parseWhen(flag, v, durations, now)
		if err != nil {
			return err
		}
		*dst, *set = t, true
		return nil
	}
	for _, b := range []struct {
		flag, v   string
		durations bool
		dst       *time.Time
		set       *bool
	}{
		{"--since", s.since, true, &c.from, &c.hasFrom}, {"--from", s.from, false, &c.from, &c.hasFrom},
		{"--until", s.until, true, &c.to, &c.hasTo}, {"--to", s.to, false, &c.to, &c.hasTo},
	} {
		if err := bound(b.flag, b.v, b.durations, b.dst, b.set); err != nil {
			return nil, err
		}
	}
	if c.hasFrom && c.hasTo && c.from.After(c.to) {
		return nil, usageErr("the time range is empty: its start (%s) is after its end (%s)", c.from.UTC().Format(time.RFC3339Nano), c.to.UTC().Format(time.RFC3339Nano))
	}
	c.win = wal.Window{From: c.from, To: c.to}
	if s.seq != "" {
		a, b, err := parseSeqRange(s.seq)
		if err != nil {
			return nil, err
		}
		c.seqFrom, c.seqTo = a, b
	}
	if changed("limit") && s.limit <= 0 {
		return nil, &flagError{fmt.Errorf("--limit %d: give a positive number of events", s.limit)}
	}
	if changed("last") && (s.last <= 0 || s.last > maxLast) {
		return nil, &flagError{fmt.Errorf("--last %d: give a number of events from 1 to %d", s.last, maxLast)}
	}
	if s.limit > 0 && s.last > 0 {
		return nil, &flagError{fmt.Errorf("--limit and --last cannot be combined: --limit takes the first events, --last the last")}
	}
	c.limit, c.last = uint64(s.limit), int(s.last)
	if s.filter != "" {
		f, err := export.CompileFilter(s.filter)
		if err != nil {
			return nil, usageErr("%w", err)
		}
		c.filter = f
	}
	return c, nil
}

// parseWhen parses a time flag: RFC 3339, a date and time without a zone
// or a bare date (both UTC), or, when durations, a duration back from now
// (Go syntax, plus d for days).
func parseWhen(flag, v string, durations bool, now time.Time) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	if durations {
		if d, ok := parseAgo(v); ok {
			return now.Add(-d), nil
		}
		return time.Time{}, &flagError{fmt.Errorf("%s %q is not a time: use RFC 3339 (2026-11-23T10:00:00Z), a date (2026-11-23; UTC) or a duration back from now (90s, 15m, 1h, 7d)", flag, v)}
	}
	return time.Time{}, &flagError{fmt.Errorf("%s %q is not a time: use RFC 3339 (2026-11-23T10:00:00Z) or a date (2026-11-23; UTC)", flag, v)}
}

// parseAgo parses a positive duration: Go syntax (90s, 1h30m) or a whole
// number of days (7d).
func parseAgo(v string) (time.Duration, bool) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 32)
		if err != nil || n == 0 || n > 1_000_000 {
			return 0, false
		}
		return time.Duration(n) * 24 * time.Hour, true
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, false
	}
	return d, true
}

// parseSeqRange parses --seq: A..B, A.., ..B or N.
func parseSeqRange(v string) (uint64, uint64, error) {
	bad := func() (uint64, uint64, error) {
		return 0, 0, &flagError{fmt.Errorf("--seq %q: give A..B (both included), A.., ..B or one number N, with sequence numbers from 1", v)}
	}
	num := func(s string, dflt uint64) (uint64, bool) {
		if s == "" {
			return dflt, true
		}
		n, err := strconv.ParseUint(s, 10, 64)
		return n, err == nil && n > 0
	}
	a, b, isRange := strings.Cut(strings.TrimSpace(v), "..")
	if !isRange {
		n, ok := num(a, 0)
		if !ok || a == "" {
			return bad()
		}
		return n, n, nil
	}
	if a == "" && b == "" {
		return bad()
	}
	from, ok1 := num(a, 1)
	to, ok2 := num(b, math.MaxUint64)
	if !ok1 || !ok2 {
		return bad()
	}
	if from > to {
		return 0, 0, &flagError{fmt.Errorf("--seq %q: %d is larger than %d", v, from, to)}
	}
	return from, to, nil
}

// lastN holds the last n events added.
type lastN struct {
	n     int
	items []*item
	next  int // where the next event goes once n are held
}

func newLastN(n int) *lastN { return &lastN{n: n} }

func (l *lastN) add(it *item) {
	if len(l.items) < l.n {
		l.items = append(l.items, it)
		return
	}
	l.items[l.next] = it
	l.next = (l.next + 1) % l.n
}

// each gives the held events to fn, oldest first.
func (l *lastN) each(fn func(it *item) error) error {
	for i := range len(l.items) {
		if err := fn(l.items[(l.next+i)%len(l.items)]); err != nil {
			return err
		}
	}
	return nil
}
