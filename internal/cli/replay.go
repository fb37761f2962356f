package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/export"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// filterHelp documents the --filter language for replay and export.
const filterHelp = `Filter expressions (--filter) use the expr language
(https://expr-lang.org) over each event:
  seq        sequence number            time       timestamp (time.Time)
  level      level, compare with Verbose, Debug, Information, Warning, Error, Fatal
             (any case, or VRB DBG INF WRN ERR FTL: level >= ERROR works)
  message    rendered message           template   message template
  exception  error text ("" if none)    props      properties (props.UserId; missing is nil)
A missing property is nil: == "x" is false, and <, >, <= and >= are false
(props.Count > 10 and props.Count <= 10 are both false without Count; write
(props.Count ?? 0) <= 10 to count a missing one as 0).
Examples:
  level >= Error && props.UserId == "u-1"
  props.Count > 10 || message contains "export"
  seq in 100..200`

// item is one selected event, as scan gives it.
type item struct {
	seq uint64
	ev  *event.Event
	// leaf is the record's leaf hash (with --with-hash only): the hash
	// that 'prove inclusion' proves, computed from the chain.
	leaf integrity.Hash
	// nonEvents counts the records that are not events (seals, key
	// rotations) read before this event at or after --seq's start: the
	// difference between two items is why their sequence numbers skip.
	nonEvents uint64
}

// leafHashHelp documents --with-hash for replay and export.
const leafHashHelp = `Leaf hashes (--with-hash): each event gets leaf_hash, the record's leaf hash
in the log's Merkle tree, in standard base64: the leaf_hash that 'prove
inclusion --seq N' writes for the same N, so an exported event can be tied
to a proof (a proof's index is seq-1). It is computed from the log itself,
not from the stored tree: each leaf chains to the one before, so every
record from the first is read and hashed, whatever is selected.`

// each calls fn for every selected event of the log in dir, in sequence
// order, advancing bar. With --last, the events are held until the end (or
// the error) and then given to fn.
func (c *compiled) each(ctx context.Context, dir string, bar *progress, fn func(it *item) error) error {
	var ring *lastN
	if c.last > 0 {
		ring = newLastN(c.last)
	}
	if c.follow {
		// With --follow, --last N gives the last N events of what was in
		// the log when it began, then every new one.
		idle := c.idle
		c.idle = func() error {
			if ring != nil {
				held := ring
				ring = nil
				if err := held.each(fn); err != nil {
					return err
				}
			}
			if idle != nil {
				return idle()
			}
			return nil
		}
	}
	err := c.scan(ctx, dir, bar, func(it *item) error {
		if ring != nil {
			ring.add(it)
			return nil
		}
		return fn(it)
	})
	if ring != nil {
		// What was selected before an error is still given: an auditor
		// sees the last events before the damage, then the error.
		if ferr := ring.each(fn); ferr != nil {
			return ferr
		}
	}
	return err
}

// records returns the records scan reads: every record from the first when
// leaf hashes are wanted (each one chains to the one before), the segments
// that may hold the time range when one is given, or every record from
// --seq's start.
func (c *compiled) records(ctx context.Context, r *wal.Reader) iter.Seq2[wal.Record, error] {
	lo, hi := c.win.Bounds()
	if c.follow {
		from := c.seqFrom
		if c.withHash {
			from = 0
		}
		opts := wal.FollowOptions{Poll: c.poll, Idle: c.idle}
		if !c.withHash && c.hasFrom {
			opts.SkipBefore = lo // whole segments before --since are not read
		}
		return r.Follow(ctx, from, opts)
	}
	switch {
	case c.withHash:
		return r.Records(ctx, 0)
	case c.hasFrom || c.hasTo:
		return r.RecordsBetween(ctx, lo, hi)
	}
	return r.Records(ctx, c.seqFrom)
}

