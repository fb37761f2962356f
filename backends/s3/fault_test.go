package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/backends/s3"
	"github.com/willibrandon/mtlog-audit/backends/s3/s3test"
	"github.com/willibrandon/mtlog-audit/internal/faultproxy"
)

// viaProxy returns a fresh Object Lock bucket, a backend that reaches it
// through a fault proxy, and one that reaches it directly (to look at what
// the service holds).
func viaProxy(t *testing.T) (proxied, direct *s3.Backend, p *faultproxy.Proxy) {
	t.Helper()
	cfg := s3test.NewBucket(t, true)
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p, err = faultproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	direct = newBackend(t, cfg)
	cfg.Endpoint = "http://" + p.Addr()
	proxied = newBackend(t, cfg)
	return proxied, direct, p
}

func segment(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*13 + i>>9)
	}
	return b
}

// A connection cut in the middle of an upload, on every attempt, fails the
// Put and leaves no object, not even a partial one: the name is still free
// and a Put after the network heals stores the whole content.
func TestCutMidUploadLeavesNoPartialObject(t *testing.T) {
	b, direct, p := viaProxy(t)
	data := segment(4 << 20)
	for _, cut := range []int64{1, 4 << 10, 1 << 20, 4<<20 - 1} {
		p.Set(faultproxy.Fault{CutUp: cut})
		err := b.Put(ctx(t), "seg", backends.ReaderAt(data), int64(len(data)), opts(data))
		if err == nil {
			t.Fatalf("Put of %d bytes through a cut after %d bytes succeeded", len(data), cut)
		}
		if errors.Is(err, backends.ErrExists) {
			t.Fatalf("cut after %d bytes: %v: an earlier cut upload was stored", cut, err)
		}
		if _, err := direct.Stat(ctx(t), "seg"); !errors.Is(err, backends.ErrNotFound) {
			t.Fatalf("after an upload cut at byte %d, Stat: err = %v, want backends.ErrNotFound (no partial object)", cut, err)
		}
		infos, err := direct.List(ctx(t), "")
		if err != nil || len(infos) != 0 {
			t.Fatalf("after an upload cut at byte %d, List = %+v, %v; want nothing", cut, infos, err)
		}
	}
	p.Set(faultproxy.Fault{})
	if err := b.Put(ctx(t), "seg", backends.ReaderAt(data), int64(len(data)), opts(data)); err != nil {
		t.Fatalf("Put after healing: %v", err)
	}
	if got, err := direct.Get(ctx(t), "seg"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after healing, Get = %d bytes, %v; want the %d bytes put", len(got), err, len(data))
	}
}

// A download cut in the middle is an error, never a short object.
func TestCutMidDownloadIsAnError(t *testing.T) {
	b, direct, p := viaProxy(t)
	data := segment(2 << 20)
	if err := direct.Put(ctx(t), "seg", backends.ReaderAt(data), int64(len(data)), opts(data)); err != nil {
		t.Fatal(err)
	}
	p.Set(faultproxy.Fault{CutDown: 1 << 20})
	got, err := b.Get(ctx(t), "seg")
	if err == nil {
		t.Fatalf("Get through a download cut after 1 MiB returned %d bytes and no error", len(got))
	}
	if !strings.Contains(err.Error(), "s3://") {
		t.Fatalf("error %q does not name the backend", err)
	}
}

// A server that never answers makes Put, Get, List and New fail when their
// context's deadline passes, with the context's error.
func TestBlackholeFailsWithinDeadline(t *testing.T) {
	b, direct, p := viaProxy(t)
	data := segment(1 << 20)
	p.Set(faultproxy.Fault{Blackhole: true})
	short := func() context.Context {
		c, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		t.Cleanup(cancel)
		return c
	}
	if err := b.Put(short(), "seg", backends.ReaderAt(data), int64(len(data)), opts(data)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put through a blackhole: err = %v, want context.DeadlineExceeded", err)
	}
	if _, err := b.Get(short(), "seg"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get through a blackhole: err = %v, want context.DeadlineExceeded", err)
	}
	if _, err := b.List(short(), ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("List through a blackhole: err = %v, want context.DeadlineExceeded", err)
	}
	cfg := s3test.Server(t)
	cfg.Bucket = "any"
	cfg.Endpoint = "http://" + p.Addr()
	_, err := s3.New(short(), cfg)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "s3://any") {
		t.Fatalf("New through a blackhole: err = %v, want context.DeadlineExceeded naming s3://any", err)
	}
	// After healing, the held request may still reach the service (as after
	// a real partition): a new Put either stores the object or finds the
	// one the late request stored, with the same content.
	p.Set(faultproxy.Fault{})
	if err := b.Put(ctx(t), "seg", backends.ReaderAt(data), int64(len(data)), opts(data)); err != nil && !errors.Is(err, backends.ErrExists) {
		t.Fatalf("Put after healing: %v", err)
	}
	if got, err := direct.Get(ctx(t), "seg"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after healing, Get = %d bytes, %v; want the %d bytes put", len(got), err, len(data))
	}
}

func TestResetFailsPut(t *testing.T) {
	b, direct, p := viaProxy(t)
	data := segment(64 << 10)
	p.Set(faultproxy.Fault{Reset: true})
	if err := b.Put(ctx(t), "seg", backends.ReaderAt(data), int64(len(data)), opts(data)); err == nil {
		t.Fatal("Put through resets succeeded")
	}
	if _, err := direct.Stat(ctx(t), "seg"); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("after a reset Put, Stat: err = %v, want backends.ErrNotFound", err)
	}
}

// Slow networks are slow, not wrong: delay and drip deliver intact objects.
func TestSlowNetworkDelivers(t *testing.T) {
	b, _, p := viaProxy(t)
	for i, f := range []faultproxy.Fault{
		{Delay: 5 * time.Millisecond},
		{DripBytes: 16 << 10, DripEvery: time.Millisecond},
	} {
		p.Set(f)
		data := segment(256<<10 + i)
		key := fmt.Sprintf("seg-%d", i)
		if err := b.Put(ctx(t), key, backends.ReaderAt(data), int64(len(data)), opts(data)); err != nil {
			t.Fatalf("Put with %+v: %v", f, err)
		}
		got, err := b.Get(ctx(t), key)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Get with %+v = %d bytes, %v; want the %d bytes put", f, len(got), err, len(data))
		}
		info, err := b.Stat(ctx(t), key)
		if sum := sha256.Sum256(data); err != nil || !bytes.Equal(info.SHA256, sum[:]) {
			t.Fatalf("Stat with %+v = %+v, %v", f, info, err)
		}
	}
}
