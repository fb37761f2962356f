package export

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/willibrandon/mtlog-audit/event"
)

// writeAll writes evs (seq 100+i) in format f and returns the output.
func writeAll(t *testing.T, f Format, evs []*event.Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(f, &buf)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range evs {
		if err := w.Write(uint64(100+i), ev); err != nil {
			t.Fatalf("Write %d: %v", i, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return buf.Bytes()
}

// wantFields returns the seven text fields of an exported event.
func wantFields(t *testing.T, seq uint64, ev *event.Event) [7]string {
	t.Helper()
	var exc string
	if ev.Exception != nil {
		exc = ev.Exception.Error()
	}
	props := ""
	if len(ev.Properties) > 0 {
		line, err := JSON(seq, ev)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Properties json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatal(err)
		}
		props = string(m.Properties)
	}
	return [7]string{
		strconv.FormatUint(seq, 10),
		ev.Timestamp.UTC().Format("2006-01-02T15:04:05.000000000Z07:00"),
		ev.Level.String(),
		ev.MessageTemplate,
		Render(ev),
		props,
		exc,
	}
}

func TestJSONLWriter(t *testing.T) {
	evs := sampleEvents(t)
	out := writeAll(t, JSONL, evs)
	sc := bufio.NewScanner(bytes.NewReader(out))
	i := 0
	for sc.Scan() {
		want, err := JSON(uint64(100+i), evs[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sc.Bytes(), want) {
			t.Errorf("line %d =\n%s\nwant\n%s", i, sc.Bytes(), want)
		}
		i++
	}
	if i != len(evs) || !bytes.HasSuffix(out, []byte("}\n")) {
		t.Errorf("%d lines for %d events; output ends %q", i, len(evs), out[max(0, len(out)-3):])
	}
}

func TestCSVWriter(t *testing.T) {
	evs := sampleEvents(t)
	out := writeAll(t, CSV, evs)
	r := csv.NewReader(bytes.NewReader(out))
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("reading the CSV back: %v\n%s", err, out)
	}
	if len(recs) != len(evs)+1 {
		t.Fatalf("%d records for %d events", len(recs), len(evs))
	}
	if got := strings.Join(recs[0], ","); got != "seq,time,level,template,message,properties,exception" {
		t.Errorf("header = %s", got)
	}
	names := recs[0]
	for i, ev := range evs {
		want := wantFields(t, uint64(100+i), ev)
		got := recs[i+1]
		for j := range want {
			// encoding/csv's Reader turns \r\n into \n even inside quoted
			// fields (documented); the file itself holds the \r (checked
			// below).
			if got[j] != strings.ReplaceAll(want[j], "\r\n", "\n") {
				t.Errorf("event %d field %s = %q; want %q", i, names[j], got[j], want[j])
			}
		}
		if got[5] != "" && !json.Valid([]byte(got[5])) {
			t.Errorf("event %d: properties is not JSON: %s", i, got[5])
		}
	}
	if !bytes.Contains(out, []byte("\"comma, quote \"\" and\r\nnewline\"")) {
		t.Errorf("CSV does not hold the template byte for byte:\n%q", out)
	}
	// The empty export is the header alone.
	if out := writeAll(t, CSV, nil); string(out) != "seq,time,level,template,message,properties,exception\n" {
		t.Errorf("empty CSV = %q", out)
	}
}

// parquetTestRow is how an outside reader sees a Parquet export: declared
// here, independently of the writer's row type.
type parquetTestRow struct {
	Seq         uint64     `parquet:"seq"`
	Time        *time.Time `parquet:"time,optional,timestamp(nanosecond)"`
	Level       string     `parquet:"level"`
	LevelNumber int32      `parquet:"level_number"`
	Template    string     `parquet:"template"`
	Message     string     `parquet:"message"`
	Properties  *string    `parquet:"properties,optional"`
	Exception   *string    `parquet:"exception,optional"`
}

// readParquet reads every row of a Parquet file.
func readParquet(t *testing.T, data []byte) ([]parquetTestRow, *parquet.File) {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("open parquet: %v", err)
	}
	r := parquet.NewGenericReader[parquetTestRow](f)
	defer r.Close()
	rows := make([]parquetTestRow, f.NumRows())
	n, err := r.Read(rows)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("read parquet: %v", err)
	}
	if int64(n) != f.NumRows() {
		t.Fatalf("read %d of %d rows", n, f.NumRows())
	}
	return rows, f
}

