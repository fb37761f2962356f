package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/signintech/gopdf"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"
)

// WritePDF writes r as an A4 PDF with the same sections as the HTML. The
// Go fonts (golang.org/x/image/font/gofont) are embedded, so the file
// needs no font on the reader's machine; a character they lack is shown
// as "?".
func WritePDF(w io.Writer, r *Report) error {
	d, err := newPDFDoc()
	if err != nil {
		return fmt.Errorf("report: pdf: %w", err)
	}
	d.render(r)
	if d.err != nil {
		return fmt.Errorf("report: pdf: %w", d.err)
	}
	if _, err := d.pdf.WriteTo(w); err != nil {
		return fmt.Errorf("report: pdf: %w", err)
	}
	return nil
}

// Page geometry in points (A4).
const (
	pageW, pageH = 595.28, 841.89
	margin       = 40.0
	textW        = pageW - 2*margin
	bottomLimit  = pageH - 50
)

// pdfDoc is a PDF being laid out top to bottom. The first error sticks.
type pdfDoc struct {
	pdf    *gopdf.GoPdf
	y      float64
	font   string
	size   float64
	err    error
	glyphs map[string]map[rune]bool
}

func newPDFDoc() (*pdfDoc, error) {
	pdf := &gopdf.GoPdf{}
	pdf.Start(gopdf.Config{PageSize: *gopdf.PageSizeA4, Unit: gopdf.UnitPT})
	for name, ttf := range map[string][]byte{"regular": goregular.TTF, "bold": gobold.TTF, "mono": gomono.TTF} {
		if err := pdf.AddTTFFontData(name, ttf); err != nil {
			return nil, err
		}
	}
	d := &pdfDoc{pdf: pdf, glyphs: map[string]map[rune]bool{}}
	pdf.AddFooter(func() {
		d.setFont("regular", 8)
		d.color(110, 119, 129)
		pdf.SetXY(margin, pageH-30)
		d.cell(fmt.Sprintf("page %d", pdf.GetNumberOfPages()))
	})
	d.newPage()
	return d, nil
}

// newPage starts a page, keeping the font and colour (the footer, drawn
// as the page is added, changes them).
func (d *pdfDoc) newPage() {
	font, size := d.font, d.size
	d.pdf.AddPage()
	d.y = margin
	if font != "" {
		d.setFont(font, size)
	}
	d.color(27, 31, 36)
}

// need starts a new page unless h more points fit on this one.
func (d *pdfDoc) need(h float64) {
	if d.y+h > bottomLimit {
		d.newPage()
	}
}

func (d *pdfDoc) setFont(name string, size float64) {
	d.font, d.size = name, size
	if err := d.pdf.SetFont(name, "", size); err != nil && d.err == nil {
		d.err = err
	}
}

func (d *pdfDoc) color(r, g, b uint8) { d.pdf.SetTextColor(r, g, b) }

// clean replaces the characters the current font lacks with "?".
func (d *pdfDoc) clean(s string) string {
	known := d.glyphs[d.font]
	if known == nil {
		known = map[rune]bool{}
		d.glyphs[d.font] = known
	}
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return ' '
		}
		ok, seen := known[r]
		if !seen {
			ok, _ = d.pdf.IsCurrFontContainGlyph(r)
			known[r] = ok
		}
		if !ok {
			return '?'
		}
		return r
	}, s)
}

// cell writes s at the current position.
func (d *pdfDoc) cell(s string) {
	if err := d.pdf.Cell(nil, d.clean(s)); err != nil && d.err == nil {
		d.err = err
	}
}

// lines wraps s to width at the current font.
func (d *pdfDoc) lines(s string, width float64) []string {
	if s == "" {
		return []string{""}
	}
	var out []string
	for _, para := range strings.Split(s, "\n") {
		para = d.clean(para)
		ls, err := d.pdf.SplitTextWithWordWrap(para, width)
		if err != nil || len(ls) == 0 {
			ls = []string{para}
		}
		out = append(out, ls...)
	}
	return out
}

