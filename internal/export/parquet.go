package export

import (
	"fmt"
	"io"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/willibrandon/mtlog-audit/event"
)

const (
	// parquetRowGroupRows is the most rows in one Parquet row group.
	parquetRowGroupRows = 16384
	// parquetRowGroupBytes is the most field bytes (strings, before
	// encoding and compression) in one Parquet row group. The writer keeps
	// a row group's encoded pages in memory until the group is flushed, so
	// this bounds memory when events are large.
	parquetRowGroupBytes = 8 << 20
	// parquetBatch is how many rows are handed to parquet-go at once.
	parquetBatch = 256
)

// parquetRow is one row of a Parquet export.
type parquetRow struct {
	Seq         uint64     `parquet:"seq,delta"`
	Time        *time.Time `parquet:"time,optional,timestamp(nanosecond:utc)"`
	Level       string     `parquet:"level,dict"`
	LevelNumber int32      `parquet:"level_number"`
	Template    string     `parquet:"template,dict"`
	Message     string     `parquet:"message"`
	Properties  *string    `parquet:"properties,optional"`
	Exception   *string    `parquet:"exception,optional"`
}

// nanoTime reports whether t can be stored as int64 nanoseconds since 1970
// (1677-09-21 to 2262-04-11) and is not the zero time.Time, which means "no
// timestamp".
func nanoTime(t time.Time) bool {
	if t.IsZero() {
		return false
	}
	// UnixNano wraps outside the range; the round trip tells.
	return time.Unix(0, t.UnixNano()).Equal(t)
}

// parquetWriter writes Parquet through parquet-go's generic writer.
type parquetWriter struct {
	pw       *parquet.GenericWriter[parquetRow]
	rows     []parquetRow
	times    []time.Time // backing store of the rows' Time pointers
	maxRows  int
	maxBytes int
	// groupRows and groupBytes measure the row group being built.
	groupRows  int
	groupBytes int
	buf        []byte
	err        error
	closed     bool
}

// newParquetWriter returns a parquetWriter that flushes a row group every
// maxRows rows or maxBytes field bytes.
func newParquetWriter(w io.Writer, maxRows, maxBytes int) *parquetWriter {
	return &parquetWriter{
		pw: parquet.NewGenericWriter[parquetRow](w,
			parquet.Compression(&parquet.Snappy),
			parquet.CreatedBy("mtlog-audit", "", ""),
			// parquet-go keeps every page's min and max value, uncut,
			// until the footer is written: for free-text columns that is
			// memory growing with the export. Their bounds are useless
			// for pruning anyway; seq, time and level keep theirs.
			parquet.SkipPageBounds("template"),
			parquet.SkipPageBounds("message"),
			parquet.SkipPageBounds("properties"),
			parquet.SkipPageBounds("exception"),
		),
		rows:     make([]parquetRow, 0, parquetBatch),
		times:    make([]time.Time, parquetBatch),
		maxRows:  maxRows,
		maxBytes: maxBytes,
	}
}

// Write implements Writer.
func (w *parquetWriter) Write(seq uint64, ev *event.Event) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errClosed
	}
	if ev == nil {
		return fmt.Errorf("export parquet: event %d: %w", seq, errNilEvent)
	}
	i := len(w.rows)
	row := parquetRow{
		Seq:         seq,
		Level:       ev.Level.String(),
		LevelNumber: int32(ev.Level),
		Template:    ev.MessageTemplate,
		Message:     Render(ev),
	}
	if t := ev.Timestamp; nanoTime(t) {
		w.times[i] = t.UTC()
		row.Time = &w.times[i]
	}
	size := len(row.Level) + len(row.Template) + len(row.Message) + 32
	if len(ev.Properties) > 0 {
		w.buf = appendProperties(w.buf[:0], ev.Properties)
		p := string(w.buf)
		row.Properties = &p
		size += len(p)
		if cap(w.buf) > 1<<20 {
			w.buf = nil
		}
	}
	if ev.Exception != nil {
		e := errorText(ev.Exception)
		row.Exception = &e
		size += len(e)
	}
	w.rows = append(w.rows, row)
	w.groupBytes += size
	if len(w.rows) == cap(w.rows) || w.groupRows+len(w.rows) >= w.maxRows || w.groupBytes >= w.maxBytes {
		return w.flushRows()
	}
	return nil
}

// flushRows hands the batched rows to parquet-go and flushes the row group
// when it is full.
func (w *parquetWriter) flushRows() (err error) {
	defer func() {
		// parquet-go reports I/O errors as errors; a panic would be a bug in
		// it, which should fail the export, not the program.
		if r := recover(); r != nil {
			err = fmt.Errorf("export parquet: internal error: %v", r)
		}
		if err != nil {
			w.err = err
		}
	}()
	if len(w.rows) > 0 {
		n, err := w.pw.Write(w.rows)
		if err != nil {
			return fmt.Errorf("export parquet: write: %w", err)
		}
		if n != len(w.rows) {
			return fmt.Errorf("export parquet: write: %d of %d rows written", n, len(w.rows))
		}
		w.groupRows += n
		clear(w.rows)
		w.rows = w.rows[:0]
	}
	if w.groupRows >= w.maxRows || w.groupBytes >= w.maxBytes {
		if err := w.pw.Flush(); err != nil {
			return fmt.Errorf("export parquet: flush row group: %w", err)
		}
		w.groupRows, w.groupBytes = 0, 0
	}
	return nil
}

// Close implements Writer: it writes the buffered rows, the last row group
// and the footer.
func (w *parquetWriter) Close() (err error) {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errClosed
	}
	w.closed = true
	if err := w.flushRows(); err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("export parquet: internal error: %v", r)
		}
		if err != nil {
			w.err = err
		}
	}()
	if err := w.pw.Close(); err != nil {
		return fmt.Errorf("export parquet: close: %w", err)
	}
	return nil
}
