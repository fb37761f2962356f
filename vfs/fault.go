package vfs

import (
	"io"
	"io/fs"
	"math/rand/v2"
	"sync"
	"syscall"
	"time"
)

// FaultFS wraps an FS and injects faults into file writes and syncs: a full
// disk, failing writes or syncs, short writes, latency, and a disk that
// stops answering (Hang). The faults can be changed at any time, also while
// files are in use. Directory operations other than SyncDir pass through
// unchanged, except that Hang holds every mutation.
//
// Injected errors are *fs.PathError values wrapping the errno (or the error
// given), so errors.Is(err, syscall.ENOSPC) and the like work.
type FaultFS struct {
	inner FS

	mu        sync.Mutex
	budget    int64 // bytes that may still be written; < 0 means unlimited
	writeErr  error
	syncErr   error
	syncsLeft int // syncs that succeed before syncAfter applies
	syncAfter error
	shortProb float64
	shortRand *rand.Rand
	latency   time.Duration
	hang      chan struct{}  // non-nil while hung: closed by Release
	blocked   chan struct{}  // closed when the first call blocks on hang
	released  sync.WaitGroup // calls blocked on hang, until they return
	stats     FaultStats
}

var _ FS = (*FaultFS)(nil)

// FaultStats counts what a FaultFS let through and what it injected.
type FaultStats struct {
	Writes       int64 // WriteAt calls that reached the inner FS
	BytesWritten int64 // bytes the inner FS reported written
	Syncs        int64 // Sync, Datasync and SyncDir calls that reached the inner FS
	Faults       int64 // errors injected
	Hung         int64 // calls that blocked on Hang
}

// NewFaultFS returns a FaultFS over inner that injects no faults until told
// to.
func NewFaultFS(inner FS) *FaultFS {
	return &FaultFS{inner: inner, budget: -1}
}

// SetWriteBudget lets n more bytes be written; after that the disk is full.
// A WriteAt that does not fit writes the part that does and returns an error
// wrapping syscall.ENOSPC. n < 0 means unlimited, the default.
func (f *FaultFS) SetWriteBudget(n int64) {
	f.mu.Lock()
	f.budget = n
	f.mu.Unlock()
}

// FailWrites makes every WriteAt return err (wrapped) without writing. A nil
// err stops it.
func (f *FaultFS) FailWrites(err error) {
	f.mu.Lock()
	f.writeErr = err
	f.mu.Unlock()
}

// FailSyncs makes every Sync, Datasync and SyncDir return err (wrapped)
// without syncing. A nil err stops it.
func (f *FaultFS) FailSyncs(err error) {
	f.mu.Lock()
	f.syncErr = err
	f.mu.Unlock()
}

// FailSyncAfter lets n more syncs (Sync, Datasync or SyncDir) succeed and
// makes the next one and all later ones return err (wrapped) without
// syncing. A nil err stops it.
func (f *FaultFS) FailSyncAfter(n int, err error) {
	f.mu.Lock()
	f.syncsLeft, f.syncAfter = n, err
	f.mu.Unlock()
}

// SetShortWrites makes each WriteAt, with probability p, write only a random
// strict prefix of its data and return io.ErrShortWrite (wrapped). The
// choices are drawn from a generator seeded with seed. p <= 0 stops it.
func (f *FaultFS) SetShortWrites(p float64, seed int64) {
	f.mu.Lock()
	f.shortProb = p
	f.shortRand = rand.New(rand.NewPCG(uint64(seed), 0x5bd1e995))
	f.mu.Unlock()
}

// SetLatency makes every write and sync sleep for d first. Zero stops it.
func (f *FaultFS) SetLatency(d time.Duration) {
	f.mu.Lock()
	f.latency = d
	f.mu.Unlock()
}

// Hang makes every mutation block until Release: WriteAt, Truncate, Sync,
// Datasync and SyncDir of its files, and Create, CreatePrivate,
// OpenReadWrite, Remove, Rename and MkdirAll, as a disk or NFS server that
// stops answering does. Reads (Open, ReadAt, Size, List, Stat) and Lock
// still answer. The returned channel is closed when the first call blocks,
// so that a test can wait for it instead of sleeping. Calling Hang while
// hung returns the same channel.
func (f *FaultFS) Hang() (blocked <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hang == nil {
		f.hang, f.blocked = make(chan struct{}), make(chan struct{})
	}
	return f.blocked
}

// Release lets every call blocked by Hang proceed (each then runs as if it
// had just been called), stops the hang, and returns once every such call
// has returned, so that nothing a hung call does lands later.
func (f *FaultFS) Release() {
	f.mu.Lock()
	if f.hang != nil {
		close(f.hang)
		f.hang, f.blocked = nil, nil
	}
	f.mu.Unlock()
	f.released.Wait()
}

// wait blocks while the FaultFS is hung. The caller calls the function it
// returns when its call is done: defer f.wait()().
func (f *FaultFS) wait() (done func()) {
	f.mu.Lock()
	hang, blocked := f.hang, f.blocked
	if hang == nil {
		f.mu.Unlock()
		return func() {}
	}
	f.stats.Hung++
	if !isClosed(blocked) {
		close(blocked)
	}
	f.released.Add(1)
	f.mu.Unlock()
	<-hang
	return f.released.Done
}

