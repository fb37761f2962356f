package vfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// OpKind names a mutating operation reported to a CrashFS hook.
type OpKind int

// The mutating operations of a CrashFS.
const (
	OpWrite    OpKind = iota + 1 // File.WriteAt: Name, Off, Len
	OpSync                       // File.Sync: Name
	OpDatasync                   // File.Datasync: Name
	OpTruncate                   // File.Truncate: Name, Off (the new size)
	OpCreate                     // FS.Create: Name
	OpRename                     // FS.Rename: Name (old), NewName
	OpRemove                     // FS.Remove: Name
	OpSyncDir                    // FS.SyncDir: Name
	OpMkdir                      // FS.MkdirAll: Name
)

var opKindNames = [...]string{
	OpWrite: "write", OpSync: "sync", OpDatasync: "datasync", OpTruncate: "truncate",
	OpCreate: "create", OpRename: "rename", OpRemove: "remove", OpSyncDir: "syncdir", OpMkdir: "mkdir",
}

// String returns the lower-case name of the operation, such as "write".
func (k OpKind) String() string {
	if k > 0 && int(k) < len(opKindNames) {
		return opKindNames[k]
	}
	return "OpKind(" + strconv.Itoa(int(k)) + ")"
}

// Op describes a mutating operation that a CrashFS is about to apply.
type Op struct {
	Kind    OpKind
	Name    string // the path passed to the FS, or the file's Name()
	NewName string // the destination, for OpRename
	Off     int64  // the offset for OpWrite, the new size for OpTruncate
	Len     int    // the number of bytes for OpWrite
}

// CrashOptions chooses which unsynced state survives a simulated power loss
// (see CrashFS.CrashClone).
type CrashOptions struct {
	// Seed seeds the random choices: the same seed and the same history
	// give byte-identical clones.
	Seed int64
	// SectorSize is the unit in which unsynced file data survives or is
	// lost, typically 512 or 4096. Zero (or less) means 512.
	SectorSize int
	// KeepSectorProb is the probability, from 0 to 1, that each unsynced
	// sector (and an unsynced truncation) survives.
	KeepSectorProb float64
	// KeepDirOpProb is the probability, from 0 to 1, that each directory
	// operation not yet made durable by SyncDir survives.
	KeepDirOpProb float64
}

// CrashFS is an in-memory FS that can simulate power loss.
//
// Each file is an inode holding its current bytes and its durable bytes: Sync
// or Datasync on any handle of the inode makes its data and size durable.
// Directory operations (creating a file, MkdirAll creating a directory,
// Rename, Remove) change the namespace at once but are only durable after
// SyncDir of a directory they touch; a rename between two directories is made
// durable by syncing either one. Note that a directory made by MkdirAll is
// itself an entry of its parent, so the parent must be synced too.
//
// CrashClone returns the state that a power loss at that instant might leave,
// and SetHook lets a test take such a clone just before any chosen operation.
// Paths are slash-separated and cleaned with path.Clean; a leading slash is
// ignored, so "/a/b" and "a/b" name the same file. Parent directories must
// exist, as with the operating system.
//
// A CrashFS is safe for concurrent use. Handles of a removed file keep
// working on its inode, as with POSIX unlink.
type CrashFS struct {
	mu      sync.RWMutex
	root    *inode
	pending []dirOp               // directory operations not yet durable, oldest first
	locks   map[string]*crashLock // held locks by cleaned path
	hook    func(Op)
	count   atomic.Int64
}

var _ FS = (*CrashFS)(nil)

// NewCrashFS returns an empty CrashFS whose root directory is durable.
func NewCrashFS() *CrashFS {
	return &CrashFS{root: newDir(fs.ModeDir | 0o750), locks: make(map[string]*crashLock)}
}

// inode is a file or a directory.
type inode struct {
	mode    fs.FileMode
	modTime time.Time

	// Files: the current and durable contents. data[:dirty] equals
	// durable[:dirty] (as far as both extend); dirty < 0 means data and
	// durable are identical.
	data, durable []byte
	dirty         int64

	// Directories: the current and the durable entries.
	children, durableChildren map[string]*inode
}

func newDir(mode fs.FileMode) *inode {
	return &inode{
		mode:            mode | fs.ModeDir,
		modTime:         time.Now(),
		children:        make(map[string]*inode),
		durableChildren: make(map[string]*inode),
	}
}

