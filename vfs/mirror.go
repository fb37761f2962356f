package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Replica is one copy of a mirrored directory: the directory Dir on the
// filesystem FS.
type Replica struct {
	FS  FS
	Dir string
}

// Mirror is an FS that keeps byte-identical copies of one directory (the
// primary) in other directories (the mirrors), ideally on other disks.
//
// Every path inside the primary directory (the directory itself included)
// stands for the same relative path inside each mirror. Mutations of such a
// path are applied to every copy: Create, OpenReadWrite, WriteAt, Truncate,
// Remove, Rename, MkdirAll and Lock. Sync, Datasync and SyncDir return only
// after every copy was synced, and CheckLinked checks every copy's file
// (the copies are synced
// concurrently, so that copies on different disks cost one sync latency, not
// the sum). Software that writes only through the FS and treats a write as
// durable once Sync, Datasync or SyncDir returned nil therefore gets the same
// guarantee for every copy, with no change: the write-ahead log's rule
// "acknowledge only after fdatasync" covers each copy, and because every
// copy receives the same bytes at the same offsets, the copies stay
// byte-identical (random values such as a segment's salt are written as
// bytes like everything else).
//
// Reads (Open, ReadAt, Size, List, Stat) are served by the primary alone. A
// file opened with Open is the primary's file; a file from Create or
// OpenReadWrite writes to every copy and reads from the primary.
//
// Paths outside the primary directory are passed to the primary's
// filesystem unchanged and are not mirrored.
//
// Errors fail closed. A mutation is applied to the primary first; if that
// fails, the error is returned and no mirror is touched. Then it is applied
// to each mirror; any mirror's error is an error of the operation (wrapped,
// so errors.Is and errors.As see the cause, such as syscall.EIO or
// syscall.ENOSPC, and the text names the mirror). A Sync, Datasync or
// SyncDir error of any copy is returned as the operation's error, so a
// caller that stops trusting a file after a failed fsync (as the
// write-ahead log does: it enters its failed state) stops for a mirror's
// failure exactly as for the primary's. After an error the copies may
// differ (the primary may hold a write that a mirror lacks); the caller was
// not told the operation succeeded, and audit.New reconciles the copies the
// next time the log is opened. One exception keeps removal idempotent:
// Remove of a file that a mirror does not have succeeds when the primary's
// Remove succeeds (the file is gone from every copy, which is what was
// asked).
//
// A mirror whose disk is missing (unmounted, failed, its directory gone)
// makes the first mutation, sync or CheckLinked that reaches it fail,
// typically with ENOENT or EIO (a file open in a removed directory still
// takes writes and syncs: only CheckLinked notices that it can no longer be
// found): a log writing through the Mirror stops acknowledging, and
// nothing is acknowledged that is not durable in every copy. A mirror whose
// disk is full fails writes with ENOSPC; the write-ahead log undoes the
// batch on every copy (Truncate) and reports the error, like a full primary,
// and resumes when space is freed. In both cases the primary keeps every
// acknowledged byte and is never rolled back.
//
// NewMirror neither creates nor compares the copies: the directories must
// exist and already hold the same files (audit.New with
// audit.WithRedundancy creates the directories of a new log, and reconciles
// the copies and repairs damage before it opens the log through a Mirror).
//
// A hung mirror (a disk or NFS server that stops answering) blocks every
// operation that reaches it, and so the log's acknowledgements, for as
// long as it hangs: every copy is waited for. WithPolicy sets a quorum of
// copies and a time limit per mirror instead (see MirrorPolicy).
//
// A Mirror is safe for concurrent use if the underlying filesystems are.
type Mirror struct {
	reps []Replica // reps[0] is the primary; each Dir is cleaned

	// Set by WithPolicy; state is nil without a quorum policy.
	policy MirrorPolicy
	since  time.Time
	state  []*copyState // state[i] is reps[i]'s (state[0] unused)
}

var _ FS = (*Mirror)(nil)

// NewMirror returns a Mirror of the directory primary onto each directory in
// mirrors, all on fsys. The directories must be distinct and none may lie
// inside another.
func NewMirror(fsys FS, primary string, mirrors ...string) (*Mirror, error) {
	reps := make([]Replica, 0, 1+len(mirrors))
	for _, d := range mirrors {
		reps = append(reps, Replica{FS: fsys, Dir: d})
	}
	return NewMirrorOf(Replica{FS: fsys, Dir: primary}, reps...)
}

