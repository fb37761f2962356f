// Package fs is the filesystem driver of backends.Backend: objects are
// files under a root directory, typically on a second disk or a mounted
// network share (NFS, SMB).
//
// Put writes the object to a temporary file under the root, syncs it,
// links it to its name with link(2), which fails if the name exists (so an
// object is never overwritten, never seen half-written, and two writers of
// one key cannot both win), and syncs the directories. The driver works on
// the operating system's files directly rather than through vfs: vfs has no
// hard link, the one atomic put-if-absent a filesystem offers.
//
// A filesystem enforces no retention: Capabilities reports none, and a
// retention asked of Put or SetRetention fails with backends.ErrUnsupported.
// Protect the directory by other means (a WORM share, a separate account).
package fs

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/willibrandon/mtlog-audit/backends"
)

// tmpDir holds objects being written. '#' is not allowed in keys
// (backends.CheckKey), so no key names it or anything in it.
const tmpDir = "#incoming"

// Backend is a directory of objects. It is safe for concurrent use, also by
// several processes.
type Backend struct {
	root string
}

var _ backends.Backend = (*Backend)(nil)

// New returns the backend of the directory root, which must exist (a
// missing mount point must not be mistaken for an empty store).
func New(root string) (*Backend, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("file://%s: %w", root, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("file://%s: %w (create the directory, or mount the share, first)", abs, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("file://%s: not a directory", abs)
	}
	if err := os.MkdirAll(filepath.Join(abs, tmpDir), 0o700); err != nil {
		return nil, fmt.Errorf("file://%s: %w", abs, err)
	}
	return &Backend{root: abs}, nil
}

// Open returns the backend of a "file:///abs/path" URL.
func Open(rawURL string) (*Backend, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%q: %w (write file:///absolute/path)", rawURL, err)
	}
	if u.Scheme != "file" || (u.Host != "" && u.Host != "localhost") || u.Path == "" {
		return nil, fmt.Errorf("%q: not a file URL (write file:///absolute/path)", rawURL)
	}
	return New(u.Path)
}

// Name returns "file://" and the root directory.
func (b *Backend) Name() string { return "file://" + b.root }

// Capabilities reports no retention, no legal hold and no server checksum.
func (b *Backend) Capabilities() backends.Capabilities { return backends.Capabilities{} }

// Close does nothing.
func (b *Backend) Close() error { return nil }

func (b *Backend) errorf(op, key string, err error) error {
	return fmt.Errorf("%s: %s %s: %w", b.Name(), op, key, err)
}

func (b *Backend) path(key string) string { return filepath.Join(b.root, filepath.FromSlash(key)) }

// Put stores the size bytes of body as key if no object of that name
// exists: it copies them into a temporary file, hashing them on the way,
// and links the file to its name only if they match opts.SHA256.
func (b *Backend) Put(ctx context.Context, key string, body io.ReaderAt, size int64, opts backends.PutOptions) error {
	if err := backends.CheckKey(key); err != nil {
		return b.errorf("put", key, err)
	}
	if !opts.Retention.IsZero() {
		return b.errorf("put", key, fmt.Errorf("%w: a filesystem keeps no retention or legal hold", backends.ErrUnsupported))
	}
	if err := ctx.Err(); err != nil {
		return b.errorf("put", key, err)
	}
	final := b.path(key)
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return b.errorf("put", key, err)
	}
	var rnd [12]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return b.errorf("put", key, err)
	}
	tmp := filepath.Join(b.root, tmpDir, hex.EncodeToString(rnd[:]))
	defer os.Remove(tmp)
	if err := writeSynced(tmp, body, size, opts.SHA256); err != nil {
		return b.errorf("put", key, err)
	}
	if err := ctx.Err(); err != nil {
		return b.errorf("put", key, err)
	}
	if err := os.Link(tmp, final); err != nil {
		if errors.Is(err, iofs.ErrExist) {
			return b.errorf("put", key, backends.ErrExists)
		}
		return b.errorf("put", key, err)
	}
	// The new name, and every directory made for it, must be durable.
	for dir := filepath.Dir(final); ; dir = filepath.Dir(dir) {
		if err := syncDir(dir); err != nil {
			return b.errorf("put", key, err)
		}
		if dir == b.root {
			return nil
		}
	}
}

// writeSynced writes the size bytes of body into the new file name and
// syncs it, or fails with ErrChecksum before the sync when they do not
// hash to sum.
func writeSynced(name string, body io.ReaderAt, size int64, sum [32]byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	h := sha256.New()
	if err := backends.Copy(f, body, size, h); err != nil {
		f.Close()
		return err
	}
	if !bytes.Equal(h.Sum(nil), sum[:]) {
		f.Close()
		return backends.ErrChecksum
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Get returns the content of key.
func (b *Backend) Get(ctx context.Context, key string) ([]byte, error) {
	if err := backends.CheckKey(key); err != nil {
		return nil, b.errorf("get", key, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, b.errorf("get", key, err)
	}
	data, err := os.ReadFile(b.path(key))
	if err != nil {
		return nil, b.errorf("get", key, notFound(err))
	}
	return data, nil
}

func notFound(err error) error {
	if errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("%w (%w)", backends.ErrNotFound, err)
	}
	return err
}

// Stat reports the size and modification time of key (no SHA-256: a
// filesystem keeps none; read the object to check it).
func (b *Backend) Stat(ctx context.Context, key string) (backends.ObjectInfo, error) {
	if err := backends.CheckKey(key); err != nil {
		return backends.ObjectInfo{}, b.errorf("stat", key, err)
	}
	if err := ctx.Err(); err != nil {
		return backends.ObjectInfo{}, b.errorf("stat", key, err)
	}
	st, err := os.Stat(b.path(key))
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%w: not a regular file", backends.ErrNotFound)
	}
	if err != nil {
		return backends.ObjectInfo{}, b.errorf("stat", key, notFound(err))
	}
	return backends.ObjectInfo{Key: key, Size: st.Size(), Modified: st.ModTime()}, nil
}

// List returns the objects whose keys begin with prefix, in key order.
// Files whose names are not valid keys are not objects and are skipped.
func (b *Backend) List(ctx context.Context, prefix string) ([]backends.ObjectInfo, error) {
	var out []backends.ObjectInfo
	err := filepath.WalkDir(b.root, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(b.root, p)
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if p != b.root && (backends.CheckKey(key) != nil || !couldMatch(key+"/", prefix)) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || backends.CheckKey(key) != nil || !strings.HasPrefix(key, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, backends.ObjectInfo{Key: key, Size: info.Size(), Modified: info.ModTime()})
		return nil
	})
	if err != nil {
		return nil, b.errorf("list", prefix, err)
	}
	slices.SortFunc(out, func(x, y backends.ObjectInfo) int { return strings.Compare(x.Key, y.Key) })
	return out, nil
}

// couldMatch reports whether a key under directory dir (ending in '/')
// can begin with prefix.
func couldMatch(dir, prefix string) bool {
	return strings.HasPrefix(dir, prefix) || strings.HasPrefix(prefix, dir)
}

// SetRetention fails with backends.ErrUnsupported (or ErrNotFound for a
// missing object).
func (b *Backend) SetRetention(ctx context.Context, key string, r backends.Retention) error {
	if _, err := b.Stat(ctx, key); err != nil {
		return err
	}
	return b.errorf("set retention", key, fmt.Errorf("%w: a filesystem keeps no retention or legal hold", backends.ErrUnsupported))
}