func newFile() *inode {
	return &inode{mode: 0o640, modTime: time.Now(), dirty: -1}
}

func (n *inode) isDir() bool { return n.mode.IsDir() }

// markDirty records that data may differ from durable from off onwards.
func (n *inode) markDirty(off int64) {
	if n.dirty < 0 || off < n.dirty {
		n.dirty = off
	}
}

// resize sets the file's length to size, zero-filling any extension.
func (n *inode) resize(size int64) {
	old := int64(len(n.data))
	if size <= old {
		n.data = n.data[:size]
		return
	}
	n.data = slices.Grow(n.data, int(size-old))[:size]
	clear(n.data[old:])
}

func (n *inode) writeAt(p []byte, off int64) {
	n.markDirty(min(off, int64(len(n.data))))
	if end := off + int64(len(p)); end > int64(len(n.data)) {
		n.resize(end)
	}
	copy(n.data[off:], p)
	n.modTime = time.Now()
}

func (n *inode) truncate(size int64) {
	n.markDirty(min(size, int64(len(n.data))))
	n.resize(size)
	n.modTime = time.Now()
}

// sync makes the current contents durable. Only the part from dirty on is
// copied, so repeatedly syncing an appended file costs O(appended bytes).
func (n *inode) sync() {
	if n.dirty < 0 {
		return
	}
	d := min(n.dirty, int64(len(n.data)), int64(len(n.durable)))
	n.durable = append(n.durable[:d], n.data[d:]...)
	n.dirty = -1
}

// dirOp is a directory operation that is not yet durable.
type dirOp struct {
	kind    OpKind // OpCreate, OpMkdir, OpRemove or OpRename
	dir     *inode
	name    string
	ino     *inode
	newDir  *inode // OpRename only
	newName string // OpRename only
}

func (op *dirOp) touches(dir *inode) bool { return op.dir == dir || op.newDir == dir }

// apply applies op to the directory tables returned by entries, unless it no
// longer applies there (say, a rename whose source is missing). It reports
// whether op was applied.
func (op *dirOp) apply(entries func(dir *inode) map[string]*inode) bool {
	from := entries(op.dir)
	switch op.kind {
	case OpCreate, OpMkdir:
		if _, ok := from[op.name]; ok {
			return false
		}
		from[op.name] = op.ino
	case OpRemove:
		if from[op.name] != op.ino {
			return false
		}
		delete(from, op.name)
	case OpRename:
		if from[op.name] != op.ino {
			return false
		}
		delete(from, op.name)
		entries(op.newDir)[op.newName] = op.ino
	}
	return true
}

func durableEntries(dir *inode) map[string]*inode { return dir.durableChildren }

// SetHook sets a function called before each mutating operation (see
// OpKind) is applied, or removes it if h is nil. The hook runs without the
// FS's lock held, so it may call any method, CrashClone included; a clone
// taken from the hook does not contain the operation being reported. Lock
// is not reported.
func (c *CrashFS) SetHook(h func(op Op)) {
	c.mu.Lock()
	c.hook = h
	c.mu.Unlock()
}

// Count returns the number of mutating operations started so far. Each is
// counted before it is reported to the hook, so inside the hook Count is the
// 1-based number of the operation about to be applied.
func (c *CrashFS) Count() int64 { return c.count.Load() }

// before counts op and reports it to the hook.
func (c *CrashFS) before(op Op) {
	c.count.Add(1)
	c.mu.RLock()
	h := c.hook
	c.mu.RUnlock()
	if h != nil {
		h(op)
	}
}

func pathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// splitPath cleans name and splits it into its components; the root has
// none.
func splitPath(name string) ([]string, error) {
	p := strings.TrimPrefix(path.Clean(name), "/")
	if p == "" || p == "." {
		return nil, nil
	}
	parts := strings.Split(p, "/")
	if slices.Contains(parts, "..") {
		return nil, syscall.EINVAL
	}
	return parts, nil
}

// walk returns the inode at parts. c.mu must be held.
func (c *CrashFS) walk(parts []string) (*inode, error) {
	n := c.root
	for _, p := range parts {
		if !n.isDir() {
			return nil, syscall.ENOTDIR
		}
		child, ok := n.children[p]
		if !ok {
			return nil, syscall.ENOENT
		}
		n = child
	}
	return n, nil
}