// text writes a wrapped paragraph across the page.
func (d *pdfDoc) text(font string, size float64, s string) {
	d.setFont(font, size)
	lh := size * 1.35
	for _, l := range d.lines(s, textW) {
		d.need(lh)
		d.pdf.SetXY(margin, d.y)
		d.cell(l)
		d.y += lh
	}
	d.y += size * 0.4
}

func (d *pdfDoc) heading(s string) {
	d.need(60)
	d.y += 10
	d.color(27, 31, 36)
	d.setFont("bold", 14)
	d.pdf.SetXY(margin, d.y)
	d.cell(s)
	d.y += 19
	d.pdf.SetStrokeColor(208, 215, 222)
	d.pdf.SetLineWidth(0.7)
	d.pdf.Line(margin, d.y, pageW-margin, d.y)
	d.y += 8
}

func (d *pdfDoc) subheading(s string) {
	d.need(40)
	d.y += 4
	d.setFont("bold", 11)
	d.pdf.SetXY(margin, d.y)
	d.cell(s)
	d.y += 16
}

// column of a table: its width (a share of the text width) and font.
type column struct {
	title string
	share float64
	font  string
}

// table draws rows under a header, wrapping each cell, repeating the
// header on a new page. status, when >= 0, is the column whose value is
// drawn as a coloured badge.
func (d *pdfDoc) table(cols []column, rows [][]string, status int) {
	const size, pad = 8.0, 3.0
	lh := size * 1.3
	header := func() {
		d.setFont("bold", size)
		d.pdf.SetFillColor(246, 248, 250)
		d.pdf.RectFromUpperLeftWithStyle(margin, d.y, textW, lh+2*pad, "F")
		x := margin
		d.color(27, 31, 36)
		for _, c := range cols {
			d.pdf.SetXY(x+pad, d.y+pad)
			d.cell(c.title)
			x += c.share * textW
		}
		d.y += lh + 2*pad
	}
	d.need(3 * (lh + 2*pad))
	header()
	for _, row := range rows {
		cells := make([][]string, len(cols))
		n := 1
		for i, c := range cols {
			font := c.font
			if font == "" {
				font = "regular"
			}
			d.setFont(font, size)
			v := ""
			if i < len(row) {
				v = row[i]
			}
			cells[i] = d.lines(v, c.share*textW-2*pad)
			n = max(n, len(cells[i]))
		}
		h := float64(n)*lh + 2*pad
		if d.y+h > bottomLimit {
			d.newPage()
			header()
		}
		x := margin
		for i, c := range cols {
			font := c.font
			if font == "" {
				font = "regular"
			}
			d.setFont(font, size)
			d.color(27, 31, 36)
			if i == status {
				d.badge(x+pad, d.y+pad, row[i])
			} else {
				for j, l := range cells[i] {
					d.pdf.SetXY(x+pad, d.y+pad+float64(j)*lh)
					d.cell(l)
				}
			}
			x += c.share * textW
		}
		d.y += h
		d.pdf.SetStrokeColor(234, 238, 242)
		d.pdf.SetLineWidth(0.5)
		d.pdf.Line(margin, d.y, pageW-margin, d.y)
	}
	d.y += 6
}

// badgeColors are the fill colours of the statuses.
var badgeColors = map[string][3]uint8{
	string(Pass): {26, 127, 55}, string(Fail): {207, 34, 46}, string(NotApplicable): {110, 119, 129},
	"verified": {26, 127, 55}, "uncovered": {154, 103, 0}, "failed": {207, 34, 46},
}

// badge draws s as white bold text on its status colour at x, y.
func (d *pdfDoc) badge(x, y float64, s string) {
	d.setFont("bold", 8)
	w, _ := d.pdf.MeasureTextWidth(strings.ToUpper(s))
	c, ok := badgeColors[s]
	if !ok {
		c = [3]uint8{110, 119, 129}
	}
	d.pdf.SetFillColor(c[0], c[1], c[2])
	d.pdf.RectFromUpperLeftWithStyle(x, y-1, w+8, 12, "F")
	d.color(255, 255, 255)
	d.pdf.SetXY(x+4, y+1)
	d.cell(strings.ToUpper(s))
	d.color(27, 31, 36)
}

