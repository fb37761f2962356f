package benchrun

import (
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// syncTimer is a vfs.FS that times every Datasync and Sync of the files it
// opens: the disk's own sync latency under the benchmark's load, measured
// on the log's own syncs.
type syncTimer struct {
	vfs.FS
	mu   sync.Mutex
	hist *hdrhistogram.Histogram
}

func newSyncTimer(inner vfs.FS) *syncTimer {
	return &syncTimer{FS: inner, hist: hdrhistogram.New(histMin, histMax, histSigFigs)}
}

func (t *syncTimer) record(d time.Duration) {
	t.mu.Lock()
	t.hist.RecordValue(int64(d))
	t.mu.Unlock()
}

// reset forgets what was recorded (the warm-up's syncs).
func (t *syncTimer) reset() {
	t.mu.Lock()
	t.hist.Reset()
	t.mu.Unlock()
}

// quantiles returns p50, p99 and the number of syncs recorded.
func (t *syncTimer) quantiles() (p50, p99 time.Duration, n int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return time.Duration(t.hist.ValueAtQuantile(50)), time.Duration(t.hist.ValueAtQuantile(99)), t.hist.TotalCount()
}

func (t *syncTimer) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return timedFile{File: f, t: t}, nil
}

func (t *syncTimer) Create(name string) (vfs.File, error) { return t.wrap(t.FS.Create(name)) }
func (t *syncTimer) CreatePrivate(name string) (vfs.File, error) {
	return t.wrap(vfs.CreatePrivate(t.FS, name))
}
func (t *syncTimer) OpenReadWrite(name string) (vfs.File, error) {
	return t.wrap(t.FS.OpenReadWrite(name))
}

type timedFile struct {
	vfs.File
	t *syncTimer
}

func (f timedFile) Datasync() error {
	start := time.Now()
	err := f.File.Datasync()
	f.t.record(time.Since(start))
	return err
}

func (f timedFile) Sync() error {
	start := time.Now()
	err := f.File.Sync()
	f.t.record(time.Since(start))
	return err
}
