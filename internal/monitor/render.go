package monitor

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/willibrandon/mtlog-audit/event"
)

// Line is one line of a rendered snapshot; Kind tells the terminal UI how
// to style it.
type Line struct {
	Kind LineKind
	Text string
}

// LineKind is the role of a Line.
type LineKind int

// The kinds of Line.
const (
	LineTitle LineKind = iota
	LineStatus
	LineProblem
	LineField
)

// Lines renders a snapshot as text lines, each at most width columns
// (0: no limit): the title, the status, the problems, then the fields. A
// problem is wrapped, so that what to do is never cut off; other lines are
// truncated with "…".
func Lines(s Snapshot, width int) []Line {
	var out []Line
	add := func(k LineKind, format string, a ...any) {
		text := fmt.Sprintf(format, a...)
		switch {
		case width <= 0:
		case k == LineProblem:
			for _, l := range strings.Split(ansi.Wrap(text, width-2, " /"), "\n") {
				out = append(out, Line{k, l})
			}
			return
		default:
			text = ansi.Truncate(text, width, "…")
		}
		out = append(out, Line{k, text})
	}
	add(LineTitle, "mtlog-audit monitor  %s  %s", s.Target, s.Time.UTC().Format("2006-01-02 15:04:05 UTC"))
	status := strings.ToUpper(string(s.Status))
	switch {
	case s.WAL != nil && s.WAL.Live:
		status += "  live: " + s.WAL.LockOwner + " writes the log"
	case s.WAL != nil:
		status += "  not live (no process holds the log's lock)"
	case s.Metrics != nil && s.Metrics.State != "":
		status += "  sink " + s.Metrics.State
	}
	add(LineStatus, "status:      %s", status)
	for _, p := range s.Problems {
		add(LineProblem, "! %s", p)
	}
	f := func(name, format string, a ...any) { add(LineField, "%-12s %s", name+":", fmt.Sprintf(format, a...)) }
	if w := s.WAL; w != nil {
		walFields(f, w, s.Time)
	}
	if m := s.Metrics; m != nil {
		metricsFields(f, m)
	}
	return out
}

// Text renders a snapshot as plain text, one line each, width as Lines.
func Text(s Snapshot, width int) string {
	var b strings.Builder
	for _, l := range Lines(s, width) {
		b.WriteString(l.Text)
		b.WriteByte('\n')
	}
	return b.String()
}

func walFields(f func(name, format string, a ...any), w *WALStatus, now time.Time) {
	f("events/s", "%.1f (last %s)", w.EventsPerSecond, time.Duration(w.RateWindowSeconds*float64(time.Second)))
	if w.Records == 0 {
		f("records", "none")
	} else {
		f("records", "%d read, last seq %d, %d events", w.Records, w.LastSeq, w.Events)
	}
	f("levels", "%s", levelMix(w.Levels, w.Events))
	if e := w.LastEvent; e != nil {
		f("last event", "#%d %s %s %q", e.Seq, e.Time.UTC().Format(time.RFC3339), e.Level, e.Message)
	} else {
		f("last event", "none")
	}
	f("segments", "%d, %s", w.Segments, bytesText(float64(w.Bytes)))
	if c := w.Checkpoint; c != nil {
		age := "no time"
		if !c.Time.IsZero() {
			age = fmt.Sprintf("%s ago", (time.Duration(c.AgeSeconds * float64(time.Second))).Round(time.Second))
		}
		f("checkpoint", "tree size %d, %s, %d stored", c.TreeSize, age, c.Stored)
		f("  signed by", "%s (not checked; 'verify --key' checks)", strings.Join(c.SignerKeyIDs, ", "))
	} else {
		f("checkpoint", "none (the sink signs checkpoints only with a signing key)")
	}
	v := w.Verification
	text := fmt.Sprintf("%s: %d records (%d new), %d checkpoint(s) match the records", v.State, v.Records, v.NewRecords, v.CheckpointsMatched)
	if v.CheckpointsUnchecked > 0 {
		text += fmt.Sprintf(", %d not checked", v.CheckpointsUnchecked)
	}
	if v.Covered > 0 {
		text += fmt.Sprintf(", covered to %d", v.Covered)
	}
	f("verified", "%s", text)
	if v.Detail != "" && v.State != "damaged" {
		f("", "%s", v.Detail)
	}
	if d := w.Disk; d != nil {
		f("disk", "%s free of %s (%.1f%%)", bytesText(float64(d.FreeBytes)), bytesText(float64(d.TotalBytes)), 100*d.FreeRatio)
	}
}

