// Package faultbackend wraps a backends.Backend to inject the faults of a
// network (delay, cut, blackhole, a cut after the object landed) and of a
// lying service (acks without storing, stale, truncated or bit-flipped
// reads, listings of objects that do not exist), for every object or for
// chosen ones. Tests and the torture suite put it around the filesystem
// driver.
package faultbackend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/willibrandon/mtlog-audit/backends"
)

// Net is how the network between the shipper and the backend behaves.
type Net uint32

// The network faults.
const (
	NetOK        Net = iota // calls go through
	NetDelay                // each call waits Delay (or until its context ends) first
	NetCut                  // each call fails at once with ErrCut
	NetBlackhole            // each call hangs until its context ends
	NetCutAfter             // each call is carried out, then its answer is lost (ErrCut)
)

// Lie is a set of ways the service lies.
type Lie uint32

// The lies.
const (
	LieAckWithoutStoring Lie = 1 << iota // Put says yes and stores nothing
	LieStaleRead                         // Get returns another object of the same prefix
	LieTruncatedRead                     // Get returns the first half
	LieBitFlipRead                       // Get returns the object with one bit flipped
	LiePhantomList                       // List adds objects that do not exist
)

// ErrCut is the error of a call the network cut.
var ErrCut = errors.New("faultbackend: connection cut")

// Backend is a backends.Backend with faults. Its settings may change while
// it is in use.
type Backend struct {
	inner  backends.Backend
	net    atomic.Uint32
	lies   atomic.Uint32
	delay  atomic.Int64
	faults atomic.Int64

	mu       sync.Mutex
	keyLies  map[string]Lie    // LieAbout
	stale    map[string]string // LieStale: key → the key whose bytes Get returns
	phantoms []string          // SetPhantoms
}

var _ backends.Backend = (*Backend)(nil)

// New wraps inner, with no fault.
func New(inner backends.Backend) *Backend { return &Backend{inner: inner} }

// SetNet sets the network's behaviour (and the delay of NetDelay).
func (b *Backend) SetNet(n Net, delay time.Duration) {
	b.delay.Store(int64(delay))
	b.net.Store(uint32(n))
}

// SetLies sets how the service lies (0: it does not).
func (b *Backend) SetLies(l Lie) { b.lies.Store(uint32(l)) }

// LieAbout makes reads of key lie as l says (LieTruncatedRead,
// LieBitFlipRead), beside what SetLies says for every key. Tests use it to
// lie about chosen objects.
func (b *Backend) LieAbout(key string, l Lie) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.keyLies == nil {
		b.keyLies = map[string]Lie{}
	}
	b.keyLies[key] |= l
}

// LieStale makes Get of key return the bytes of the object from (a stale
// or mixed-up answer).
func (b *Backend) LieStale(key, from string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stale == nil {
		b.stale = map[string]string{}
	}
	b.stale[key] = from
}

// SetPhantoms makes List add keys, objects that do not exist, to its
// answers (beside LiePhantomList's).
func (b *Backend) SetPhantoms(keys ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.phantoms = slices.Clone(keys)
}

// Faults counts the calls a fault or a lie changed.
func (b *Backend) Faults() int64 { return b.faults.Load() }

// Inner returns the wrapped backend.
func (b *Backend) Inner() backends.Backend { return b.inner }

// lying reports (and counts) whether the service lies as l says, for every
// key or, in keyLies, for this one.
func (b *Backend) lying(l Lie, keyLies ...Lie) bool {
	for _, kl := range keyLies {
		if kl&l != 0 {
			b.faults.Add(1)
			return true
		}
	}
	if Lie(b.lies.Load())&l != 0 {
		b.faults.Add(1)
		return true
	}
	return false
}

// before applies the network's fault before a call; after, after it.
func (b *Backend) before(ctx context.Context, op string) error {
	switch Net(b.net.Load()) {
	case NetDelay:
		b.faults.Add(1)
		t := time.NewTimer(time.Duration(b.delay.Load()))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %s: %w", b.Name(), op, ctx.Err())
		case <-t.C:
		}
	case NetCut:
		b.faults.Add(1)
		return fmt.Errorf("%s: %s: %w", b.Name(), op, ErrCut)
	case NetBlackhole:
		b.faults.Add(1)
		<-ctx.Done()
		return fmt.Errorf("%s: %s: %w", b.Name(), op, ctx.Err())
	}
	return nil
}