// scan calls fn for every event of the log in dir that the time range,
// sequence range and filter select, up to --limit of them.
func (c *compiled) scan(ctx context.Context, dir string, bar *progress, fn func(it *item) error) error {
	r := wal.NewReader(vfs.OS(), dir)
	var chain *integrity.Builder
	if c.withHash {
		chain = integrity.NewBuilder()
	}
	var n, given, nonEvents uint64
	for rec, err := range c.records(ctx, r) {
		if err != nil {
			return wrapLogErr(dir, err)
		}
		n++
		bar.at(rec.Segment, rec.Offset, n)
		var leaf integrity.Hash
		if chain != nil {
			// Leaf i chains to leaf i-1: every record from the first
			// is hashed, whatever is selected.
			if rec.Seq != chain.Size()+1 {
				return failErr(fmt.Errorf("record %d follows %d records: the leaf hashes cannot be computed (the log does not start at sequence number 1)", rec.Seq, chain.Size()))
			}
			leaf = chain.Append(rec.Time, uint8(rec.Type), integrity.PayloadHash(rec.Payload))
		}
		if rec.Seq > c.seqTo {
			return nil // sequence numbers only grow
		}
		if rec.Seq < c.seqFrom {
			continue
		}
		if rec.Type != wal.RecordEvent {
			nonEvents++
			continue
		}
		if (c.hasFrom || c.hasTo) && !c.win.MayHold(rec.Time) {
			continue
		}
		ev, err := event.Decode(rec.Payload)
		if err != nil {
			return failErr(fmt.Errorf("event %d (segment %d, offset %d) cannot be decoded: %w", rec.Seq, rec.Segment, rec.Offset, err))
		}
		if !c.inTime(ev.Timestamp) {
			continue
		}
		ev = c.keys.reveal(ctx, rec.Seq, ev)
		if c.filter != nil {
			ok, err := c.filter.Match(rec.Seq, ev)
			if err != nil {
				return usageErr("--filter on event %d: %w", rec.Seq, err)
			}
			if !ok {
				continue
			}
		}
		if err := fn(&item{seq: rec.Seq, ev: ev, leaf: leaf, nonEvents: nonEvents}); err != nil {
			return err
		}
		given++
		if c.limit > 0 && given >= c.limit {
			return nil
		}
	}
	return nil
}

// skipNote tells, after text output, why the printed sequence numbers
// skip: the records between the first and the last printed event that
// are not events. It is empty when none lie between them.
func skipNote(first, last *item) string {
	if first == nil || last == nil || last.nonEvents == first.nonEvents {
		return ""
	}
	n := last.nonEvents - first.nonEvents
	s := "s"
	if n == 1 {
		s = ""
	}
	return fmt.Sprintf("note: sequence numbers #%d to #%d skip %d record%s that are not events (segment seals, key rotations); every record has a sequence number, and --seq counts them all", first.seq, last.seq, n, s)
}

