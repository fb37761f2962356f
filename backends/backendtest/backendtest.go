// Package backendtest is the conformance suite of backends.Backend: every
// driver runs it against a real server (or directory) in its tests, in the
// manner of testing/slogtest.
package backendtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/backends"
)

// Run runs the conformance suite. newBackend returns a backend that holds no
// object (a fresh prefix or directory) for each subtest; it closes it with
// t.Cleanup if it needs closing.
func Run(t *testing.T, newBackend func(t *testing.T) backends.Backend) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, b backends.Backend)
	}{
		{"PutGet", testPutGet},
		{"Empty", testEmpty},
		{"PutIfAbsent", testPutIfAbsent},
		{"ConcurrentPut", testConcurrentPut},
		{"Checksum", testChecksum},
		{"NotFound", testNotFound},
		{"List", testList},
		{"Large", testLarge},
		{"Stream", testStream},
		{"ShortBody", testShortBody},
		{"InvalidKey", testInvalidKey},
		{"Canceled", testCanceled},
		{"Retention", testRetention},
		{"LegalHold", testLegalHold},
		{"Name", testName},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newBackend(t)) })
	}
}

func opts(data []byte) backends.PutOptions {
	return backends.PutOptions{SHA256: sha256.Sum256(data)}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func mustPut(t *testing.T, b backends.Backend, key string, data []byte) {
	t.Helper()
	if err := b.Put(ctx(t), key, backends.ReaderAt(data), int64(len(data)), opts(data)); err != nil {
		t.Fatalf("%s: Put(%q): %v", b.Name(), key, err)
	}
}

func mustGet(t *testing.T, b backends.Backend, key string, want []byte) {
	t.Helper()
	got, err := b.Get(ctx(t), key)
	if err != nil {
		t.Fatalf("%s: Get(%q): %v", b.Name(), key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: Get(%q) = %d bytes, want the %d bytes put (first differing content)", b.Name(), key, len(got), len(want))
	}
}

// The key shape the shipper uses, with slashes and dots.
const segKey = "segments/00000000000000000001-00000000000000000100-0a1b2c3d.wal"

func testPutGet(t *testing.T, b backends.Backend) {
	data := []byte("sealed segment bytes\x00\x01\x02")
	mustPut(t, b, segKey, data)
	mustGet(t, b, segKey, data)
	info, err := b.Stat(ctx(t), segKey)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if info.Key != segKey || info.Size != int64(len(data)) {
		t.Fatalf("Stat = {Key %q, Size %d}, want {%q, %d}", info.Key, info.Size, segKey, len(data))
	}
	if sum := sha256.Sum256(data); info.SHA256 != nil && !bytes.Equal(info.SHA256, sum[:]) {
		t.Fatalf("Stat reports SHA-256 %x, want %x", info.SHA256, sum)
	}
}

// pieces is a body that is not a byte slice (so that the driver reads it
// piece by piece through ReadAt, as the shipper's segment files are read),
// and counts what was read beyond the size asked for.
type pieces struct {
	data []byte
	size int64
	past sync.Map // offsets of reads that ended beyond size
}

func (p *pieces) ReadAt(b []byte, off int64) (int, error) {
	if off+int64(len(b)) > p.size {
		p.past.Store(off, true)
	}
	return bytes.NewReader(p.data).ReadAt(b, off)
}

// testStream puts the first 200 KiB + 7 bytes of a longer body that is read
// through ReadAt (a sealed segment followed by later records): the object is
// exactly that prefix, and the driver reads nothing past it.
func testStream(t *testing.T, b backends.Backend) {
	data := make([]byte, 300<<10)
	for i := range data {
		data[i] = byte(i*7 + i>>9)
	}
	want := data[:200<<10+7]
	body := &pieces{data: data, size: int64(len(want))}
	if err := b.Put(ctx(t), segKey, body, int64(len(want)), opts(want)); err != nil {
		t.Fatalf("%s: Put of %d bytes read through ReadAt: %v", b.Name(), len(want), err)
	}
	body.past.Range(func(off, _ any) bool {
		t.Errorf("%s: Put read past the %d bytes asked for (a read at offset %d)", b.Name(), len(want), off)
		return false
	})
	mustGet(t, b, segKey, want)
}

// testShortBody: a body that ends before the size given (a file cut short
// under the shipper) stores nothing.
func testShortBody(t *testing.T, b backends.Backend) {
	data := bytes.Repeat([]byte("segment "), 20<<10) // 160 KiB
	full := append(slices.Clone(data), "and the rest"...)
	err := b.Put(ctx(t), "short", backends.ReaderAt(data), int64(len(full)), opts(full))
	if err == nil {
		t.Fatalf("%s: Put of a %d-byte body as %d bytes succeeded", b.Name(), len(data), len(full))
	}
	if _, err := b.Get(ctx(t), "short"); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("%s: after a Put whose body was short, Get = %v, want ErrNotFound", b.Name(), err)
	}
}

func testEmpty(t *testing.T, b backends.Backend) {
	mustPut(t, b, "empty", nil)
	mustGet(t, b, "empty", nil)
}

func testPutIfAbsent(t *testing.T, b backends.Backend) {
	first, second := []byte("first content"), []byte("other content, longer")
	mustPut(t, b, segKey, first)
	err := b.Put(ctx(t), segKey, backends.ReaderAt(second), int64(len(second)), opts(second))
	if !errors.Is(err, backends.ErrExists) {
		t.Fatalf("second Put of the same key: err = %v, want one matching backends.ErrExists", err)
	}
	mustGet(t, b, segKey, first)
	// The same content again is refused too: the caller compares.
	if err := b.Put(ctx(t), segKey, backends.ReaderAt(first), int64(len(first)), opts(first)); !errors.Is(err, backends.ErrExists) {
		t.Fatalf("Put of identical content: err = %v, want backends.ErrExists", err)
	}
}

func testConcurrentPut(t *testing.T, b backends.Backend) {
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := bytes.Repeat([]byte{byte('a' + i)}, 1000+i)
			errs[i] = b.Put(ctx(t), "race", backends.ReaderAt(data), int64(len(data)), opts(data))
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("Put %d and Put %d of the same key both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, backends.ErrExists):
			t.Fatalf("Put %d: %v, want nil or backends.ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no concurrent Put succeeded")
	}
	mustGet(t, b, "race", bytes.Repeat([]byte{byte('a' + winner)}, 1000+winner))
}

func testChecksum(t *testing.T, b backends.Backend) {
	data := []byte("the bytes")
	bad := opts([]byte("other bytes"))
	err := b.Put(ctx(t), "sum", backends.ReaderAt(data), int64(len(data)), bad)
	if !errors.Is(err, backends.ErrChecksum) {
		t.Fatalf("Put with a wrong SHA-256: err = %v, want backends.ErrChecksum", err)
	}
	if _, err := b.Get(ctx(t), "sum"); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("after a refused Put, Get: err = %v, want backends.ErrNotFound (nothing stored)", err)
	}
	mustPut(t, b, "sum", data) // the name is still free
}

