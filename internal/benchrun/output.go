package benchrun

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// jsonResult is the JSON form of a Result: snake_case names, durations in
// seconds, latencies in milliseconds.
type jsonResult struct {
	EventsPerSecond  float64 `json:"events_per_second"`
	MBPerSecond      float64 `json:"mb_per_second"`
	P50Ms            float64 `json:"p50_ms"`
	P99Ms            float64 `json:"p99_ms"`
	P999Ms           float64 `json:"p999_ms"`
	MaxMs            float64 `json:"max_ms"`
	FdatasyncP50Ms   float64 `json:"fdatasync_p50_ms"`
	FdatasyncP99Ms   float64 `json:"fdatasync_p99_ms"`
	FdatasyncSamples int     `json:"fdatasync_samples"`
	RunSyncP50Ms     float64 `json:"run_fdatasync_p50_ms"`
	RunSyncP99Ms     float64 `json:"run_fdatasync_p99_ms"`
	RunSyncs         int64   `json:"run_fdatasyncs"`
	AllocsPerEvent   float64 `json:"allocs_per_event"`
	Events           uint64  `json:"events"`
	EventBytes       int     `json:"event_bytes"`
	DurationSeconds  float64 `json:"duration_seconds"`
	Config           struct {
		Dir             string  `json:"dir"`
		DurationSeconds float64 `json:"duration_seconds"`
		Concurrency     int     `json:"concurrency"`
		EventSize       int     `json:"event_size"`
		Sync            string  `json:"sync"`
		Rate            int     `json:"rate"`
		Signed          bool    `json:"signed"`
	} `json:"config"`
	Dir        string `json:"dir"`
	DirRemoved bool   `json:"dir_removed"`
	GoVersion  string `json:"go_version"`
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	CPUs       int    `json:"cpus"`
}

// JSON returns r as one JSON object with snake_case fields:
// events_per_second, mb_per_second, p50_ms, p99_ms, p999_ms, max_ms,
// fdatasync_p50_ms, fdatasync_p99_ms, fdatasync_samples (the idle disk
// probe), run_fdatasync_p50_ms, run_fdatasync_p99_ms, run_fdatasyncs (the
// log's own syncs during the run), allocs_per_event,
// events, event_bytes, duration_seconds, config {dir, duration_seconds,
// concurrency, event_size, sync, rate}, dir, dir_removed, go_version, goos,
// goarch and cpus.
func (r *Result) JSON() ([]byte, error) {
	j := jsonResult{
		EventsPerSecond:  r.EventsPerSecond,
		MBPerSecond:      r.MBPerSecond,
		P50Ms:            r.P50Ms,
		P99Ms:            r.P99Ms,
		P999Ms:           r.P999Ms,
		MaxMs:            r.MaxMs,
		FdatasyncP50Ms:   r.FdatasyncP50Ms,
		FdatasyncP99Ms:   r.FdatasyncP99Ms,
		FdatasyncSamples: r.FdatasyncSamples,
		RunSyncP50Ms:     r.RunSyncP50Ms,
		RunSyncP99Ms:     r.RunSyncP99Ms,
		RunSyncs:         r.RunSyncs,
		AllocsPerEvent:   r.AllocsPerEvent,
		Events:           r.Events,
		EventBytes:       r.EventBytes,
		DurationSeconds:  r.Duration.Seconds(),
		Dir:              r.Dir,
		DirRemoved:       r.DirRemoved,
		GoVersion:        r.GoVersion,
		GOOS:             r.GOOS,
		GOARCH:           r.GOARCH,
		CPUs:             r.CPUs,
	}
	j.Config.Dir = r.Config.Dir
	j.Config.DurationSeconds = r.Config.Duration.Seconds()
	j.Config.Concurrency = r.Config.Concurrency
	j.Config.EventSize = r.Config.EventSize
	j.Config.Sync = r.Config.Sync
	j.Config.Rate = r.Config.Rate
	j.Config.Signed = r.Config.Signed
	b, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("benchrun: encode result: %w", err)
	}
	return b, nil
}

// WriteText writes r as a short table for people.
func (r *Result) WriteText(w io.Writer) error {
	rate := "as fast as possible"
	if r.Config.Rate > 0 {
		rate = "paced at " + group(float64(r.Config.Rate)) + " events/s"
	}
	dir := r.Dir
	if r.DirRemoved {
		dir += " (temporary, removed)"
	}
	signed := ""
	if r.Config.Signed {
		signed = ", signed"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	rows := [][2]string{
		{"workload", fmt.Sprintf("%d writers, %d-byte events, %s sync%s, %v, %s",
			r.Config.Concurrency, r.EventBytes, r.Config.Sync, signed, r.Config.Duration, rate)},
		{"throughput", fmt.Sprintf("%s events/s, %.1f MB/s (%s events in %.2f s)",
			group(r.EventsPerSecond), r.MBPerSecond, group(float64(r.Events)), r.Duration.Seconds())},
		{"ack latency", fmt.Sprintf("p50 %s ms, p99 %s ms, p99.9 %s ms, max %s ms",
			num(r.P50Ms), num(r.P99Ms), num(r.P999Ms), num(r.MaxMs))},
		{"disk fdatasync", fmt.Sprintf("p50 %s ms, p99 %s ms (%d × 4 KiB write + fdatasync, same directory)",
			num(r.FdatasyncP50Ms), num(r.FdatasyncP99Ms), r.FdatasyncSamples)},
		{"fdatasync in run", fmt.Sprintf("p50 %s ms, p99 %s ms (the log's own %d syncs under this load)",
			num(r.RunSyncP50Ms), num(r.RunSyncP99Ms), r.RunSyncs)},
		{"allocs/event", fmt.Sprintf("%.2f", r.AllocsPerEvent)},
		{"directory", dir},
		{"platform", fmt.Sprintf("%s %s/%s, %d CPUs", r.GoVersion, r.GOOS, r.GOARCH, r.CPUs)},
	}
	for _, row := range rows {
		if _, err := fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1]); err != nil {
			return fmt.Errorf("benchrun: write result: %w", err)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("benchrun: write result: %w", err)
	}
	return nil
}

// num formats a millisecond value with about three significant digits.
func num(v float64) string {
	switch {
	case v < 1:
		return strconv.FormatFloat(v, 'f', 3, 64)
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// group formats v rounded to an integer with thousands separators.
func group(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