func (c *CrashFS) lookup(op, name string) (*inode, error) {
	parts, err := splitPath(name)
	if err == nil {
		var n *inode
		if n, err = c.walk(parts); err == nil {
			return n, nil
		}
	}
	return nil, pathErr(op, name, err)
}

// lookupParent returns the directory that holds name and name's last
// component. c.mu must be held.
func (c *CrashFS) lookupParent(op, name string) (*inode, string, error) {
	parts, err := splitPath(name)
	if err == nil && len(parts) == 0 {
		err = syscall.EINVAL // the root has no parent
	}
	if err != nil {
		return nil, "", pathErr(op, name, err)
	}
	dir, err := c.walk(parts[:len(parts)-1])
	if err == nil && !dir.isDir() {
		err = syscall.ENOTDIR
	}
	if err != nil {
		return nil, "", pathErr(op, name, err)
	}
	return dir, parts[len(parts)-1], nil
}

// Create creates a new, empty file. It fails with an error matching
// fs.ErrExist if name exists.
func (c *CrashFS) Create(name string) (File, error) { return c.createMode(name, 0) }

// CreatePrivate is Create with mode 0600 (owner only).
func (c *CrashFS) CreatePrivate(name string) (File, error) { return c.createMode(name, 0o600) }

// createMode creates name; a mode of 0 keeps the default.
func (c *CrashFS) createMode(name string, mode fs.FileMode) (File, error) {
	c.before(Op{Kind: OpCreate, Name: name})
	c.mu.Lock()
	defer c.mu.Unlock()
	ino, err := c.create(name)
	if err != nil {
		return nil, err
	}
	if mode != 0 {
		ino.mode = mode
	}
	return &crashFile{c: c, ino: ino, name: name, writable: true}, nil
}

// create adds a new file named name. c.mu must be held.
func (c *CrashFS) create(name string) (*inode, error) {
	dir, base, err := c.lookupParent("open", name)
	if err != nil {
		return nil, err
	}
	if _, ok := dir.children[base]; ok {
		return nil, pathErr("open", name, syscall.EEXIST)
	}
	ino := newFile()
	dir.children[base] = ino
	c.pending = append(c.pending, dirOp{kind: OpCreate, dir: dir, name: base, ino: ino})
	return ino, nil
}

// Open opens an existing file read-only.
func (c *CrashFS) Open(name string) (File, error) { return c.open(name, false) }

// OpenReadWrite opens an existing file for reading and writing.
func (c *CrashFS) OpenReadWrite(name string) (File, error) { return c.open(name, true) }

func (c *CrashFS) open(name string, writable bool) (File, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ino, err := c.lookup("open", name)
	if err != nil {
		return nil, err
	}
	if ino.isDir() {
		return nil, pathErr("open", name, syscall.EISDIR)
	}
	return &crashFile{c: c, ino: ino, name: name, writable: writable}, nil
}

// Remove removes a file or an empty directory.
func (c *CrashFS) Remove(name string) error {
	c.before(Op{Kind: OpRemove, Name: name})
	c.mu.Lock()
	defer c.mu.Unlock()
	dir, base, err := c.lookupParent("remove", name)
	if err != nil {
		return err
	}
	ino, ok := dir.children[base]
	if !ok {
		return pathErr("remove", name, syscall.ENOENT)
	}
	if ino.isDir() && len(ino.children) > 0 {
		return pathErr("remove", name, syscall.ENOTEMPTY)
	}
	delete(dir.children, base)
	c.pending = append(c.pending, dirOp{kind: OpRemove, dir: dir, name: base, ino: ino})
	return nil
}

