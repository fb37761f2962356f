package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/backends/backendtest"
	"github.com/willibrandon/mtlog-audit/backends/s3"
	"github.com/willibrandon/mtlog-audit/backends/s3/s3test"
)

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func newBackend(t testing.TB, cfg s3.Config) *s3.Backend {
	t.Helper()
	b, err := s3.New(ctx(t), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func opts(data []byte) backends.PutOptions {
	return backends.PutOptions{SHA256: sha256.Sum256(data)}
}

// The conformance suite, on a fresh Object Lock bucket per subtest, with a
// prefix and without.
func TestConformance(t *testing.T) {
	for _, prefix := range []string{"", "audit/prod"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			backendtest.Run(t, func(t *testing.T) backends.Backend {
				cfg := s3test.NewBucket(t, true)
				cfg.Prefix = prefix
				cfg.RequireObjectLock = true
				return newBackend(t, cfg)
			})
		})
	}
}

// Without Object Lock the backend says so and refuses retention.
func TestConformanceWithoutObjectLock(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		b := newBackend(t, s3test.NewBucket(t, false))
		if c := b.Capabilities(); c.Retention || c.LegalHold || !c.ServerChecksum {
			t.Fatalf("Capabilities of a bucket without Object Lock = %+v, want no retention, no legal hold, server checksum", c)
		}
		return b
	})
}

// Objects of the bucket outside the prefix are not the backend's.
func TestPrefixIsolation(t *testing.T) {
	cfg := s3test.NewBucket(t, true)
	cfg.Prefix = "one"
	one := newBackend(t, cfg)
	cfg.Prefix = "one-two" // shares "one" as a string prefix
	other := newBackend(t, cfg)
	for _, b := range []*s3.Backend{one, other} {
		if err := b.Put(ctx(t), "k", backends.ReaderAt([]byte(b.Name())), int64(len([]byte(b.Name()))), opts([]byte(b.Name()))); err != nil {
			t.Fatal(err)
		}
	}
	infos, err := one.List(ctx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].Key != "k" {
		t.Fatalf("List of %s = %+v, want only its own key k", one.Name(), infos)
	}
	if got, err := one.Get(ctx(t), "k"); err != nil || string(got) != one.Name() {
		t.Fatalf("Get = %q, %v; want %q", got, err, one.Name())
	}
}

// List follows the service's pages (MinIO answers 1,000 keys a page).
func TestListPages(t *testing.T) {
	if testing.Short() {
		t.Skip("puts 1,005 objects")
	}
	b := newBackend(t, s3test.NewBucket(t, false))
	const n = 1005
	errc := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			data := []byte{byte(i)}
			errc <- b.Put(ctx(t), fmt.Sprintf("p/%04d", i), backends.ReaderAt(data), int64(len(data)), opts(data))
		}()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	infos, err := b.List(ctx(t), "p/")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != n || infos[0].Key != "p/0000" || infos[n-1].Key != "p/1004" {
		t.Fatalf("List returned %d objects (first %v), want %d from p/0000 to p/1004", len(infos), infos[:min(1, len(infos))], n)
	}
}

// Stat reports the SHA-256 the service stored (checksum mode enabled).
func TestStatReportsSHA256(t *testing.T) {
	b := newBackend(t, s3test.NewBucket(t, true))
	data := []byte("segment")
	if err := b.Put(ctx(t), "s", backends.ReaderAt(data), int64(len(data)), opts(data)); err != nil {
		t.Fatal(err)
	}
	info, err := b.Stat(ctx(t), "s")
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(data); !bytes.Equal(info.SHA256, sum[:]) {
		t.Fatalf("Stat SHA256 = %x, want %x", info.SHA256, sum)
	}
	if info.Modified.IsZero() {
		t.Fatal("Stat reports no modification time")
	}
}