// NewMirrorOf is NewMirror with each copy on its own filesystem (for
// instance a test filesystem that injects faults into one copy only).
// Copies on the same filesystem must be distinct directories, none inside
// another.
func NewMirrorOf(primary Replica, mirrors ...Replica) (*Mirror, error) {
	reps := append([]Replica{primary}, mirrors...)
	for i := range reps {
		if reps[i].FS == nil {
			return nil, fmt.Errorf("vfs: mirror: copy %d (%q) has no filesystem", i, reps[i].Dir)
		}
		if reps[i].Dir == "" {
			return nil, fmt.Errorf("vfs: mirror: copy %d has an empty directory path", i)
		}
		reps[i].Dir = filepath.Clean(reps[i].Dir)
		for j := 0; j < i; j++ {
			if !sameFS(reps[i].FS, reps[j].FS) {
				continue
			}
			a, b := reps[i].Dir, reps[j].Dir
			if a == b || within(a, b) || within(b, a) {
				return nil, fmt.Errorf("vfs: mirror: directories %q and %q overlap: each copy needs its own directory, and none may lie inside another", b, a)
			}
		}
	}
	return &Mirror{reps: reps}, nil
}

// sameFS reports whether a and b are the same filesystem value (false when
// they cannot be compared).
func sameFS(a, b FS) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}

// within reports whether the cleaned path p lies strictly inside dir.
func within(p, dir string) bool {
	if dir == string(filepath.Separator) {
		return p != dir && strings.HasPrefix(p, dir)
	}
	return strings.HasPrefix(p, dir+string(filepath.Separator))
}

// Replicas returns the copies, the primary first.
func (m *Mirror) Replicas() []Replica { return append([]Replica(nil), m.reps...) }

// rel returns name relative to the primary directory ("" for the directory
// itself), or false when name lies outside it.
func (m *Mirror) rel(name string) (string, bool) {
	c, p := filepath.Clean(name), m.reps[0].Dir
	switch {
	case c == p:
		return "", true
	case within(c, p):
		return strings.TrimPrefix(c[len(p):], string(filepath.Separator)), true
	}
	return "", false
}

// at returns the path of rel in copy i (i ≥ 1).
func (m *Mirror) at(i int, rel string) string {
	if rel == "" {
		return m.reps[i].Dir
	}
	return filepath.Join(m.reps[i].Dir, rel)
}

// mirrorErr wraps an error of copy i (i ≥ 1) so that its text names the copy.
func (m *Mirror) mirrorErr(i int, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("vfs: mirror copy %s: %w", m.reps[i].Dir, err)
}

// Create creates name in every copy (O_EXCL in each). If a mirror's create
// fails, the files created so far are closed and removed again.
func (m *Mirror) Create(name string) (File, error) { return m.create(name, false) }

// CreatePrivate is Create with owner-only permissions in every copy.
func (m *Mirror) CreatePrivate(name string) (File, error) { return m.create(name, true) }

func (m *Mirror) create(name string, private bool) (File, error) {
	mk := func(fsys FS, name string) (File, error) {
		if private {
			return CreatePrivate(fsys, name)
		}
		return fsys.Create(name)
	}
	rel, ok := m.rel(name)
	if !ok {
		return mk(m.reps[0].FS, name)
	}
	f0, err := mk(m.reps[0].FS, name)
	if err != nil {
		return nil, err
	}
	if m.quorum() {
		return m.openQuorum(f0, "create", name, rel, func(fsys FS, p string) (File, error) { return mk(fsys, p) }, true)
	}
	mf := &mirrorFile{m: m, files: []File{f0}}
	for i := 1; i < len(m.reps); i++ {
		p := m.at(i, rel)
		f, err := mk(m.reps[i].FS, p)
		if err != nil {
			for j, g := range mf.files {
				g.Close()
				if j == 0 {
					m.reps[0].FS.Remove(name)
				} else {
					m.reps[j].FS.Remove(m.at(j, rel))
				}
			}
			return nil, m.mirrorErr(i, err)
		}
		mf.files = append(mf.files, f)
	}
	return mf, nil
}

// Open opens the primary's file read-only.
func (m *Mirror) Open(name string) (File, error) { return m.reps[0].FS.Open(name) }

// OpenReadWrite opens name for reading and writing in every copy. The file
// must exist in every copy.
func (m *Mirror) OpenReadWrite(name string) (File, error) {
	rel, ok := m.rel(name)
	if !ok {
		return m.reps[0].FS.OpenReadWrite(name)
	}
	f0, err := m.reps[0].FS.OpenReadWrite(name)
	if err != nil {
		return nil, err
	}
	if m.quorum() {
		return m.openQuorum(f0, "open", name, rel, FS.OpenReadWrite, false)
	}
	mf := &mirrorFile{m: m, files: []File{f0}}
	for i := 1; i < len(m.reps); i++ {
		f, err := m.reps[i].FS.OpenReadWrite(m.at(i, rel))
		if err != nil {
			mf.Close()
			return nil, m.mirrorErr(i, err)
		}
		mf.files = append(mf.files, f)
	}
	return mf, nil
}