func (b *Backend) after(op string, err error) error {
	if Net(b.net.Load()) == NetCutAfter {
		b.faults.Add(1)
		return fmt.Errorf("%s: %s: %w (after the call: %v)", b.Name(), op, ErrCut, err)
	}
	return err
}

// Name returns the wrapped backend's name.
func (b *Backend) Name() string { return b.inner.Name() }

// Put stores the object, unless the network or a lie says otherwise.
func (b *Backend) Put(ctx context.Context, key string, body io.ReaderAt, size int64, opts backends.PutOptions) error {
	if err := b.before(ctx, "put"); err != nil {
		return err
	}
	if b.lying(LieAckWithoutStoring) {
		return nil
	}
	return b.after("put", b.inner.Put(ctx, key, body, size, opts))
}

// Get returns the object, or what a lie makes of it.
func (b *Backend) Get(ctx context.Context, key string) ([]byte, error) {
	if err := b.before(ctx, "get"); err != nil {
		return nil, err
	}
	b.mu.Lock()
	kl, from := b.keyLies[key], b.stale[key]
	b.mu.Unlock()
	if from != "" {
		b.faults.Add(1)
		key = from
	}
	data, err := b.inner.Get(ctx, key)
	if err != nil {
		return nil, b.after("get", err)
	}
	if from == "" && b.lying(LieStaleRead) {
		if other := b.other(ctx, key); other != nil {
			data = other
		} else if len(data) > 0 {
			data = data[:len(data)-1]
		}
	}
	if len(data) > 1 && b.lying(LieTruncatedRead, kl) {
		data = data[:len(data)/2]
	}
	if len(data) > 0 && b.lying(LieBitFlipRead, kl) {
		data = slices.Clone(data)
		data[len(data)/2] ^= 0x10
	}
	return data, b.after("get", nil)
}

// other returns another object of key's prefix (a stale answer), or nil.
func (b *Backend) other(ctx context.Context, key string) []byte {
	prefix := key
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == '/' {
			prefix = key[:i+1]
			break
		}
	}
	infos, err := b.inner.List(ctx, prefix)
	if err != nil {
		return nil
	}
	for _, info := range infos {
		if info.Key != key {
			if data, err := b.inner.Get(ctx, info.Key); err == nil {
				return data
			}
		}
	}
	return nil
}

// Stat reports the object.
func (b *Backend) Stat(ctx context.Context, key string) (backends.ObjectInfo, error) {
	if err := b.before(ctx, "stat"); err != nil {
		return backends.ObjectInfo{}, err
	}
	info, err := b.inner.Stat(ctx, key)
	return info, b.after("stat", err)
}

// List lists the objects, and phantoms if it lies so.
func (b *Backend) List(ctx context.Context, prefix string) ([]backends.ObjectInfo, error) {
	if err := b.before(ctx, "list"); err != nil {
		return nil, err
	}
	infos, err := b.inner.List(ctx, prefix)
	if err != nil {
		return nil, b.after("list", err)
	}
	b.mu.Lock()
	phantoms := slices.Clone(b.phantoms)
	b.mu.Unlock()
	if b.lying(LiePhantomList) {
		phantoms = append(phantoms, "segments/0000000001-00000000000000000001-00000000000000000009-"+zeros+".wal", "checkpoints/00000000000000000009-"+zeros+".note")
	}
	if len(phantoms) > 0 {
		for _, k := range phantoms {
			if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
				infos = append(infos, backends.ObjectInfo{Key: k, Size: 1})
			}
		}
		slices.SortFunc(infos, func(a, b backends.ObjectInfo) int {
			switch {
			case a.Key < b.Key:
				return -1
			case a.Key > b.Key:
				return 1
			}
			return 0
		})
	}
	return infos, b.after("list", nil)
}

const zeros = "0000000000000000000000000000000000000000000000000000000000000000"

// SetRetention passes through.
func (b *Backend) SetRetention(ctx context.Context, key string, r backends.Retention) error {
	if err := b.before(ctx, "set retention"); err != nil {
		return err
	}
	return b.after("set retention", b.inner.SetRetention(ctx, key, r))
}

// Capabilities are the wrapped backend's.
func (b *Backend) Capabilities() backends.Capabilities { return b.inner.Capabilities() }

// Close closes the wrapped backend.
func (b *Backend) Close() error { return b.inner.Close() }