// checkParquetRow compares a row read back with the event written.
func checkParquetRow(t *testing.T, i int, got parquetTestRow, seq uint64, ev *event.Event) {
	t.Helper()
	want := wantFields(t, seq, ev)
	if got.Seq != seq {
		t.Errorf("row %d: seq %d; want %d", i, got.Seq, seq)
	}
	ts := ev.Timestamp
	inRange := !ts.IsZero() && !ts.Before(time.Unix(0, math.MinInt64)) && !ts.After(time.Unix(0, math.MaxInt64))
	switch {
	case !inRange && got.Time != nil:
		t.Errorf("row %d: time %v; want null for %v", i, got.Time, ts)
	case inRange && (got.Time == nil || !got.Time.Equal(ts)):
		t.Errorf("row %d: time %v; want %v", i, got.Time, ts)
	}
	if got.Level != want[2] || got.LevelNumber != int32(ev.Level) {
		t.Errorf("row %d: level %q/%d; want %q/%d", i, got.Level, got.LevelNumber, want[2], ev.Level)
	}
	if got.Template != want[3] || got.Message != want[4] {
		t.Errorf("row %d: template %q message %q; want %q %q", i, got.Template, got.Message, want[3], want[4])
	}
	switch {
	case want[5] == "" && got.Properties != nil:
		t.Errorf("row %d: properties %q; want null", i, *got.Properties)
	case want[5] != "" && (got.Properties == nil || *got.Properties != want[5]):
		t.Errorf("row %d: properties %v; want %s", i, got.Properties, want[5])
	}
	switch {
	case ev.Exception == nil && got.Exception != nil:
		t.Errorf("row %d: exception %q; want null", i, *got.Exception)
	case ev.Exception != nil && (got.Exception == nil || *got.Exception != want[6]):
		t.Errorf("row %d: exception %v; want %q", i, got.Exception, want[6])
	}
}

func TestParquetWriter(t *testing.T) {
	evs := sampleEvents(t)
	out := writeAll(t, Parquet, evs)
	rows, f := readParquet(t, out)
	if len(rows) != len(evs) {
		t.Fatalf("%d rows for %d events", len(rows), len(evs))
	}
	for i, ev := range evs {
		checkParquetRow(t, i, rows[i], uint64(100+i), ev)
	}
	schema := f.Schema().String()
	for _, want := range []string{
		"required int64 seq (INT(64,false))",
		"optional int64 time (TIMESTAMP(isAdjustedToUTC=true,unit=NANOS))",
		"required binary level (STRING)",
		"required int32 level_number (INT(32,true))",
		"required binary template (STRING)",
		"required binary message (STRING)",
		"optional binary properties (STRING)",
		"optional binary exception (STRING)",
	} {
		if !strings.Contains(schema, want) {
			t.Errorf("schema lacks %q:\n%s", want, schema)
		}
	}
	// The generic parquet.Read gives the same rows.
	again, err := parquet.Read[parquetTestRow](bytes.NewReader(out), int64(len(out)))
	if err != nil || len(again) != len(rows) {
		t.Fatalf("parquet.Read: %d rows, %v", len(again), err)
	}

	// No events: a valid file with no rows.
	rows, _ = readParquet(t, writeAll(t, Parquet, nil))
	if len(rows) != 0 {
		t.Errorf("empty export has %d rows", len(rows))
	}
}

