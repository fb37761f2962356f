package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/willibrandon/mtlog-audit/internal/benchrun"
)

func benchCmd(e *env) *cobra.Command {
	var cfg benchrun.Config
	var size string
	var asJSON bool
	var ship shipFlags
	cmd := &cobra.Command{
		Use:   "bench [--duration 30s] [--concurrency 64] [--event-size 256B|1KB] [--sync durable|interval] [--signed] [--dir DIR] [--json]",
		Short: "Measure durable events/s and acknowledgement latency on this disk",
		Long: `bench measures this machine's disk first (write 4 KiB + fdatasync, many
times), then runs --concurrency goroutines writing --event-size events
through an audit.Sink for --duration, every write durable before it returns
(--sync durable, the default) or acknowledged before its sync (--sync
interval: up to 10 ms of events can be lost to a power failure). It prints
events/s, MB/s, acknowledgement latency percentiles, allocations per event,
and the disk's own fdatasync latency beside them, so the numbers can be
judged against what the disk allows. --signed signs the log with a throwaway
key, as WithSigningKey does (signed checkpoints and an authentication tag on
every batch), to show what signing costs.

The log goes to a fresh temporary directory that is removed afterwards, or
to --dir (which must be empty or not exist, and is kept). Put it on the disk
you mean to use.

--ship URL (repeatable) ships sealed segments and checkpoints to each
backend while the writers run, as audit.WithShipping does, with
--ship-quorum of them (default all); --segment-max-age seals segments by age
so that there is something to ship in a short run. Compare the latency
percentiles with and without --ship to see what shipping costs the writers.`,
		Example: `  mtlog-audit bench
  mtlog-audit bench --duration 10s --concurrency 256 --event-size 1KB --dir /var/lib/app/bench
  mtlog-audit bench --rate 10000 --json | jq .p99_ms
  mtlog-audit bench --rate 10000 --segment-max-age 1s --ship file:///mnt/backup/audit --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := parseSize(size)
			if err != nil {
				return &flagError{err}
			}
			cfg.EventSize = n
			if cfg.Options, err = ship.options(); err != nil {
				return &flagError{err}
			}
			defer ship.close()
			if err := cfg.Validate(); err != nil {
				return &flagError{err}
			}
			if e.showProgress() {
				cfg.Progress = func(s benchrun.Snapshot) {
					fmt.Fprintf(e.stderr, "\r\x1b[Kbench %5.1fs / %s  %d events  %.0f events/s", s.Elapsed.Seconds(), cfg.Duration, s.Events, s.EventsPerSecond)
				}
			}
			res, err := benchrun.Run(cmd.Context(), cfg)
			if cfg.Progress != nil {
				fmt.Fprint(e.stderr, "\r\x1b[K")
			}
			if res == nil {
				return usageErr("%w", err)
			}
			if asJSON {
				b, jerr := res.JSON()
				if jerr != nil {
					return jerr
				}
				e.stdout.Write(append(b, '\n'))
			} else if werr := res.WriteText(e.stdout); werr != nil {
				return werr
			}
			if err != nil {
				return failErr(err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long the writers run")
	f.IntVar(&cfg.Concurrency, "concurrency", 64, "number of concurrent writers")
	f.StringVar(&size, "event-size", "256B", "encoded size of each event: bytes, or with B, KB (1000) or KiB (1024)")
	f.StringVar(&cfg.Sync, "sync", "durable", "durable (fdatasync before each acknowledgement) or interval (sync every 10 ms)")
	f.IntVar(&cfg.Rate, "rate", 0, "steady total events/s (0: as fast as possible)")
	f.StringVar(&cfg.Dir, "dir", "", "directory for the benchmark's log (default: a temporary directory, removed afterwards)")
	f.BoolVar(&asJSON, "json", false, "print the result as one JSON object")
	f.BoolVar(&cfg.Signed, "signed", false, "sign the log with a throwaway key (checkpoints and batch authentication tags), to show what signing costs")
	ship.register(f)
	return cmd
}

// parseSize reads 256, 256B, 1KB (1000 bytes) or 1KiB (1024 bytes).
func parseSize(s string) (int, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	mult := 1
	switch {
	case strings.HasSuffix(t, "KIB"):
		mult, t = 1024, strings.TrimSuffix(t, "KIB")
	case strings.HasSuffix(t, "KB"):
		mult, t = 1000, strings.TrimSuffix(t, "KB")
	case strings.HasSuffix(t, "B"):
		t = strings.TrimSuffix(t, "B")
	}
	n, err := strconv.Atoi(strings.TrimSpace(t))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("--event-size %q: give a size such as 256B, 1KB or 4KiB", s)
	}
	return n * mult, nil
}
