package export

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/willibrandon/mtlog-audit/event"
)

// AppendJSONLeaf is AppendJSON with a "leaf_hash" field after "seq": leaf,
// the record's leaf hash as 'mtlog-audit prove inclusion' writes it
// (standard base64 of the 32 bytes).
func AppendJSONLeaf(dst []byte, seq uint64, leaf string, ev *event.Event) ([]byte, error) {
	start := len(dst)
	b, err := AppendJSON(dst, seq, ev)
	if err != nil {
		return b, err
	}
	// The object starts {"seq":N, and N is digits only.
	i := start + bytes.IndexByte(b[start:], ',')
	tail := append([]byte(nil), b[i:]...)
	b = append(b[:i], `,"leaf_hash":`...)
	b = appendString(b, leaf)
	return append(b, tail...), nil
}

// LeafWriter writes events with their leaf hashes.
type LeafWriter interface {
	// WriteLeaf writes ev, whose WAL sequence number is seq and whose
	// leaf hash is leaf.
	WriteLeaf(seq uint64, leaf string, ev *event.Event) error
	// Close flushes the output. Writes after Close fail.
	Close() error
}

// NewLeafWriter returns a LeafWriter of format f writing to w. It writes
// what NewWriter writes with a leaf_hash field after seq: a "leaf_hash" key
// in JSONL (see AppendJSONLeaf), a leaf_hash column in CSV (the header is
// seq,leaf_hash,time,level,template,message,properties,exception).
// Parquet is not supported.
func NewLeafWriter(f Format, w io.Writer) (LeafWriter, error) {
	if w == nil {
		return nil, errors.New("export: nil io.Writer")
	}
	switch f {
	case JSONL:
		return &jsonlLeafWriter{bw: bufio.NewWriterSize(w, 64<<10)}, nil
	case CSV:
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"seq", "leaf_hash", "time", "level", "template", "message", "properties", "exception"})
		return &csvLeafWriter{cw: cw}, nil
	case Parquet:
		return nil, errors.New("export: leaf hashes are written in jsonl and csv, not parquet")
	}
	_, err := ParseFormat(string(f))
	return nil, err
}

type jsonlLeafWriter struct {
	bw     *bufio.Writer
	buf    []byte
	err    error
	closed bool
}

func (w *jsonlLeafWriter) WriteLeaf(seq uint64, leaf string, ev *event.Event) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errClosed
	}
	b, err := AppendJSONLeaf(w.buf[:0], seq, leaf, ev)
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

func (w *jsonlLeafWriter) Close() error {
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

type csvLeafWriter struct {
	cw     *csv.Writer
	err    error
	closed bool
}

func (w *csvLeafWriter) WriteLeaf(seq uint64, leaf string, ev *event.Event) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errClosed
	}
	if ev == nil {
		return fmt.Errorf("export csv: event %d: %w", seq, errNilEvent)
	}
	rec := []string{strconv.FormatUint(seq, 10), leaf, ev.Timestamp.UTC().Format(timeLayout), ev.Level.String(),
		ev.MessageTemplate, Render(ev), string(appendProperties(nil, ev.Properties)), ""}
	if ev.Exception != nil {
		rec[7] = errorText(ev.Exception)
	}
	if err := w.cw.Write(rec); err != nil {
		w.err = fmt.Errorf("export csv: write: %w", err)
		return w.err
	}
	return nil
}

func (w *csvLeafWriter) Close() error {
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