// facts draws label: value lines.
func (d *pdfDoc) facts(kv [][2]string) {
	const size = 9.0
	lh := size * 1.4
	for _, p := range kv {
		d.setFont("regular", size)
		ls := d.lines(p[1], textW-110)
		d.need(float64(len(ls)) * lh)
		d.color(87, 96, 106)
		d.pdf.SetXY(margin, d.y)
		d.cell(p[0])
		d.color(27, 31, 36)
		for _, l := range ls {
			d.pdf.SetXY(margin+110, d.y)
			d.cell(l)
			d.y += lh
		}
	}
	d.y += 4
}

// timeline draws the events per bucket as bars, failures in red.
func (d *pdfDoc) timeline(r *Report) {
	tl := r.Activity.Timeline
	if r.Activity.Events == 0 || len(tl) == 0 {
		d.text("regular", 9, "No event in the period.")
		return
	}
	const h, left = 110.0, 40.0
	d.need(h + 30)
	var peak uint64 = 1
	for _, b := range tl {
		peak = max(peak, b.Events)
	}
	x0, base := margin+left, d.y+h
	slot := (textW - left) / float64(len(tl))
	bw := max(slot*0.8, 0.5)
	scale := h / float64(peak)
	for i, b := range tl {
		x := x0 + float64(i)*slot
		if bh := float64(b.Events) * scale; bh > 0 {
			d.pdf.SetFillColor(84, 174, 255)
			d.pdf.RectFromUpperLeftWithStyle(x, base-bh, bw, bh, "F")
		}
		if b.Failures > 0 {
			fh := max(float64(b.Failures)*scale, 1.5)
			d.pdf.SetFillColor(207, 34, 46)
			d.pdf.RectFromUpperLeftWithStyle(x, base-fh, bw, fh, "F")
		}
	}
	d.pdf.SetStrokeColor(140, 149, 159)
	d.pdf.SetLineWidth(0.5)
	d.pdf.Line(x0, base, pageW-margin, base)
	d.setFont("regular", 7)
	d.color(87, 96, 106)
	d.pdf.SetXY(margin, d.y)
	d.cell(fmt.Sprint(peak))
	d.pdf.SetXY(margin, base-8)
	d.cell("0")
	every := max(1, len(tl)/8)
	for i := 0; i < len(tl); i += every {
		d.pdf.SetXY(x0+float64(i)*slot, base+3)
		d.cell(bucketLabel(r.Activity.Unit, tl[i].Start))
	}
	d.color(27, 31, 36)
	d.y = base + 18
	d.text("regular", 8, fmt.Sprintf("Events per %s (blue), failures (red).", r.Activity.Unit))
}

func pdfTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func (d *pdfDoc) render(r *Report) {
	d.color(27, 31, 36)
	d.setFont("bold", 20)
	d.pdf.SetXY(margin, d.y)
	d.cell(r.Profile + " compliance report")
	d.badge(pageW-margin-60, d.y+6, string(r.Summary.Verdict))
	d.y += 28
	d.text("regular", 10, r.Standard)
	d.facts([][2]string{
		{"log", r.Log},
		{"period", fmt.Sprintf("%s: %s to %s (end excluded)", r.Period.Text, pdfTime(r.Period.From), pdfTime(r.Period.To))},
		{"generated", pdfTime(r.GeneratedAt) + " by " + r.Generator},
		{"schema", r.Schema},
		{"summary", fmt.Sprintf("%d controls pass, %d fail, %d not applicable; %d events, %d reads of the log", r.Summary.Pass, r.Summary.Fail, r.Summary.NotApplicable, r.Activity.Events, r.Reads.Count)},
	})
	for _, n := range r.Notes {
		d.text("bold", 9, n)
	}

	d.heading(TitleControls)
	var rows [][]string
	for _, c := range r.Controls {
		rows = append(rows, []string{c.ID + "\n" + c.Title + "\n" + c.Clause, c.Requires, c.Reason + "\nevidence: " + strings.Join(c.Evidence, ", "), string(c.Status)})
	}
	d.table([]column{{"control", 0.22, ""}, {"requires", 0.28, ""}, {"evidence from this log", 0.36, ""}, {"status", 0.14, ""}}, rows, 3)

	in := &r.Integrity
	d.heading(TitleIntegrity)
	d.facts([][2]string{
		{"verification", strings.ToUpper(in.Status) + ": " + in.Detail},
		{"records", fmt.Sprintf("%d (seq %d to %d; %d events) in %d segments, %d bytes", in.Records, in.FirstSeq, in.LastSeq, in.Events, in.Segments, in.Bytes)},
		{"signatures", signaturesText(in)},
		{"checkpoints", fmt.Sprintf("%d stored, %d made in the period; signers: %s", in.Checkpoints.Stored, in.Checkpoints.InPeriod, countsText(in.Checkpoints.Signers))},
		{"heartbeat", heartbeatText(in.Heartbeat)},
	})
	if al := in.AccessLog; al != nil {
		d.facts([][2]string{{"access log", fmt.Sprintf("%s: %s, %d records %s", al.Dir, al.Status, al.Records, al.Problem)}})
	}
	if len(in.Heartbeat.Gaps) > 0 {
		d.subheading("Gaps in the heartbeat")
		rows = nil
		for _, g := range in.Heartbeat.Gaps {
			why := "no checkpoint while the sink ran"
			if g.Stopped {
				why = "the sink was stopped"
			}
			rows = append(rows, []string{pdfTime(g.From), pdfTime(g.To), g.Length.String(), why})
		}
		d.table([]column{{"from", 0.25, ""}, {"to", 0.25, ""}, {"length", 0.15, ""}, {"why", 0.35, ""}}, rows, -1)
	}
	if len(in.Checkpoints.Newest) > 0 {
		d.subheading("Newest checkpoints of the period")
		rows = nil
		for _, c := range in.Checkpoints.Newest[:min(len(in.Checkpoints.Newest), 10)] {
			rows = append(rows, []string{pdfTime(c.Time), fmt.Sprint(c.Size), strings.Join(c.Signers, ", ")})
		}
		d.table([]column{{"time", 0.3, ""}, {"tree size", 0.15, ""}, {"signed by", 0.55, "mono"}}, rows, -1)
	}

	a := &r.Activity
	d.heading(TitleActivity)
	d.text("regular", 9, fmt.Sprintf("%d events (%d failures) and %d of the sink's own events (%s). Required fields: %s; %d events miss one.",
		a.Events, a.Failures, a.Lifecycle, countsText(a.LifecycleKinds), strings.Join(a.RequiredFields, ", "), a.EventsMissingFields))
	d.timeline(r)
	rows = nil
	for _, i := range countRows(a.ByAction, a.ByOutcome, a.ByActor) {
		rows = append(rows, []string{countCell(a.ByAction, i, "v"), countCell(a.ByAction, i, "n"), countCell(a.ByOutcome, i, "v"),
			countCell(a.ByOutcome, i, "n"), countCell(a.ByActor, i, "v"), countCell(a.ByActor, i, "n")})
	}
	d.subheading("Counts by action, outcome and actor")
	d.table([]column{{"action", 0.22, ""}, {"events", 0.1, ""}, {"outcome", 0.2, ""}, {"events", 0.1, ""}, {"actor", 0.28, ""}, {"events", 0.1, ""}}, rows, -1)
	if len(a.FailureSamples) > 0 {
		d.subheading(fmt.Sprintf("Failures (first %d of %d)", len(a.FailureSamples), a.Failures))
		rows = nil
		for _, f := range a.FailureSamples {
			rows = append(rows, []string{pdfTime(f.Time), f.Actor, f.Action, f.Resource, f.Outcome, f.Message})
		}
		d.table([]column{{"time", 0.17, ""}, {"actor", 0.13, ""}, {"action", 0.12, ""}, {"resource", 0.15, ""}, {"outcome", 0.1, ""}, {"message", 0.33, ""}}, rows, -1)
	}

	rd := &r.Reads
	d.heading(TitleReads)
	access := ""
	if !rd.AccessLogPresent {
		access = " (the log has no access log)"
	}
	d.text("regular", 9, fmt.Sprintf("%d reads recorded in the period: %d in the log, %d in its access log%s.", rd.Count, rd.FromLog, rd.FromAccessLog, access))
	if len(rd.Records) > 0 {
		rows = nil
		for _, x := range rd.Records {
			rows = append(rows, []string{pdfTime(x.Time), x.User, x.Actor, x.Command, x.Range, x.Filter, x.PID, x.Where})
		}
		d.table([]column{{"time", 0.17, ""}, {"user", 0.1, ""}, {"actor", 0.1, ""}, {"command", 0.1, ""}, {"range", 0.18, ""}, {"filter", 0.15, ""}, {"pid", 0.07, ""}, {"in", 0.13, ""}}, rows, -1)
	}

	rt := &r.Retention
	d.heading(TitleRetention)
	oldest := "none"
	if rt.OldestEvent != nil {
		oldest = pdfTime(*rt.OldestEvent)
	}
	d.facts([][2]string{
		{"profile", retentionBound(rt)},
		{"oldest record kept", oldest},
		{"deletions", fmt.Sprintf("%d in the period, %d in the whole log", len(rt.Deletions), rt.DeletionsEver)},
		{"legal holds", fmt.Sprintf("%d set and %d cleared in the period; %d in force at its end", len(rt.HoldsSet), len(rt.HoldsCleared), len(rt.HoldsInForce))},
	})
	for _, l := range []struct {
		title string
		list  []Lifecycle
	}{{"Retention deletions", rt.Deletions}, {"Legal holds set", rt.HoldsSet}, {"Legal holds cleared", rt.HoldsCleared}, {"Legal holds in force at the end of the period", rt.HoldsInForce}} {
		if len(l.list) == 0 {
			continue
		}
		d.subheading(l.title)
		rows = nil
		for _, x := range l.list {
			rows = append(rows, []string{pdfTime(x.Time), x.Message, kvText(x.Properties)})
		}
		d.table([]column{{"time", 0.2, ""}, {"message", 0.4, ""}, {"properties", 0.4, ""}}, rows, -1)
	}

	d.heading(TitleEvidence)
	d.text("regular", 9, "Each finding can be checked without trusting this report: run the commands with the log and its public key.")
	for _, e := range r.Evidence {
		d.subheading(fmt.Sprintf("%s (%s)", e.Title, e.ID))
		d.text("regular", 9, e.Finding)
		for _, c := range e.Recheck {
			d.text("mono", 7.5, c)
		}
	}
}

func signaturesText(in *Integrity) string {
	if !in.KeysGiven {
		return "not checked: no public key was given"
	}
	return fmt.Sprintf("%d stored checkpoints verified with the given key; they cover %d records", in.CheckpointsVerified, in.Covered)
}

func heartbeatText(hb Heartbeat) string {
	if hb.Interval == 0 {
		return "not checked"
	}
	return fmt.Sprintf("every %s: %d longer gaps, %d of them while the sink was stopped", hb.Interval, hb.Missed, hb.Stopped)
}

func retentionBound(rt *Retention) string {
	switch {
	case rt.Minimum > 0:
		return "keep at least " + rt.Minimum.String()
	case rt.Maximum > 0:
		return "keep at most " + rt.Maximum.String()
	}
	return "no bound"
}