func testNotFound(t *testing.T, b backends.Backend) {
	if _, err := b.Get(ctx(t), "missing/object"); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("Get of a missing object: err = %v, want backends.ErrNotFound", err)
	}
	if _, err := b.Stat(ctx(t), "missing/object"); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("Stat of a missing object: err = %v, want backends.ErrNotFound", err)
	}
	if err := b.SetRetention(ctx(t), "missing/object", backends.Retention{LegalHold: true}); err == nil {
		t.Fatal("SetRetention of a missing object succeeded")
	}
}

func testList(t *testing.T, b backends.Backend) {
	keys := []string{"b/1", "a/2", "a/1", "a/10/x", "ab"}
	for _, k := range keys {
		mustPut(t, b, k, []byte(k))
	}
	check := func(prefix string, want []string) {
		t.Helper()
		infos, err := b.List(ctx(t), prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		var got []string
		for _, in := range infos {
			got = append(got, in.Key)
			if in.Size != int64(len(in.Key)) {
				t.Fatalf("List(%q): %s has size %d, want %d", prefix, in.Key, in.Size, len(in.Key))
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("List(%q) = %q, want %q", prefix, got, want)
		}
	}
	check("a/", []string{"a/1", "a/10/x", "a/2"})
	check("a", []string{"a/1", "a/10/x", "a/2", "ab"})
	check("", []string{"a/1", "a/10/x", "a/2", "ab", "b/1"})
	check("c/", nil)
}

func testLarge(t *testing.T, b backends.Backend) {
	data := make([]byte, 16<<20+123)
	for i := range data {
		data[i] = byte(i*7 + i>>11)
	}
	mustPut(t, b, "large", data)
	mustGet(t, b, "large", data)
}

func testInvalidKey(t *testing.T, b backends.Backend) {
	for _, k := range []string{"", "../escape", "a/../../b", "/abs", "a//b", "a/", "sp ace", "a\x00b"} {
		data := []byte("x")
		if err := b.Put(ctx(t), k, backends.ReaderAt(data), int64(len(data)), opts(data)); !errors.Is(err, backends.ErrInvalidKey) {
			t.Fatalf("Put(%q): err = %v, want backends.ErrInvalidKey", k, err)
		}
		if _, err := b.Get(ctx(t), k); !errors.Is(err, backends.ErrInvalidKey) {
			t.Fatalf("Get(%q): err = %v, want backends.ErrInvalidKey", k, err)
		}
	}
}

func testCanceled(t *testing.T, b backends.Backend) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	data := []byte("x")
	if err := b.Put(c, "canceled", backends.ReaderAt(data), int64(len(data)), opts(data)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a canceled context: err = %v, want context.Canceled", err)
	}
	if _, err := b.Get(ctx(t), "canceled"); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("after a canceled Put, Get: err = %v, want backends.ErrNotFound", err)
	}
}