// A retention without a mode or without an end is refused before any
// request, and governance retention cannot be shortened.
func TestRetentionRules(t *testing.T) {
	b := newBackend(t, s3test.NewBucket(t, true))
	data := []byte("x")
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	for _, r := range []backends.Retention{
		{Until: until},
		{Mode: backends.RetentionGovernance},
		{Mode: backends.RetentionMode(9), Until: until},
	} {
		o := opts(data)
		o.Retention = r
		if err := b.Put(ctx(t), "bad", backends.ReaderAt(data), int64(len(data)), o); err == nil {
			t.Fatalf("Put with retention %+v succeeded", r)
		}
	}
	o := opts(data)
	o.Retention = backends.Retention{Mode: backends.RetentionGovernance, Until: until, LegalHold: true}
	if err := b.Put(ctx(t), "g", backends.ReaderAt(data), int64(len(data)), o); err != nil {
		t.Fatal(err)
	}
	info, err := b.Stat(ctx(t), "g")
	if err != nil {
		t.Fatal(err)
	}
	if r := info.Retention; r.Mode != backends.RetentionGovernance || !r.Until.Equal(until) || !r.LegalHold {
		t.Fatalf("Stat retention = %+v, want governance until %v with a legal hold", r, until)
	}
	shorter := backends.Retention{Mode: backends.RetentionGovernance, Until: until.Add(-30 * time.Minute), LegalHold: true}
	if err := b.SetRetention(ctx(t), "g", shorter); err == nil {
		t.Fatal("SetRetention shortening a governance retention succeeded without bypass")
	}
}

// The service itself checks the SHA-256s it is sent, the object's
// (x-amz-checksum-sha256) and the signature's (x-amz-content-sha256):
// bytes that do not match either are refused with ErrChecksum and nothing
// is stored.
func TestServerRefusesWrongChecksum(t *testing.T) {
	b := newBackend(t, s3test.NewBucket(t, true))
	data := []byte("the bytes")
	right, wrong := sha256.Sum256(data), sha256.Sum256([]byte("other bytes"))
	for _, c := range []struct {
		name            string
		object, payload [32]byte
	}{
		{"object checksum", wrong, right},
		{"signed payload hash", right, wrong},
		{"both", wrong, wrong},
	} {
		err := s3.PutUnchecked(ctx(t), b, "k", data, backends.PutOptions{SHA256: c.object}, c.payload)
		t.Logf("%s: %v", c.name, err)
		if !errors.Is(err, backends.ErrChecksum) {
			t.Fatalf("Put with a wrong %s past the local check: err = %v, want backends.ErrChecksum from the service", c.name, err)
		}
		if _, err := b.Get(ctx(t), "k"); !errors.Is(err, backends.ErrNotFound) {
			t.Fatalf("after the refused Put (wrong %s), Get: err = %v, want backends.ErrNotFound", c.name, err)
		}
	}
}

func TestOpen(t *testing.T) {
	cfg := s3test.NewBucket(t, true)
	t.Setenv("AWS_ACCESS_KEY_ID", cfg.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", cfg.SecretAccessKey)
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	u := "s3://" + cfg.Bucket + "/audit/prod?endpoint=" + url.QueryEscape(cfg.Endpoint) + "&region=us-east-1&object-lock=required"
	b, err := s3.Open(ctx(t), u)
	if err != nil {
		t.Fatalf("Open(%q): %v", u, err)
	}
	defer b.Close()
	if want := "s3://" + cfg.Bucket + "/audit/prod"; b.Name() != want {
		t.Fatalf("Name() = %q, want %q", b.Name(), want)
	}
	if !b.Capabilities().Retention {
		t.Fatal("an Object Lock bucket opened by URL reports no retention")
	}
	data := []byte("by url")
	if err := b.Put(ctx(t), "k", backends.ReaderAt(data), int64(len(data)), opts(data)); err != nil {
		t.Fatal(err)
	}
	// The object is under the prefix.
	cfg.Prefix = "audit/prod"
	if got, err := newBackend(t, cfg).Get(ctx(t), "k"); err != nil || string(got) != "by url" {
		t.Fatalf("Get through a Config with the same prefix = %q, %v", got, err)
	}
}

func TestParseURL(t *testing.T) {
	good := map[string]s3.Config{
		"s3://b":                     {Bucket: "b"},
		"s3://b/p/q/":                {Bucket: "b", Prefix: "p/q"},
		"s3://b?region=eu-west-1":    {Bucket: "b", Region: "eu-west-1"},
		"s3://b?endpoint=http://h:1": {Bucket: "b", Endpoint: "http://h:1", PathStyle: true},
		"s3://b?endpoint=https://h&path-style=false&object-lock=required&max-attempts=1": {
			Bucket: "b", Endpoint: "https://h", RequireObjectLock: true, MaxAttempts: 1},
	}
	for u, want := range good {
		got, err := s3.ParseURL(u)
		if err != nil || got != want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", u, got, err, want)
		}
	}
	for _, u := range []string{
		"", "b/p", "gs://b", "s3://", "s3:///p", "s3://key:secret@b", "s3://b?colour=red", "s3://b?endpoint=ftp://h",
		"s3://b?endpoint=%zz", "s3://b?path-style=maybe", "s3://b?object-lock=yes", "s3://b?max-attempts=0",
		"s3://b?region=a&region=b", "s3://b:9000", "%",
	} {
		_, err := s3.ParseURL(u)
		if !errors.Is(err, s3.ErrConfig) {
			t.Errorf("ParseURL(%q): err = %v, want s3.ErrConfig", u, err)
			continue
		}
		if !strings.Contains(err.Error(), "the form is s3://") {
			t.Errorf("ParseURL(%q): %v: the error does not show the URL form", u, err)
		}
		if strings.Contains(err.Error(), "secret") && !strings.Contains(err.Error(), "credentials do not go") {
			t.Errorf("ParseURL(%q): %v", u, err)
		}
	}
	if _, err := s3.Open(ctx(t), "s3://b?colour=red"); !errors.Is(err, s3.ErrConfig) {
		t.Fatalf("Open of a bad URL: err = %v, want s3.ErrConfig", err)
	}
}