// Remove removes name from every copy. A mirror that does not have the file
// is not an error when the primary's Remove succeeded; when the primary's
// Remove fails with fs.ErrNotExist, the mirrors are still cleaned and that
// error is returned (unless a mirror failed otherwise).
func (m *Mirror) Remove(name string) error {
	rel, ok := m.rel(name)
	if !ok {
		return m.reps[0].FS.Remove(name)
	}
	err0 := m.reps[0].FS.Remove(name)
	if err0 != nil && !errors.Is(err0, fs.ErrNotExist) {
		return err0
	}
	if m.quorum() {
		if err := m.onMirrors("remove", name, func(i int) error {
			if err := m.reps[i].FS.Remove(m.at(i, rel)); !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return nil
		}); err != nil {
			return err
		}
		return err0
	}
	var errs []error
	for i := 1; i < len(m.reps); i++ {
		if err := m.reps[i].FS.Remove(m.at(i, rel)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, m.mirrorErr(i, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return err0
}

// Rename renames oldname to newname in every copy. Both paths must lie on
// the same side of the primary directory's boundary (both inside, or both
// outside).
func (m *Mirror) Rename(oldname, newname string) error {
	oldRel, okOld := m.rel(oldname)
	newRel, okNew := m.rel(newname)
	if okOld != okNew {
		return &fs.PathError{Op: "rename", Path: oldname + " " + newname, Err: errors.New("vfs: mirror: cannot rename across the mirrored directory's boundary")}
	}
	if err := m.reps[0].FS.Rename(oldname, newname); err != nil || !okOld {
		return err
	}
	if m.quorum() {
		return m.onMirrors("rename", oldname, func(i int) error { return m.reps[i].FS.Rename(m.at(i, oldRel), m.at(i, newRel)) })
	}
	var errs []error
	for i := 1; i < len(m.reps); i++ {
		if err := m.reps[i].FS.Rename(m.at(i, oldRel), m.at(i, newRel)); err != nil {
			errs = append(errs, m.mirrorErr(i, err))
		}
	}
	return errors.Join(errs...)
}

// MkdirAll creates dir and any missing parents in every copy. In the
// mirrors, each directory it creates is made durable (its parent is synced)
// before MkdirAll returns; in the primary that is left to the caller, as
// with any FS.
func (m *Mirror) MkdirAll(dir string, perm fs.FileMode) error {
	rel, ok := m.rel(dir)
	if err := m.reps[0].FS.MkdirAll(dir, perm); err != nil || !ok {
		return err
	}
	if m.quorum() {
		return m.onMirrors("mkdir", dir, func(i int) error { return MkdirAllDurable(m.reps[i].FS, m.at(i, rel), perm) })
	}
	var errs []error
	for i := 1; i < len(m.reps); i++ {
		if err := MkdirAllDurable(m.reps[i].FS, m.at(i, rel), perm); err != nil {
			errs = append(errs, m.mirrorErr(i, err))
		}
	}
	return errors.Join(errs...)
}

// List lists the primary's directory.
func (m *Mirror) List(dir string) ([]string, error) { return m.reps[0].FS.List(dir) }

// Stat describes the primary's file.
func (m *Mirror) Stat(name string) (fs.FileInfo, error) { return m.reps[0].FS.Stat(name) }

// SyncDir syncs dir in every copy, concurrently, and returns when all are
// done: nil only if every copy's sync succeeded.
func (m *Mirror) SyncDir(dir string) error {
	rel, ok := m.rel(dir)
	if !ok {
		return m.reps[0].FS.SyncDir(dir)
	}
	return m.parallel("syncdir", dir, func(i int) error {
		if i == 0 {
			return m.reps[0].FS.SyncDir(dir)
		}
		return m.reps[i].FS.SyncDir(m.at(i, rel))
	})
}

// parallel runs fn for every copy, the mirrors on their own goroutines and
// the primary on the caller's, and joins the errors (mirror errors wrapped).
// Under a quorum policy it returns the primary's error, else quorumErr
// (op and name describe the operation; see startMirrors).
func (m *Mirror) parallel(op, name string, fn func(i int) error) error {
	n := len(m.reps)
	if n == 1 {
		return fn(0)
	}
	if m.quorum() {
		wait := m.startMirrors(op, name, fn, nil)
		err0 := fn(0)
		if _, errM := wait(); err0 == nil {
			return errM
		}
		return err0
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	wg.Add(n - 1)
	for i := 1; i < n; i++ {
		go func() {
			defer wg.Done()
			errs[i] = m.mirrorErr(i, fn(i))
		}()
	}
	errs[0] = fn(0)
	wg.Wait()
	return joinErrs(errs)
}

// joinErrs returns nil, the only non-nil error, or all of them joined.
func joinErrs(errs []error) error {
	var first error
	n := 0
	for _, err := range errs {
		if err != nil {
			if n == 0 {
				first = err
			}
			n++
		}
	}
	if n <= 1 {
		return first
	}
	return errors.Join(errs...)
}

// Lock locks name in every copy (so that no other process writes any copy)
// and writes owner into each lock file. If a mirror's lock fails, the locks
// taken so far are released and the error (matching ErrLocked when another
// owner holds it) is returned. Closing the returned io.Closer releases every
// lock.
func (m *Mirror) Lock(name, owner string) (io.Closer, error) {
	rel, ok := m.rel(name)
	l0, err := m.reps[0].FS.Lock(name, owner)
	if err != nil || !ok {
		return l0, err
	}
	locks := mirrorLock{l0}
	for i := 1; i < len(m.reps); i++ {
		l, err := m.reps[i].FS.Lock(m.at(i, rel), owner)
		if err != nil {
			locks.Close()
			return nil, m.mirrorErr(i, err)
		}
		locks = append(locks, l)
	}
	return locks, nil
}

// mirrorLock is the set of locks taken by Mirror.Lock.
type mirrorLock []io.Closer

// Close releases every lock.
func (l mirrorLock) Close() error {
	errs := make([]error, len(l))
	for i, c := range l {
		errs[i] = c.Close()
	}
	return joinErrs(errs)
}

// mirrorFile is a file open for writing in every copy.
type mirrorFile struct {
	m     *Mirror
	files []File // files[i] is copy i's; nil for a mirror stale when it was opened (quorum policy)
}

// ReadAt reads from the primary's file.
func (f *mirrorFile) ReadAt(p []byte, off int64) (int, error) { return f.files[0].ReadAt(p, off) }

// WriteAt writes p at off in every copy: the primary first (if that fails,
// its result is returned and no mirror is written), then each mirror. It
// returns the smallest count written and the first error.
func (f *mirrorFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.files[0].WriteAt(p, off)
	if err != nil {
		return n, err
	}
	if f.m.quorum() {
		return n, f.writeQuorum(p, off)
	}
	for i := 1; i < len(f.files); i++ {
		k, err := f.files[i].WriteAt(p, off)
		if err != nil {
			return min(n, k), f.m.mirrorErr(i, err)
		}
	}
	return n, nil
}

// Close closes every copy's file.
func (f *mirrorFile) Close() error {
	if f.m.quorum() {
		return f.closeQuorum()
	}
	errs := make([]error, len(f.files))
	for i, g := range f.files {
		if i == 0 {
			errs[i] = g.Close()
		} else {
			errs[i] = f.m.mirrorErr(i, g.Close())
		}
	}
	return joinErrs(errs)
}

// Sync syncs every copy's file, concurrently, and returns when all are
// done: nil only if every copy's fsync succeeded.
func (f *mirrorFile) Sync() error {
	return f.m.parallel("fsync", f.Name(), func(i int) error { return f.call(i, File.Sync) })
}

// Datasync is Sync with fdatasync.
func (f *mirrorFile) Datasync() error {
	return f.m.parallel("fdatasync", f.Name(), func(i int) error { return f.call(i, File.Datasync) })
}

// Truncate truncates every copy's file: the primary first (if that fails,
// no mirror is changed).
func (f *mirrorFile) Truncate(size int64) error {
	if err := f.files[0].Truncate(size); err != nil {
		return err
	}
	if f.m.quorum() {
		return f.m.onMirrors("truncate", f.Name(), func(i int) error { return f.call(i, func(g File) error { return g.Truncate(size) }) })
	}
	var errs []error
	for i := 1; i < len(f.files); i++ {
		if err := f.files[i].Truncate(size); err != nil {
			errs = append(errs, f.m.mirrorErr(i, err))
		}
	}
	return errors.Join(errs...)
}

// Size returns the primary's file size.
func (f *mirrorFile) Size() (int64, error) { return f.files[0].Size() }

// CheckLinked checks every copy's file, the primary first, and returns the
// first failure (a mirror's wrapped so that its text names the mirror): a
// copy whose file or directory was removed or replaced fails the check like
// a copy whose disk fails a sync.
func (f *mirrorFile) CheckLinked() error {
	if f.m.quorum() {
		if err := f.files[0].CheckLinked(); err != nil {
			return err
		}
		return f.m.onMirrors("check", f.Name(), func(i int) error { return f.call(i, File.CheckLinked) })
	}
	for i, g := range f.files {
		if err := g.CheckLinked(); err != nil {
			if i == 0 {
				return err
			}
			return f.m.mirrorErr(i, err)
		}
	}
	return nil
}

// Name returns the primary's path, as the file was opened with.
func (f *mirrorFile) Name() string { return f.files[0].Name() }