func testRetention(t *testing.T, b backends.Backend) {
	data := []byte("retained")
	until := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	r := backends.Retention{Mode: backends.RetentionGovernance, Until: until}
	if !b.Capabilities().Retention {
		mustPut(t, b, "r", data)
		if err := b.SetRetention(ctx(t), "r", r); !errors.Is(err, backends.ErrUnsupported) {
			t.Fatalf("SetRetention on a backend without retention: err = %v, want backends.ErrUnsupported", err)
		}
		o := opts(data)
		o.Retention = r
		if err := b.Put(ctx(t), "r2", backends.ReaderAt(data), int64(len(data)), o); !errors.Is(err, backends.ErrUnsupported) {
			t.Fatalf("Put with a retention on a backend without retention: err = %v, want backends.ErrUnsupported", err)
		}
		return
	}
	o := opts(data)
	o.Retention = r
	if err := b.Put(ctx(t), "r", backends.ReaderAt(data), int64(len(data)), o); err != nil {
		t.Fatalf("Put with retention: %v", err)
	}
	checkRetention(t, b, "r", r)
	later := backends.Retention{Mode: backends.RetentionGovernance, Until: until.Add(time.Hour)}
	if err := b.SetRetention(ctx(t), "r", later); err != nil {
		t.Fatalf("SetRetention extending: %v", err)
	}
	checkRetention(t, b, "r", later)
}

func checkRetention(t *testing.T, b backends.Backend, key string, want backends.Retention) {
	t.Helper()
	info, err := b.Stat(ctx(t), key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	got := info.Retention
	if got.Mode != want.Mode || got.Until.Sub(want.Until).Abs() > time.Second || got.LegalHold != want.LegalHold {
		t.Fatalf("Stat(%q).Retention = %+v, want %+v", key, got, want)
	}
}

func testLegalHold(t *testing.T, b backends.Backend) {
	data := []byte("held")
	mustPut(t, b, "h", data)
	if !b.Capabilities().LegalHold {
		if err := b.SetRetention(ctx(t), "h", backends.Retention{LegalHold: true}); !errors.Is(err, backends.ErrUnsupported) {
			t.Fatalf("legal hold on a backend without it: err = %v, want backends.ErrUnsupported", err)
		}
		return
	}
	if err := b.SetRetention(ctx(t), "h", backends.Retention{LegalHold: true}); err != nil {
		t.Fatalf("set legal hold: %v", err)
	}
	info, err := b.Stat(ctx(t), "h")
	if err != nil || !info.Retention.LegalHold {
		t.Fatalf("after setting a legal hold, Stat = %+v, %v; want LegalHold true", info.Retention, err)
	}
	if err := b.SetRetention(ctx(t), "h", backends.Retention{}); err != nil {
		t.Fatalf("clear legal hold: %v", err)
	}
	info, err = b.Stat(ctx(t), "h")
	if err != nil || info.Retention.LegalHold {
		t.Fatalf("after clearing the legal hold, Stat = %+v, %v; want LegalHold false", info.Retention, err)
	}
}

func testName(t *testing.T, b backends.Backend) {
	n := b.Name()
	if n == "" {
		t.Fatal("Name() is empty")
	}
	for _, secret := range []string{"secret", "password", "AccountKey", "minioadmin:"} {
		if bytes.Contains([]byte(n), []byte(secret)) {
			t.Fatalf("Name() = %q contains %q: it must carry no credentials", n, secret)
		}
	}
	_ = fmt.Sprint(b.Capabilities())
}