// checkNamed checks that err matches want and names the backend.
func checkNamed(t *testing.T, err, want error, name string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want one matching %v", err, want)
	}
	if !strings.Contains(err.Error(), name) {
		t.Fatalf("error %q does not name the backend %s", err, name)
	}
}

func TestNewWrongCredentials(t *testing.T) {
	cfg := s3test.NewBucket(t, true)
	cfg.SecretAccessKey = "not-the-key"
	_, err := s3.New(ctx(t), cfg)
	checkNamed(t, err, s3.ErrAccess, "s3://"+cfg.Bucket)
	cfg = s3test.NewBucket(t, true)
	cfg.AccessKeyID = "nobody"
	_, err = s3.New(ctx(t), cfg)
	checkNamed(t, err, s3.ErrAccess, "s3://"+cfg.Bucket)
}

func TestNewMissingBucket(t *testing.T) {
	cfg := s3test.Server(t)
	cfg.Bucket = "mtlog-no-such-bucket"
	_, err := s3.New(ctx(t), cfg)
	checkNamed(t, err, s3.ErrNoBucket, "s3://mtlog-no-such-bucket")
}

func TestNewRequiresObjectLock(t *testing.T) {
	cfg := s3test.NewBucket(t, false)
	cfg.RequireObjectLock = true
	_, err := s3.New(ctx(t), cfg)
	checkNamed(t, err, s3.ErrNoObjectLock, "s3://"+cfg.Bucket)
	if !strings.Contains(err.Error(), "Object Lock enabled") {
		t.Fatalf("error %q does not say what to do", err)
	}
}

func TestNewBadConfig(t *testing.T) {
	for _, cfg := range []s3.Config{
		{},
		{Bucket: "b", Prefix: "../x"},
		{Bucket: "b", AccessKeyID: "only-the-id"},
		{Bucket: "b", MaxAttempts: -1},
	} {
		if _, err := s3.New(ctx(t), cfg); !errors.Is(err, s3.ErrConfig) {
			t.Errorf("New(%+v): err = %v, want s3.ErrConfig", cfg, err)
		}
	}
}