func TestParquetRowGroups(t *testing.T) {
	const n = 2500
	evs := make([]*event.Event, n)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range evs {
		evs[i] = &event.Event{
			Timestamp: base.Add(time.Duration(i) * time.Millisecond), Level: event.Level(i % 6),
			MessageTemplate: "Item {N} of {Who}",
			Properties:      map[string]any{"N": int64(i), "Who": fmt.Sprint("user-", i%7)},
		}
		if i%3 == 0 {
			evs[i].Exception = &event.ErrorValue{Message: fmt.Sprint("err ", i)}
		}
	}
	for _, c := range []struct {
		name             string
		maxRows, maxSize int
		wantGroups       int
	}{
		{"by rows", 1000, 1 << 30, 3},
		{"by bytes", 1 << 20, 20000, 0}, // 0: more than 3, checked below
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := newParquetWriter(&buf, c.maxRows, c.maxSize)
			for i, ev := range evs {
				if err := w.Write(uint64(i+1), ev); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			rows, f := readParquet(t, buf.Bytes())
			groups := len(f.RowGroups())
			if c.wantGroups != 0 && groups != c.wantGroups || c.wantGroups == 0 && groups <= 3 {
				t.Errorf("%d row groups", groups)
			}
			for _, rg := range f.RowGroups()[:groups-1] {
				if c.wantGroups != 0 && rg.NumRows() != int64(c.maxRows) {
					t.Errorf("row group of %d rows; want %d", rg.NumRows(), c.maxRows)
				}
			}
			if len(rows) != n {
				t.Fatalf("%d rows", len(rows))
			}
			for i, ev := range evs {
				checkParquetRow(t, i, rows[i], uint64(i+1), ev)
			}
		})
	}
}

func TestWriterENOSPC(t *testing.T) {
	evs := sampleEvents(t)
	for _, f := range formats() {
		full := len(writeAll(t, f, evs))
		for _, limit := range []int{0, 1, 5, full / 2, full - 1} {
			t.Run(fmt.Sprintf("%s/%d", f, limit), func(t *testing.T) {
				fw := &failWriter{limit: limit}
				w, err := NewWriter(f, fw)
				if err != nil {
					t.Fatal(err)
				}
				var first error
				for i, ev := range evs {
					if err := w.Write(uint64(100+i), ev); err != nil {
						first = err
						break
					}
				}
				cerr := w.Close()
				if first == nil {
					first = cerr
				}
				if !errors.Is(first, syscall.ENOSPC) {
					t.Fatalf("error = %v; want ENOSPC", first)
				}
				// Sticky: later calls report the failure too.
				if err := w.Write(99, evs[0]); !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, errClosed) {
					t.Errorf("Write after failure = %v", err)
				}
				if err := w.Close(); !errors.Is(err, syscall.ENOSPC) {
					t.Errorf("second Close = %v; want ENOSPC", err)
				}
			})
		}
	}
}

func TestWriterParquetENOSPCMidExport(t *testing.T) {
	// The failure happens while a row group is flushed during Write.
	var buf bytes.Buffer
	evs := make([]*event.Event, 5000)
	for i := range evs {
		evs[i] = &event.Event{MessageTemplate: "m", Message: strings.Repeat("x", 100) + strconv.Itoa(i)}
	}
	w := newParquetWriter(&buf, 1000, 1<<30)
	for i, ev := range evs {
		if err := w.Write(uint64(i), ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fw := &failWriter{limit: buf.Len() / 2}
	w = newParquetWriter(fw, 1000, 1<<30)
	var werr error
	for i, ev := range evs {
		if werr = w.Write(uint64(i), ev); werr != nil {
			break
		}
	}
	if !errors.Is(werr, syscall.ENOSPC) {
		t.Fatalf("Write error = %v; want ENOSPC before Close", werr)
	}
	if err := w.Close(); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Close = %v; want ENOSPC", err)
	}
}

func TestWriterClosed(t *testing.T) {
	for _, f := range formats() {
		w, err := NewWriter(f, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(1, nil); err == nil {
			t.Errorf("%s: Write(nil event) succeeded", f)
		}
		if err := w.Write(1, &event.Event{}); err != nil {
			t.Errorf("%s: Write after a nil event: %v", f, err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Write(2, &event.Event{}); !errors.Is(err, errClosed) {
			t.Errorf("%s: Write after Close = %v", f, err)
		}
		if err := w.Close(); !errors.Is(err, errClosed) {
			t.Errorf("%s: second Close = %v", f, err)
		}
	}
}
