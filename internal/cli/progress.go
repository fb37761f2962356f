package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/willibrandon/mtlog-audit/wal"
)

// progress is a bar on stderr counting the log's bytes read, with the
// number of records in its description. A nil *progress does nothing, so
// callers need not check whether a bar is shown.
type progress struct {
	bar     *progressbar.ProgressBar
	desc    string
	starts  map[uint64]int64 // segment number -> bytes of the segments before it
	records uint64
	last    time.Time
}

// newProgress returns a bar for reading the log in dir, or nil when no bar
// should be shown (--quiet, --progress never, or stderr not a terminal
// under --progress auto).
func (e *env) newProgress(desc, dir string) *progress {
	if !e.showProgress() {
		return nil
	}
	starts, total := segmentOffsets(dir)
	p := &progress{desc: desc, starts: starts}
	p.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(e.stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetWidth(24),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionUseANSICodes(true),
	)
	return p
}

func (e *env) showProgress() bool {
	if e.quiet {
		return false
	}
	switch e.progress {
	case "always":
		return true
	case "never":
		return false
	}
	f, ok := e.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// at records that the reader is at offset off of segment seg, after n
// records.
func (p *progress) at(seg uint64, off int64, n uint64) {
	if p == nil {
		return
	}
	p.records = n
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.bar.Describe(fmt.Sprintf("%s %d records", p.desc, n))
		p.bar.Set64(p.starts[seg] + off)
	}
}

// bytes sets the bar to an absolute byte position (for readers that count
// bytes themselves).
func (p *progress) bytes(n int64) {
	if p == nil {
		return
	}
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.bar.Set64(n)
	}
}

// finish completes and clears the bar.
func (p *progress) finish() {
	if p == nil {
		return
	}
	p.bar.Finish()
	p.bar.Exit()
}

// segmentOffsets lists the segments of dir and returns where each starts in
// the concatenation of all of them, and the total size.
func segmentOffsets(dir string) (map[uint64]int64, int64) {
	ents, _ := os.ReadDir(dir)
	type seg struct {
		n    uint64
		size int64
	}
	var segs []seg
	for _, e := range ents {
		name := e.Name()
		n, ok := wal.ParseSegmentName(name)
		if !ok {
			continue
		}
		if st, err := os.Stat(filepath.Join(dir, name)); err == nil {
			segs = append(segs, seg{n, st.Size()})
		}
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].n < segs[j].n })
	starts := make(map[uint64]int64, len(segs))
	var total int64
	for _, s := range segs {
		starts[s.n] = total
		total += s.size
	}
	return starts, total
}