// garbageServer answers every request with what answer writes.
func garbageServer(t *testing.T, answer func(w http.ResponseWriter)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { answer(w) }))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestNewGarbageAnswer(t *testing.T) {
	answers := map[string]func(w http.ResponseWriter){
		"200 text": func(w http.ResponseWriter) { _, _ = w.Write([]byte("hello, this is not S3")) },
		"200 bad xml": func(w http.ResponseWriter) {
			_, _ = w.Write([]byte("<ObjectLockConfiguration><ObjectLockEnabled>Enabled"))
		},
		"500 html": func(w http.ResponseWriter) {
			w.WriteHeader(500)
			_, _ = w.Write([]byte("<html><body>Internal error</body></html>"))
		},
		"403 text": func(w http.ResponseWriter) {
			w.WriteHeader(403)
			_, _ = w.Write([]byte("go away"))
		},
	}
	for name, answer := range answers {
		t.Run(name, func(t *testing.T) {
			cfg := s3.Config{Bucket: "b", Endpoint: garbageServer(t, answer), PathStyle: true,
				AccessKeyID: "k", SecretAccessKey: "s", MaxAttempts: 1}
			b, err := s3.New(ctx(t), cfg)
			if err == nil {
				t.Fatalf("New against a server answering garbage succeeded: %+v", b.Capabilities())
			}
			t.Log(err)
			if !strings.Contains(err.Error(), "s3://b") {
				t.Fatalf("error %q does not name the backend", err)
			}
			switch {
			case strings.HasPrefix(name, "500"):
				if !strings.Contains(err.Error(), "HTTP 500") {
					t.Fatalf("error %q does not say the server failed", err)
				}
			case !errors.Is(err, s3.ErrProtocol) && !errors.Is(err, s3.ErrAccess):
				t.Fatalf("err = %v, want s3.ErrProtocol (or s3.ErrAccess for a bare 403)", err)
			}
		})
	}
	// Not HTTP at all.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02garbage"))
			c.Close()
		}
	}()
	cfg := s3.Config{Bucket: "b", Endpoint: "http://" + ln.Addr().String(), PathStyle: true, AccessKeyID: "k", SecretAccessKey: "s", MaxAttempts: 1}
	_, err = s3.New(ctx(t), cfg)
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "s3://b") {
		t.Fatalf("New against a non-HTTP server: err = %v, want an error naming s3://b", err)
	}
}

// Nothing listens: New fails at once, naming the backend, not after the
// context's deadline.
func TestNewNothingListens(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := s3.Config{Bucket: "b", Endpoint: "http://" + addr, PathStyle: true, AccessKeyID: "k", SecretAccessKey: "s", MaxAttempts: 1}
	_, err = s3.New(ctx(t), cfg)
	if err == nil || !strings.Contains(err.Error(), "s3://b") || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("New with nothing listening: err = %v, want a connection refused naming s3://b", err)
	}
}

// fakeS3 answers the Object Lock probe with "Enabled" and each PUT of an
// object with the next status and error code of puts (the last repeats).
func fakeS3(t *testing.T, puts ...string) (cfg s3.Config, count func() int) {
	t.Helper()
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte(`<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>`))
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		answer := puts[min(n, len(puts)-1)]
		n++
		mu.Unlock()
		status, code, _ := strings.Cut(answer, " ")
		st, _ := strconv.Atoi(status)
		w.WriteHeader(st)
		_, _ = fmt.Fprintf(w, `<Error><Code>%s</Code><Message>fake</Message></Error>`, code)
	}))
	t.Cleanup(srv.Close)
	cfg = s3.Config{Bucket: "b", Endpoint: srv.URL, PathStyle: true, AccessKeyID: "k", SecretAccessKey: "s", MaxAttempts: 1}
	return cfg, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// A conditional write that conflicts with another one in flight (AWS's 409
// ConditionalRequestConflict) is sent again, and then finds the object.
func TestPutRetriesConditionalConflict(t *testing.T) {
	cfg, puts := fakeS3(t, "409 ConditionalRequestConflict", "409 ConditionalRequestConflict", "412 PreconditionFailed")
	b := newBackend(t, cfg)
	data := []byte("x")
	if err := b.Put(ctx(t), "k", backends.ReaderAt(data), int64(len(data)), opts(data)); !errors.Is(err, backends.ErrExists) {
		t.Fatalf("Put after two conflicts and a 412: err = %v, want backends.ErrExists", err)
	}
	if n := puts(); n != 3 {
		t.Fatalf("%d PUT requests, want 3", n)
	}
	// A conflict that does not end is an error, after a bounded number of
	// tries.
	cfg, puts = fakeS3(t, "409 ConditionalRequestConflict")
	b = newBackend(t, cfg)
	err := b.Put(ctx(t), "k", backends.ReaderAt(data), int64(len(data)), opts(data))
	if err == nil || errors.Is(err, backends.ErrExists) || !strings.Contains(err.Error(), "ConditionalRequestConflict") {
		t.Fatalf("Put under endless conflicts: err = %v, want the conflict", err)
	}
	if n := puts(); n != 5 {
		t.Fatalf("%d PUT requests under endless conflicts, want 5", n)
	}
}
