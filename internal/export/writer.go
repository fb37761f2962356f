package export

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/willibrandon/mtlog-audit/event"
)

// Writer writes events in one format. It is not safe for concurrent use.
//
// Output is buffered: an error of the underlying io.Writer may be returned
// by a later Write or only by Close. After the first error every call
// returns it. Close flushes what is buffered (for Parquet, the last row
// group and the footer) but does not close the io.Writer; the output is
// complete only when Close returned nil.
type Writer interface {
	// Write writes ev, whose WAL sequence number is seq.
	Write(seq uint64, ev *event.Event) error
	// Close flushes the output. Writes after Close fail.
	Close() error
}

// csvColumns is the number of fields in a CSV row.
const csvColumns = 7

// errClosed is returned by Write and Close after Close.
var errClosed = errors.New("export: writer is closed")

// NewWriter returns a Writer of format f writing to w:
//
//   - JSONL: one JSON object per event (see AppendJSON), each followed by
//     "\n";
//   - CSV: the header row seq,time,level,template,message,properties,exception
//     and one row per event with the fields of AppendJSON; properties is
//     the JSON object text ("" when there are none), exception is "" when
//     there is none;
//   - Parquet: see the columns below. Rows are flushed as a row group
//     every 16384 rows or 8 MiB of field data, whichever comes first, so
//     memory does not grow with the events' data: what grows is only the
//     footer metadata (a few KiB per row group, about 1 MiB per GiB
//     exported), which Parquet must write at the end. Free-text columns
//     (template, message, properties, exception) carry no min/max
//     statistics; seq, time and level do.
//
// Parquet columns: seq (INT64, logical type UINT(64)), time (optional
// INT64 TIMESTAMP(NANOS, UTC); null when the timestamp is the zero
// time.Time or outside 1677-09-21…2262-04-11, which int64 nanoseconds
// cannot hold), level (string), level_number (INT32), template (string),
// message (string), properties (optional string holding the JSON object;
// null when there are none), exception (optional string). Pages are
// compressed with Snappy. (properties is a plain STRING column: parquet-go
// v0.32.0 panics on an optional column with the JSON logical type.)
func NewWriter(f Format, w io.Writer) (Writer, error) {
	if w == nil {
		return nil, errors.New("export: nil io.Writer")
	}
	switch f {
	case JSONL:
		return &jsonlWriter{bw: bufio.NewWriterSize(w, 64<<10)}, nil
	case CSV:
		cw := csv.NewWriter(w)
		// A header failure can only be a write error of w; it is sticky in
		// cw and reported by the next Write or Close.
		_ = cw.Write([]string{"seq", "time", "level", "template", "message", "properties", "exception"})
		return &csvWriter{cw: cw}, nil
	case Parquet:
		return newParquetWriter(w, parquetRowGroupRows, parquetRowGroupBytes), nil
	}
	_, err := ParseFormat(string(f))
	return nil, err
}

// jsonlWriter writes JSON lines.
type jsonlWriter struct {
	bw     *bufio.Writer
	buf    []byte
	err    error
	closed bool
}

// Write implements Writer.
func (w *jsonlWriter) Write(seq uint64, ev *event.Event) error { return w.write(seq, "", ev) }

// WriteLeaf implements LeafWriter.
func (w *jsonlWriter) WriteLeaf(seq uint64, leaf string, ev *event.Event) error {
	return w.write(seq, leaf, ev)
}

// write writes one line, with a leaf_hash key when leaf is not "".
func (w *jsonlWriter) write(seq uint64, leaf string, ev *event.Event) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errClosed
	}
	var b []byte
	var err error
	if leaf != "" {
		b, err = AppendJSONLeaf(w.buf[:0], seq, leaf, ev)
	} else {
		b, err = AppendJSON(w.buf[:0], seq, ev)
	}
	if err != nil {
		return fmt.Errorf("export jsonl: event %d: %w", seq, err)
	}
	b = append(b, '\n')
	if cap(b) <= 1<<20 {
		w.buf = b
	}
	if _, err := w.bw.Write(b); err != nil {
		w.err = fmt.Errorf("export jsonl: write: %w", err)
		return w.err
	}
	return nil
}

// Close implements Writer.
func (w *jsonlWriter) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errClosed
	}
	w.closed = true
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("export jsonl: write: %w", err)
		return w.err
	}
	return nil
}

// csvWriter writes CSV.
type csvWriter struct {
	cw      *csv.Writer
	rec     [csvColumns]string
	leaf    bool     // a leaf_hash column follows seq (NewLeafWriter)
	leafRec []string // the row with it
	buf     []byte
	err     error
	closed  bool
}

// Write implements Writer.
func (w *csvWriter) Write(seq uint64, ev *event.Event) error { return w.write(seq, "", ev) }

// WriteLeaf implements LeafWriter.
func (w *csvWriter) WriteLeaf(seq uint64, leaf string, ev *event.Event) error {
	return w.write(seq, leaf, ev)
}

// write writes one row; leaf fills the leaf_hash column of a writer made
// by NewLeafWriter.
func (w *csvWriter) write(seq uint64, leaf string, ev *event.Event) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errClosed
	}
	if ev == nil {
		return fmt.Errorf("export csv: event %d: %w", seq, errNilEvent)
	}
	w.buf = ev.Timestamp.UTC().AppendFormat(w.buf[:0], timeLayout)
	w.rec = [...]string{
		strconv.FormatUint(seq, 10),
		string(w.buf),
		ev.Level.String(),
		ev.MessageTemplate,
		Render(ev),
		"",
		"",
	}
	w.buf = appendProperties(w.buf[:0], ev.Properties)
	w.rec[5] = string(w.buf)
	if ev.Exception != nil {
		w.rec[6] = errorText(ev.Exception)
	}
	if cap(w.buf) > 1<<20 {
		w.buf = nil
	}
	row := w.rec[:]
	if w.leaf {
		// seq, leaf_hash, then the other columns.
		w.leafRec = append(append(append(w.leafRec[:0], w.rec[0]), leaf), w.rec[1:]...)
		row = w.leafRec
	}
	if err := w.cw.Write(row); err != nil {
		w.err = fmt.Errorf("export csv: write: %w", err)
		return w.err
	}
	return nil
}

// Close implements Writer.
func (w *csvWriter) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errClosed
	}
	w.closed = true
	w.cw.Flush()
	if err := w.cw.Error(); err != nil {
		w.err = fmt.Errorf("export csv: write: %w", err)
		return w.err
	}
	return nil
}