// Rename atomically renames oldname to newname, replacing newname.
func (c *CrashFS) Rename(oldname, newname string) error {
	c.before(Op{Kind: OpRename, Name: oldname, NewName: newname})
	c.mu.Lock()
	defer c.mu.Unlock()
	linkErr := func(err error) error {
		return &fs.PathError{Op: "rename", Path: oldname + " " + newname, Err: err}
	}
	odir, obase, err := c.lookupParent("rename", oldname)
	if err != nil {
		return err
	}
	ndir, nbase, err := c.lookupParent("rename", newname)
	if err != nil {
		return err
	}
	ino, ok := odir.children[obase]
	if !ok {
		return linkErr(syscall.ENOENT)
	}
	if old, ok := ndir.children[nbase]; ok {
		switch {
		case old == ino:
			return nil // POSIX: renaming a file onto itself does nothing
		case old.isDir() && !ino.isDir():
			return linkErr(syscall.EISDIR)
		case !old.isDir() && ino.isDir():
			return linkErr(syscall.ENOTDIR)
		case old.isDir() && len(old.children) > 0:
			return linkErr(syscall.ENOTEMPTY)
		}
	}
	if ino.isDir() && contains(ino, ndir) {
		return linkErr(syscall.EINVAL) // moving a directory into itself
	}
	delete(odir.children, obase)
	ndir.children[nbase] = ino
	c.pending = append(c.pending, dirOp{kind: OpRename, dir: odir, name: obase, ino: ino, newDir: ndir, newName: nbase})
	return nil
}

// contains reports whether the directory tree at dir includes target.
func contains(dir, target *inode) bool {
	if dir == target {
		return true
	}
	for _, child := range dir.children {
		if child.isDir() && contains(child, target) {
			return true
		}
	}
	return false
}

// MkdirAll creates a directory and any missing parents. Each new directory
// is a pending entry of its parent until the parent is synced.
func (c *CrashFS) MkdirAll(dir string, perm fs.FileMode) error {
	c.before(Op{Kind: OpMkdir, Name: dir})
	c.mu.Lock()
	defer c.mu.Unlock()
	parts, err := splitPath(dir)
	if err != nil {
		return pathErr("mkdir", dir, err)
	}
	n := c.root
	for _, p := range parts {
		child, ok := n.children[p]
		if !ok {
			child = newDir(perm.Perm())
			n.children[p] = child
			c.pending = append(c.pending, dirOp{kind: OpMkdir, dir: n, name: p, ino: child})
		} else if !child.isDir() {
			return pathErr("mkdir", dir, syscall.ENOTDIR)
		}
		n = child
	}
	return nil
}

// List returns the sorted names of the entries of dir.
func (c *CrashFS) List(dir string) ([]string, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	d, err := c.lookup("open", dir)
	if err != nil {
		return nil, err
	}
	if !d.isDir() {
		return nil, pathErr("readdirent", dir, syscall.ENOTDIR)
	}
	return slices.Sorted(maps.Keys(d.children)), nil
}

// Stat describes the named file.
func (c *CrashFS) Stat(name string) (fs.FileInfo, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n, err := c.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	return &fileInfo{name: path.Base(path.Clean(name)), size: int64(len(n.data)), mode: n.mode, modTime: n.modTime}, nil
}

// SyncDir makes durable every pending directory operation that touches an
// entry of dir and applies to the durable namespace. An operation that does
// not yet apply (a rename from another directory whose creation is still
// pending, say) stays pending.
func (c *CrashFS) SyncDir(dir string) error {
	c.before(Op{Kind: OpSyncDir, Name: dir})
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := c.lookup("sync", dir)
	if err != nil {
		return err
	}
	if !d.isDir() {
		return pathErr("sync", dir, syscall.ENOTDIR)
	}
	kept := c.pending[:0]
	for _, op := range c.pending {
		if op.touches(d) && op.apply(durableEntries) {
			continue
		}
		kept = append(kept, op)
	}
	clear(c.pending[len(kept):])
	c.pending = kept
	return nil
}

// Lock takes an in-memory exclusive lock on name, creating the file if
// needed (a pending create like any other) and writing owner into it. A
// second Lock of the same path fails with an error wrapping ErrLocked that
// names the owner, until the returned io.Closer is closed. Lock is not
// reported to the hook.
func (c *CrashFS) Lock(name, owner string) (io.Closer, error) {
	parts, err := splitPath(name)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	key := strings.Join(parts, "/")
	c.mu.Lock()
	defer c.mu.Unlock()
	if held, ok := c.locks[key]; ok {
		return nil, lockedError(name, held.owner)
	}
	ino, err := c.lookup("open", name)
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return nil, err
	}
	if ino == nil {
		if ino, err = c.create(name); err != nil {
			return nil, err
		}
	}
	if ino.isDir() {
		return nil, pathErr("open", name, syscall.EISDIR)
	}
	ino.truncate(0)
	ino.writeAt([]byte(owner), 0)
	l := &crashLock{c: c, key: key, owner: owner}
	c.locks[key] = l
	return l, nil
}