// isClosed reports whether c is closed.
func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Stats returns the counts so far.
func (f *FaultFS) Stats() FaultStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

func (f *FaultFS) sleep() {
	f.mu.Lock()
	d := f.latency
	f.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
}

// planWrite decides how many of n bytes a write may write and, if fewer or
// none, the error to return. It takes the bytes from the budget.
func (f *FaultFS) planWrite(n int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writeErr != nil {
		f.stats.Faults++
		return 0, f.writeErr
	}
	var err error
	if f.budget >= 0 && int64(n) > f.budget {
		n, err = int(f.budget), syscall.ENOSPC
	} else if n > 0 && f.shortProb > 0 && f.shortRand.Float64() < f.shortProb {
		n, err = f.shortRand.IntN(n), io.ErrShortWrite
	}
	if err != nil {
		f.stats.Faults++
	}
	if f.budget >= 0 {
		f.budget -= int64(n)
	}
	return n, err
}

// wrote settles a write of planned bytes of which the inner file wrote n.
func (f *FaultFS) wrote(planned, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats.Writes++
	if f.budget >= 0 && n < planned {
		f.budget += int64(planned - n) // refund what the inner FS did not write
	}
	f.stats.BytesWritten += int64(n)
}

// planSync returns the error a sync must fail with, or nil to let it
// through.
func (f *FaultFS) planSync() error {
	f.sleep()
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.syncErr
	if err == nil && f.syncAfter != nil {
		if f.syncsLeft > 0 {
			f.syncsLeft--
		} else {
			err = f.syncAfter
		}
	}
	if err != nil {
		f.stats.Faults++
		return err
	}
	f.stats.Syncs++
	return nil
}

func (f *FaultFS) wrap(file File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

// Create creates a file through the inner FS.
func (f *FaultFS) Create(name string) (File, error) {
	defer f.wait()()
	return f.wrap(f.inner.Create(name))
}

// CreatePrivate creates an owner-only file through the inner FS.
func (f *FaultFS) CreatePrivate(name string) (File, error) {
	defer f.wait()()
	return f.wrap(CreatePrivate(f.inner, name))
}

// Open opens a file read-only through the inner FS.
func (f *FaultFS) Open(name string) (File, error) { return f.wrap(f.inner.Open(name)) }

// OpenReadWrite opens a file for reading and writing through the inner FS.
func (f *FaultFS) OpenReadWrite(name string) (File, error) {
	defer f.wait()()
	return f.wrap(f.inner.OpenReadWrite(name))
}

// Remove removes name through the inner FS.
func (f *FaultFS) Remove(name string) error {
	defer f.wait()()
	return f.inner.Remove(name)
}

// Rename renames through the inner FS.
func (f *FaultFS) Rename(oldname, newname string) error {
	defer f.wait()()
	return f.inner.Rename(oldname, newname)
}

// MkdirAll creates directories through the inner FS.
func (f *FaultFS) MkdirAll(dir string, perm fs.FileMode) error {
	defer f.wait()()
	return f.inner.MkdirAll(dir, perm)
}

// List lists dir through the inner FS.
func (f *FaultFS) List(dir string) ([]string, error) { return f.inner.List(dir) }

// Stat describes name through the inner FS.
func (f *FaultFS) Stat(name string) (fs.FileInfo, error) { return f.inner.Stat(name) }

// SyncDir syncs dir through the inner FS unless a sync fault applies.
func (f *FaultFS) SyncDir(dir string) error {
	defer f.wait()()
	if err := f.planSync(); err != nil {
		return &fs.PathError{Op: "sync", Path: dir, Err: err}
	}
	return f.inner.SyncDir(dir)
}

// Lock locks through the inner FS.
func (f *FaultFS) Lock(name, owner string) (io.Closer, error) { return f.inner.Lock(name, owner) }

// faultFile is a File of a FaultFS.
type faultFile struct {
	File
	fs *FaultFS
}

// WriteAt writes through the inner file unless a write fault applies.
func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	defer f.fs.wait()()
	f.fs.sleep()
	planned, fault := f.fs.planWrite(len(p))
	if planned == 0 && fault != nil {
		return 0, &fs.PathError{Op: "write", Path: f.Name(), Err: fault}
	}
	n, err := f.File.WriteAt(p[:planned], off)
	f.fs.wrote(planned, n)
	if err != nil {
		return n, err
	}
	if fault != nil {
		return n, &fs.PathError{Op: "write", Path: f.Name(), Err: fault}
	}
	return n, nil
}

// Sync syncs the inner file unless a sync fault applies.
func (f *faultFile) Sync() error {
	defer f.fs.wait()()
	if err := f.fs.planSync(); err != nil {
		return &fs.PathError{Op: "sync", Path: f.Name(), Err: err}
	}
	return f.File.Sync()
}

// Datasync syncs the inner file's data unless a sync fault applies.
func (f *faultFile) Datasync() error {
	defer f.fs.wait()()
	if err := f.fs.planSync(); err != nil {
		return &fs.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
	}
	return f.File.Datasync()
}

// Truncate truncates the inner file (blocking while the FaultFS is hung).
func (f *faultFile) Truncate(size int64) error {
	defer f.fs.wait()()
	return f.File.Truncate(size)
}