func metricsFields(f func(name, format string, a ...any), m *MetricsStatus) {
	state := m.State
	if state == "" {
		state = "not exported"
	}
	f("sink", "%s", state)
	rate := "(next scrape)"
	if m.WritesPerSecond != nil {
		rate = fmt.Sprintf("%.1f/s", *m.WritesPerSecond)
	}
	f("writes", "%s ok, %g total ok, %g error, %g unwritable", rate, m.Writes["ok"], m.Writes["error"], m.Writes["unwritable"])
	f("ack", "p50 %s, p99 %s", optSeconds(m.AckP50Seconds), optSeconds(m.AckP99Seconds))
	f("fsync", "p99 %s", optSeconds(m.FsyncP99Seconds))
	f("dropped", "%s", orNone(labels(m.Dropped)))
	f("corruptions", "%s", orNone(labels(m.Corruptions)))
	f("integrity", "score %s, recovery success %s", optNum(m.IntegrityScore, "%g"), optNum(m.RecoverySuccessRate, "%g"))
	seg := optNum(m.Segments, "%g")
	size := "?"
	if m.WALSizeBytes != nil {
		size = bytesText(*m.WALSizeBytes)
	}
	f("wal", "%s in %s segment(s)", size, seg)
	age := "none (unsigned, or not exported)"
	if m.CheckpointAgeSeconds != nil {
		age = (time.Duration(*m.CheckpointAgeSeconds * float64(time.Second))).Round(time.Second).String() + " old"
	}
	f("checkpoint", "%s", age)
	if m.DiskFreeRatio != nil {
		f("disk", "%.1f%% free", 100**m.DiskFreeRatio)
	}
	var mirrors []string
	for _, mi := range m.Mirrors {
		mirrors = append(mirrors, mi.Name+" "+upDown(mi.Up))
	}
	f("mirrors", "%s", orNone(strings.Join(mirrors, ", ")))
	var backends []string
	for _, b := range m.Backends {
		backends = append(backends, fmt.Sprintf("%s %s lag %s segments, %s", b.Name, upDown(b.Up), optNum(b.LagSegments, "%g"), optBytes(b.LagBytes)))
	}
	if m.Quorum != nil {
		backends = append(backends, "quorum "+map[bool]string{true: "yes", false: "NO"}[*m.Quorum])
	}
	f("backends", "%s", orNone(strings.Join(backends, "; ")))
	var names []string
	for _, a := range m.Alerts {
		names = append(names, a.Name)
	}
	f("alerts", "%s", orNone(strings.Join(names, ", ")))
}

// levelMix formats the level counts, most severe first, with shares.
func levelMix(levels map[string]uint64, total uint64) string {
	if total == 0 {
		return "none"
	}
	var names []string
	for name := range levels {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		a, _ := event.ParseLevel(names[i])
		b, _ := event.ParseLevel(names[j])
		return a > b
	})
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %d (%.0f%%)", n, levels[n], 100*float64(levels[n])/float64(total)))
	}
	return strings.Join(parts, "  ")
}

// bytesText formats a byte count in binary units.
func bytesText(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", n)
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}

func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Microsecond).String()
}

func optSeconds(p *float64) string {
	if p == nil {
		return "-"
	}
	return seconds(*p)
}

func optNum(p *float64, format string) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf(format, *p)
}

func optBytes(p *float64) string {
	if p == nil {
		return "-"
	}
	return bytesText(*p)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "DOWN"
}