// crashLock is a held CrashFS lock.
type crashLock struct {
	c        *CrashFS
	key      string
	owner    string
	released bool // guarded by c.mu
}

// Close releases the lock.
func (l *crashLock) Close() error {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	if l.released {
		return pathErr("close", l.key, fs.ErrClosed)
	}
	l.released = true
	delete(l.c.locks, l.key)
	return nil
}

// CrashClone returns a new, independent CrashFS holding what might survive a
// power loss at this instant, as chosen by opts; c itself is unchanged. In
// the clone everything is durable, no lock is held and there is no hook.
//
// The clone starts from the durable namespace and replays each pending
// directory operation, in order, with probability opts.KeepDirOpProb
// (skipping operations that no longer apply; a rename is all or nothing).
// Each surviving file starts from its durable bytes. Every sector (at
// offsets k*SectorSize) whose current contents differ from the durable ones
// takes the current contents with probability opts.KeepSectorProb. A file
// that grew keeps its durable length, extended to the end of the last kept
// sector beyond it; bytes there from sectors not kept are zero. A file that
// shrank takes the shorter length with probability opts.KeepSectorProb.
func (c *CrashFS) CrashClone(opts CrashOptions) *CrashFS {
	c.mu.RLock()
	defer c.mu.RUnlock()
	rng := rand.New(rand.NewPCG(uint64(opts.Seed), 0x9e3779b97f4a7c15))
	sector := int64(opts.SectorSize)
	if sector <= 0 {
		sector = 512
	}

	// The directory tables after the crash, copied from the durable ones
	// on first use.
	tables := make(map[*inode]map[string]*inode)
	entries := func(dir *inode) map[string]*inode {
		t, ok := tables[dir]
		if !ok {
			t = maps.Clone(dir.durableChildren)
			if t == nil {
				t = make(map[string]*inode)
			}
			tables[dir] = t
		}
		return t
	}
	for i := range c.pending {
		if rng.Float64() < opts.KeepDirOpProb {
			c.pending[i].apply(entries)
		}
	}

	clone := NewCrashFS()
	clone.root.mode, clone.root.modTime = c.root.mode, c.root.modTime
	copied := map[*inode]*inode{c.root: clone.root}
	var copyDir func(from, to *inode)
	copyDir = func(from, to *inode) {
		t := entries(from)
		for _, name := range slices.Sorted(maps.Keys(t)) { // sorted: deterministic
			child := t[name]
			n, seen := copied[child]
			switch {
			case seen && child.isDir():
				continue // a directory linked twice (possible after dropped ops): keep one
			case seen:
				// a hard link to a file already copied
			case child.isDir():
				n = newDir(child.mode)
				n.modTime = child.modTime
				copied[child] = n
				copyDir(child, n)
			default:
				n = newFile()
				n.mode, n.modTime = child.mode, child.modTime
				n.data = crashContents(child, rng, sector, opts.KeepSectorProb)
				n.durable = slices.Clone(n.data)
				copied[child] = n
			}
			to.children[name] = n
			to.durableChildren[name] = n
		}
	}
	copyDir(c.root, clone.root)
	return clone
}

// crashContents returns what might survive of n's contents.
func crashContents(n *inode, rng *rand.Rand, sector int64, keep float64) []byte {
	cur, dur := n.data, n.durable
	lc, ld := int64(len(cur)), int64(len(dur))
	if n.dirty < 0 {
		return slices.Clone(dur)
	}
	out := make([]byte, max(lc, ld))
	copy(out, dur)
	size := ld
	for s := n.dirty / sector * sector; s < lc; s += sector {
		now := cur[s:min(s+sector, lc)]
		was := dur[min(s, ld):min(s+int64(len(now)), ld)]
		if bytes.Equal(now, was) {
			continue
		}
		if rng.Float64() < keep {
			copy(out[s:], now)
			size = max(size, s+int64(len(now)))
		}
	}
	if lc < ld && rng.Float64() < keep {
		size = lc
	}
	return out[:size]
}

