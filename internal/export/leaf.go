package export

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"io"

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
		return &jsonlWriter{bw: bufio.NewWriterSize(w, 64<<10)}, nil
	case CSV:
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"seq", "leaf_hash", "time", "level", "template", "message", "properties", "exception"})
		return &csvWriter{cw: cw, leaf: true}, nil
	case Parquet:
		return nil, errors.New("export: leaf hashes are written in jsonl and csv, not parquet")
	}
	_, err := ParseFormat(string(f))
	return nil, err
}