func replayCmd(e *env) *cobra.Command {
	var dir, output, oldFile string
	var force, asJSON, withHash, follow bool
	var poll time.Duration
	var sel selection
	var acc accessFlags
	cmd := &cobra.Command{
		Use:   "replay --wal DIR [--since TIME] [--until TIME] [--seq A..B] [--limit N | --last N] [--filter EXPR] [--json] [--output FILE | --follow [--poll D]]",
		Short: "Print events, in sequence order",
		Long: `replay prints the events of a log in sequence order: as text (time, level,
sequence number and the rendered message) or, with --json, as JSON, one
object per line (the same objects as 'export --format jsonl'), on stdout or
into the file --output names. It reads the log without modifying it; a live
log can be read while it is written. If the log is
damaged, every event before the damage is printed (or kept in --output), then
the error, with exit status 1.

Sequence numbers skip: every record has one, and segment seals and key
rotation statements are records but not events. After text output, a note
on stderr says how many such records lie between the first and the last
event printed (--quiet leaves it out).

` + followHelp + `

` + leafHashHelp + `

` + selectionHelp + `

` + keyringHelp + `

` + filterHelp,
		Example: `  mtlog-audit replay --wal ./audit-wal
  mtlog-audit replay --wal ./audit-wal --follow --last 10
  mtlog-audit replay --wal ./audit-wal -f --json --filter 'level >= Error'
  mtlog-audit replay --wal ./audit-wal --since 2026-11-01 --until 2026-11-02 --json
  mtlog-audit replay --wal ./audit-wal --filter 'level >= Error && props.UserId == "u-1"'
  mtlog-audit replay --wal ./audit-wal --since 1h --last 20
  mtlog-audit replay --wal ./audit-wal --seq 100..200
  mtlog-audit replay --wal ./audit-wal --json --output events.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "wal"); err != nil {
				return err
			}
			file, fileFlag, err := replayOutput(e, output, oldFile, &asJSON)
			if err != nil {
				return err
			}
			if err := checkLogDir("--wal", dir); err != nil {
				return err
			}
			if withHash && !asJSON {
				return &flagError{errors.New("--with-hash needs JSON output (--json)")}
			}
			c, err := sel.compile(cmd)
			if err != nil {
				return err
			}
			c.withHash = withHash
			if err := checkFollow(cmd, &sel, follow, poll, file, fileFlag); err != nil {
				return err
			}
			c.follow, c.poll = follow, poll
			if err := acc.record(cmd, e, dir, "replay"); err != nil {
				return err
			}
			out, err := createOutput(file, fileFlag, force)
			if err != nil {
				return err
			}
			var w io.Writer = e.stdout
			var bar *progress
			if out != nil {
				w = out
				bar = e.newProgress("replay", dir)
			}
			bw := bufio.NewWriterSize(w, 64<<10)
			// Following, what was read is shown before each wait.
			c.idle = bw.Flush
			var count uint64
			var first, last *item
			var buf []byte
			err = c.each(cmd.Context(), dir, bar, func(it *item) error {
				count++
				if first == nil {
					first = it
				}
				last = it
				if asJSON {
					var err error
					if withHash {
						buf, err = export.AppendJSONLeaf(buf[:0], it.seq, it.leaf.String(), it.ev)
					} else {
						buf, err = export.AppendJSON(buf[:0], it.seq, it.ev)
					}
					if err != nil {
						return err
					}
					bw.Write(buf)
					return bw.WriteByte('\n')
				}
				return writeText(bw, it.seq, it.ev)
			})
			bar.finish()
			if follow && errors.Is(err, context.Canceled) {
				err = nil // Ctrl-C (or SIGTERM) ends --follow: success
			}
			// Flush what was matched even when the log then failed: an
			// auditor reading a damaged log sees every event before the
			// damage, then the error.
			if ferr := bw.Flush(); err == nil {
				err = ferr
			}
			if note := skipNote(first, last); note != "" && !asJSON {
				e.infof("%s", note)
			}
			if out != nil {
				if err != nil && !isDamage(err) {
					return out.abort(err)
				}
				if cerr := out.commit(); cerr != nil {
					return cerr
				}
				if err != nil {
					return damagedOutput(err, count, file)
				}
				e.infof("replayed %d events to %s", count, file)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "wal", "", "the log's directory")
	f.BoolVar(&asJSON, "json", false, "print JSON, one object per line, instead of text")
	f.StringVarP(&output, "output", "o", "", "write to this file instead of stdout (shows progress)")
	f.StringVar(&oldFile, "file", "", "the old name of --output")
	deprecate(cmd, "file", "use --output FILE (-o FILE); --file goes away in the next release")
	acc.add(cmd)
	f.BoolVar(&force, "force", false, "overwrite --output if it exists")
	f.BoolVar(&withHash, "with-hash", false, "add each event's leaf hash (leaf_hash) to JSON output; reads the log from its first record")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new events as they are written, until Ctrl-C (see below)")
	f.DurationVar(&poll, "poll", 200*time.Millisecond, "with --follow, how often to look for new events")
	sel.add(cmd)
	return cmd
}

// followHelp documents replay --follow.
const followHelp = `Following a live log (--follow, -f): like tail -f, replay prints the
selected events, then every new one as the sink (in any process) writes it,
looking every --poll (200ms), across segment rotations, until Ctrl-C or
SIGTERM (exit status 0, after printing everything read). --last N prints the
last N events first; --limit N and --seq A..B stop after N events or after
B. --until and --output are refused with --follow (it never ends by itself;
redirect stdout to keep the events). A batch being written is never taken for
damage: follow stops before the first batch that does not verify and reads
it again at the next poll; it reports damage (exit status 1) only when the
bytes cannot be a write in progress: a segment that another one follows does
not verify up to its seal, or a batch still does not verify after a later
batch was written (docs/wal-format.md, "Reading a live log").`

// checkFollow refuses --follow with flags that make no sense with it, and
// --poll without it.
func checkFollow(cmd *cobra.Command, sel *selection, follow bool, poll time.Duration, file, fileFlag string) error {
	changed := func(name string) bool { return cmd.Flags().Changed(name) }
	if !follow {
		if changed("poll") {
			return &flagError{errors.New("--poll is how often --follow looks for new events: give --follow too")}
		}
		return nil
	}
	switch {
	case poll <= 0:
		return &flagError{fmt.Errorf("--poll %s: give a positive duration, such as 200ms", poll)}
	case file != "":
		return &flagError{fmt.Errorf("--follow prints to stdout and never ends by itself, so it cannot commit %s: redirect stdout instead (replay --follow > FILE)", fileFlag)}
	case sel.until != "" || sel.to != "":
		return &flagError{errors.New("--until (or --to) ends the time range, and --follow waits for new events: give one")}
	}
	return nil
}

// replayOutput returns the file replay writes to ("" for stdout) and the
// flag that named it, keeping
// the old spellings working for one release: --output text|json (the format,
// now --json) and --file FILE (now --output FILE).
func replayOutput(e *env, output, oldFile string, asJSON *bool) (file, flag string, err error) {
	if output == "text" || output == "json" {
		// Before --output named the file, it named the format. A file
		// called "text" or "json" is given as ./text or ./json.
		if output == "json" {
			*asJSON = true
		}
		fmt.Fprintf(e.stderr, "Flag --output %s is deprecated: --output now names the file to write; use --json for JSON (text is the default)\n", output)
		output = ""
	}
	if oldFile != "" {
		if output != "" {
			return "", "", &flagError{errors.New("--file is the old name of --output: give only --output FILE")}
		}
		return oldFile, "--file", nil
	}
	return output, "--output", nil
}

// isDamage reports whether err is damage found in the log (as opposed to
// a failure to write the output or a bad filter).
func isDamage(err error) bool { return errors.Is(err, wal.ErrCorrupt) }

// damagedOutput is the error for an output file that holds the events read
// before damage in the log stopped the command.
func damagedOutput(err error, count uint64, path string) error {
	return failErr(fmt.Errorf("%w\n  %s holds the %d events before the damage; the rest of the log was not read", err, path, count))
}

// writeText writes one event as a text line: time, level, sequence number,
// rendered message; an exception follows on indented lines.
func writeText(w *bufio.Writer, seq uint64, ev *event.Event) error {
	fmt.Fprintf(w, "%s %s #%d %s\n", ev.Timestamp.UTC().Format("2006-01-02T15:04:05.000000000Z"), levelAbbrev(ev.Level), seq, oneLine(export.Render(ev)))
	if ev.Exception != nil {
		for _, l := range strings.Split(strings.TrimRight(ev.Exception.Error(), "\n"), "\n") {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
	return nil
}

func levelAbbrev(l event.Level) string {
	switch l {
	case event.LevelVerbose:
		return "VRB"
	case event.LevelDebug:
		return "DBG"
	case event.LevelInformation:
		return "INF"
	case event.LevelWarning:
		return "WRN"
	case event.LevelError:
		return "ERR"
	case event.LevelFatal:
		return "FTL"
	}
	return fmt.Sprintf("L%d", int(l))
}

// oneLine keeps a message on one line (newlines shown as \n), so that a
// message cannot forge extra output lines.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}

func exportCmd(e *env) *cobra.Command {
	var dir, format, output string
	var force, withHash bool
	var sel selection
	var acc accessFlags
	cmd := &cobra.Command{
		Use:   "export --wal DIR --format jsonl|csv|parquet --output FILE [--since TIME] [--until TIME] [--seq A..B] [--limit N | --last N] [--filter EXPR]",
		Short: "Write events to a JSON-lines, CSV or Parquet file",
		Long: `export writes the selected events to a file, streaming: memory stays bounded
whatever the size of the log. Columns: seq, time, level, template, message,
properties (JSON), exception; Parquet also has level_number, with typed
columns (INT64 seq, TIMESTAMP time). An existing output file is refused
unless --force; if the export fails (a full disk, say), the partial file is
removed. If the log is damaged, the file keeps every event before the damage
(a complete file) and export exits with status 1.

` + leafHashHelp + ` It is written in jsonl (a "leaf_hash" key after
"seq") and csv (a leaf_hash column after seq), not in parquet.

` + selectionHelp + `

` + keyringHelp + `

` + filterHelp,
		Example: `  mtlog-audit export --wal ./audit-wal --format parquet --output audit.parquet
  mtlog-audit export --wal ./audit-wal --format csv --output errors.csv --filter 'level >= Error'
  mtlog-audit export --wal ./audit-wal --format jsonl --output nov.jsonl --since 2026-11-01 --until 2026-12-01
  mtlog-audit export --wal ./audit-wal --format csv --output last-week.csv --since 7d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "wal", "format", "output"); err != nil {
				return err
			}
			ff, err := export.ParseFormat(format)
			if err != nil {
				return &flagError{err}
			}
			if withHash && ff == export.Parquet {
				return &flagError{errors.New("--with-hash: leaf hashes are written in jsonl and csv, not parquet")}
			}
			if err := checkLogDir("--wal", dir); err != nil {
				return err
			}
			c, err := sel.compile(cmd)
			if err != nil {
				return err
			}
			c.withHash = withHash
			if output == "-" {
				return &flagError{errors.New("--output must name a file")}
			}
			if err := acc.record(cmd, e, dir, "export"); err != nil {
				return err
			}
			out, err := createOutput(output, "--output", force)
			if err != nil {
				return err
			}
			bw := bufio.NewWriterSize(out, 256<<10)
			var ew interface{ Close() error }
			var write func(it *item) error
			if withHash {
				lw, err := export.NewLeafWriter(ff, bw)
				if err != nil {
					return out.abort(err)
				}
				ew, write = lw, func(it *item) error { return lw.WriteLeaf(it.seq, it.leaf.String(), it.ev) }
			} else {
				w, err := export.NewWriter(ff, bw)
				if err != nil {
					return out.abort(err)
				}
				ew, write = w, func(it *item) error { return w.Write(it.seq, it.ev) }
			}
			bar := e.newProgress("export", dir)
			var count uint64
			err = c.each(cmd.Context(), dir, bar, func(it *item) error {
				count++
				return write(it)
			})
			bar.finish()
			// Damage in the log ends the export, but what was read before
			// it is kept, as a complete file (an auditor needs every event
			// before the damage). Any other failure removes the file.
			damaged := err != nil && isDamage(err)
			if err == nil || damaged {
				if cerr := ew.Close(); cerr != nil {
					err, damaged = cerr, false
				} else if ferr := bw.Flush(); ferr != nil {
					err, damaged = ferr, false
				}
			}
			if err != nil && !damaged {
				return out.abort(err)
			}
			if err := out.commit(); err != nil {
				return err
			}
			if damaged {
				return damagedOutput(err, count, output)
			}
			e.infof("exported %d events to %s (%s)", count, output, ff)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "wal", "", "the log's directory")
	f.StringVar(&format, "format", "", "jsonl, csv or parquet")
	f.StringVarP(&output, "output", "o", "", "the file to write")
	f.BoolVar(&force, "force", false, "overwrite --output if it exists")
	f.BoolVar(&withHash, "with-hash", false, "add each event's leaf hash (leaf_hash) to a JSON-lines or CSV export; reads the log from its first record")
	sel.add(cmd)
	acc.add(cmd)
	return cmd
}