// crashFile is a handle on a CrashFS inode.
type crashFile struct {
	c        *CrashFS
	ino      *inode
	name     string
	writable bool
	closed   atomic.Bool
}

// check returns the error for op on f if it is closed or, when write is
// set, read-only.
func (f *crashFile) check(op string, write bool) error {
	if f.closed.Load() {
		return pathErr(op, f.name, fs.ErrClosed)
	}
	if write && !f.writable {
		return pathErr(op, f.name, syscall.EBADF)
	}
	return nil
}

// ReadAt reads from the file's current contents; like os.File it returns
// io.EOF when it reads fewer than len(p) bytes.
func (f *crashFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.check("read", false); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathErr("read", f.name, syscall.EINVAL)
	}
	if len(p) == 0 {
		return 0, nil
	}
	f.c.mu.RLock()
	defer f.c.mu.RUnlock()
	data := f.ino.data
	if off >= int64(len(data)) {
		return 0, io.EOF
	}
	n := copy(p, data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt writes p at off, zero-filling any gap past the end.
func (f *crashFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.check("write", true); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathErr("write", f.name, syscall.EINVAL)
	}
	f.c.before(Op{Kind: OpWrite, Name: f.name, Off: off, Len: len(p)})
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	f.ino.writeAt(p, off)
	return len(p), nil
}

// Close closes the handle; the inode lives on while it is linked.
func (f *crashFile) Close() error {
	if f.closed.Swap(true) {
		return pathErr("close", f.name, fs.ErrClosed)
	}
	return nil
}

// Sync makes the inode's contents and size durable.
func (f *crashFile) Sync() error { return f.sync(OpSync) }

// Datasync makes the inode's contents and size durable.
func (f *crashFile) Datasync() error { return f.sync(OpDatasync) }

func (f *crashFile) sync(kind OpKind) error {
	if err := f.check(kind.String(), false); err != nil {
		return err
	}
	f.c.before(Op{Kind: kind, Name: f.name})
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	f.ino.sync()
	return nil
}

// Truncate sets the file's current size.
func (f *crashFile) Truncate(size int64) error {
	if err := f.check("truncate", true); err != nil {
		return err
	}
	if size < 0 {
		return pathErr("truncate", f.name, syscall.EINVAL)
	}
	f.c.before(Op{Kind: OpTruncate, Name: f.name, Off: size})
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	f.ino.truncate(size)
	return nil
}

// Size returns the file's current size.
func (f *crashFile) Size() (int64, error) {
	if err := f.check("stat", false); err != nil {
		return 0, err
	}
	f.c.mu.RLock()
	defer f.c.mu.RUnlock()
	return int64(len(f.ino.data)), nil
}

// CheckLinked reports whether the file's path still leads to its inode in
// the current namespace (a removal or rename counts at once, durable or
// not).
func (f *crashFile) CheckLinked() error {
	if err := f.check("stat", false); err != nil {
		return err
	}
	f.c.mu.RLock()
	defer f.c.mu.RUnlock()
	parts, err := splitPath(f.name)
	if err != nil {
		return pathErr("stat", f.name, err)
	}
	n, err := f.c.walk(parts)
	switch {
	case errors.Is(err, fs.ErrNotExist) || err == syscall.ENOTDIR:
		return unlinked(f.name, err)
	case err != nil:
		return pathErr("stat", f.name, err)
	case n != f.ino:
		return unlinked(f.name, nil)
	}
	return nil
}

// Name returns the path the file was opened with.
func (f *crashFile) Name() string { return f.name }

// fileInfo is the fs.FileInfo of the in-memory filesystems.
type fileInfo struct {
	name    string
	size    int64
	mode    fs.FileMode
	modTime time.Time
}

// Name returns the file's base name.
func (fi *fileInfo) Name() string { return fi.name }

// Size returns the file's length in bytes.
func (fi *fileInfo) Size() int64 { return fi.size }

// Mode returns the file's mode bits.
func (fi *fileInfo) Mode() fs.FileMode { return fi.mode }

// ModTime returns the time of the last change.
func (fi *fileInfo) ModTime() time.Time { return fi.modTime }

// IsDir reports whether the file is a directory.
func (fi *fileInfo) IsDir() bool { return fi.mode.IsDir() }

// Sys returns nil.
func (fi *fileInfo) Sys() any { return nil }
