package gcs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"

	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/backends/backendtest"
	"github.com/willibrandon/mtlog-audit/internal/testservers"
)

// fakeGCS returns the Config of a fresh bucket on the fake-gcs-server that
// scripts/servers.sh started.
func fakeGCS(t *testing.T) Config {
	t.Helper()
	endpoint := testservers.Require(t, "MTLOG_AUDIT_FAKEGCS_ENDPOINT")[0]
	cfg := Config{Endpoint: endpoint, Bucket: "t" + random(), MaxAttempts: 1}
	if err := rawClient(t, cfg).Bucket(cfg.Bucket).Create(t.Context(), "test", nil); err != nil {
		t.Fatalf("creating bucket %s on fake-gcs-server: %v", cfg.Bucket, err)
	}
	return cfg
}

func random() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// rawClient is the SDK's client, for what the driver would never do.
func rawClient(t *testing.T, cfg Config) *storage.Client {
	t.Helper()
	c, err := storage.NewClient(t.Context(), option.WithEndpoint(cfg.Endpoint+"/storage/v1/"),
		option.WithoutAuthentication(), storage.WithJSONReads())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newBackend(t *testing.T, cfg Config) *Backend {
	t.Helper()
	b, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	cfg := fakeGCS(t)
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		c := cfg
		c.Prefix = "conf/" + random()
		return newBackend(t, c)
	})
}

// fake-gcs-server enforces no retention and has no holds: the driver must
// say so rather than claim a protection that nothing enforces.
func TestEmulatorHasNoRetention(t *testing.T) {
	cfg := fakeGCS(t)
	b := newBackend(t, cfg)
	if got, want := b.Capabilities(), (backends.Capabilities{ServerChecksum: true}); got != want {
		t.Fatalf("Capabilities on fake-gcs-server = %+v, want %+v", got, want)
	}
	cfg.RequireRetention = true
	_, err := New(t.Context(), cfg)
	if !errors.Is(err, backends.ErrUnsupported) || !strings.Contains(err.Error(), "retention") {
		t.Fatalf("New with RequireRetention on fake-gcs-server: err = %v, want ErrUnsupported naming retention", err)
	}
}

// The service itself checks the bytes: a CRC32C that does not match what
// arrives is refused and nothing is stored.
func TestServiceChecksCRC32C(t *testing.T) {
	b := newBackend(t, fakeGCS(t))
	data := []byte("segment bytes")
	wrong := crc32.Checksum([]byte("other bytes"), castagnoli)
	err := b.put(t.Context(), "k", backends.ReaderAt(data), int64(len(data)), backends.PutOptions{SHA256: sha256.Sum256(data)}, wrong)
	if !errors.Is(err, backends.ErrChecksum) {
		t.Fatalf("put with a wrong CRC32C: err = %v, want ErrChecksum from the service", err)
	}
	if _, err := b.Get(t.Context(), "k"); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("after the refused put, Get: err = %v, want ErrNotFound", err)
	}
}

// An object altered or written behind the driver's back (other bytes than
// its sha256 metadata says, or no metadata) is refused by Get.
func TestGetRefusesAlteredObject(t *testing.T) {
	cfg := fakeGCS(t)
	b := newBackend(t, cfg)
	raw := rawClient(t, cfg).Bucket(cfg.Bucket)
	otherSum := sha256.Sum256([]byte("what was shipped"))
	cases := map[string]map[string]string{
		"wrongsum": {"sha256": hex.EncodeToString(otherSum[:])},
		"nosum":    nil,
		"badsum":   {"sha256": "not hex"},
	}
	for key, md := range cases {
		w := raw.Object(key).NewWriter(t.Context())
		w.Metadata = md
		w.Write([]byte("forged content"))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Get(t.Context(), key); !errors.Is(err, backends.ErrChecksum) || !strings.Contains(err.Error(), b.Name()) {
			t.Errorf("Get of object %q: err = %v, want ErrChecksum naming %s", key, err, b.Name())
		}
	}
}

func TestNewBadInput(t *testing.T) {
	cfg := fakeGCS(t)
	check := func(name string, c Config, want ...string) {
		t.Helper()
		b, err := New(t.Context(), c)
		if err == nil {
			b.Close()
			t.Errorf("%s: New succeeded", name)
			return
		}
		t.Logf("%s: %v", name, err)
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: New: %v; want it to say %q", name, err, w)
			}
		}
	}
	missing := cfg
	missing.Bucket = "nosuch" + random()
	check("missing bucket", missing, "gs://"+missing.Bucket, "does not exist")
	check("bad bucket name", Config{Bucket: "Bad Name", Endpoint: cfg.Endpoint}, "bucket name")
	badPrefix := cfg
	badPrefix.Prefix = "a//b"
	check("bad prefix", badPrefix, "prefix")

	// A server that refuses the credentials, as Google does.
	denied := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":{"code":401,"message":"Invalid Credentials","errors":[{"reason":"authError"}]}}`))
	}))
	t.Cleanup(denied.Close)
	d := cfg
	d.Endpoint = denied.URL
	check("wrong credentials", d, "gs://"+cfg.Bucket, "refused the credentials")

	// A server that answers 200 with something that is not JSON.
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html>hello</html>"))
	}))
	t.Cleanup(garbage.Close)
	g := cfg
	g.Endpoint = garbage.URL
	check("garbage answer", g, "gs://"+cfg.Bucket, "check the endpoint")

	// A server that answers 200 with JSON of something else.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"hello":"world"}`))
	}))
	t.Cleanup(other.Close)
	g.Endpoint = other.URL
	check("other JSON", g, "gs://"+cfg.Bucket, "does not answer as Cloud Storage")

	// A TCP server that speaks no HTTP at all.
	g.Endpoint = "http://" + testservers.NotHTTP(t)
	check("not HTTP", g, "gs://"+cfg.Bucket, "check the endpoint")
}

// A server that accepts the connection and never answers holds New only
// as long as its context.
func TestNewBlackhole(t *testing.T) {
	cfg := fakeGCS(t)
	cfg.Endpoint = "http://" + testservers.Blackhole(t)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := New(ctx, cfg); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("New against a server that never answers: err = %v, want context.DeadlineExceeded", err)
	}
}

func TestNewCanceled(t *testing.T) {
	cfg := fakeGCS(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := New(ctx, cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("New with a canceled context: err = %v, want context.Canceled", err)
	}
}

func TestOpen(t *testing.T) {
	cfg := fakeGCS(t)
	t.Setenv("STORAGE_EMULATOR_HOST", "")
	b, err := Open(t.Context(), "gs://"+cfg.Bucket+"/some/prefix?endpoint="+cfg.Endpoint)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	if want := "gs://" + cfg.Bucket + "/some/prefix"; b.Name() != want {
		t.Fatalf("Name() = %q, want %q", b.Name(), want)
	}
	data := []byte("x")
	if err := b.Put(t.Context(), "k", backends.ReaderAt(data), int64(len(data)), backends.PutOptions{SHA256: sha256.Sum256(data)}); err != nil {
		t.Fatal(err)
	}
	if _, err := rawClient(t, cfg).Bucket(cfg.Bucket).Object("some/prefix/k").Attrs(t.Context()); err != nil {
		t.Fatalf("the object is not at some/prefix/k: %v", err)
	}

	// The same through STORAGE_EMULATOR_HOST, as the SDK reads it.
	t.Setenv("STORAGE_EMULATOR_HOST", cfg.Endpoint)
	b2, err := Open(t.Context(), "gs://"+cfg.Bucket+"/some/prefix")
	if err != nil {
		t.Fatalf("Open with STORAGE_EMULATOR_HOST: %v", err)
	}
	t.Cleanup(func() { b2.Close() })
	if _, err := b2.Get(t.Context(), "k"); err != nil {
		t.Fatalf("Get through STORAGE_EMULATOR_HOST: %v", err)
	}
	if b2.Capabilities().LegalHold {
		t.Fatal("with STORAGE_EMULATOR_HOST the driver claims legal hold")
	}
}

func TestParseURL(t *testing.T) {
	good, err := parseURL("gs://bucket/a/b/?endpoint=http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if good.Bucket != "bucket" || good.Prefix != "a/b" || good.Endpoint != "http://127.0.0.1:1" {
		t.Fatalf("parseURL = %+v", good)
	}
	bad := []struct{ url, want string }{
		{"gs://", "not of the form"},
		{"s3://bucket", "not of the form"},
		{"gs://user:pw@bucket", "not of the form"},
		{"gs://bucket?endpoint=ftp://x", "not an http or https URL"},
		{"gs://bucket?region=x", `"region" is not known`},
		{"gs://bucket/%zz", "does not parse"},
	}
	for _, tc := range bad {
		if _, err := parseURL(tc.url); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseURL(%q): err = %v, want one saying %q", tc.url, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("parseURL(%q): the error shows the password: %v", tc.url, err)
		}
	}
}

// CreateBucket on fake-gcs-server: object retention is refused before
// anything is asked (the emulator would create the bucket and silently drop
// it: ObjectRetentionMode stays empty), a bucket without it is created, and
// creating it again is no error; against Google a project is needed.
func TestCreateBucket(t *testing.T) {
	endpoint := fakeGCS(t).Endpoint
	cfg := Config{Endpoint: endpoint, Bucket: "c" + random(), Prefix: "host-1", MaxAttempts: 1}
	name := "gs://" + cfg.Bucket + "/host-1"
	if _, err := New(t.Context(), cfg); !errors.Is(err, ErrNoBucket) || !strings.Contains(err.Error(), "backend init") {
		t.Fatalf("New on a missing bucket: %v, want ErrNoBucket saying how to create it", err)
	}
	strict := cfg
	strict.RequireRetention = true
	err := CreateBucket(t.Context(), strict, "")
	if !errors.Is(err, backends.ErrUnsupported) || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "--mutable") {
		t.Fatalf("CreateBucket requiring retention on the emulator: %v, want ErrUnsupported naming %s", err, name)
	}
	if _, err := New(t.Context(), cfg); !errors.Is(err, ErrNoBucket) {
		t.Fatalf("a bucket was created: New = %v", err)
	}
	for range 2 {
		if err := CreateBucket(t.Context(), cfg, ""); err != nil {
			t.Fatalf("CreateBucket: %v", err)
		}
	}
	b := newBackend(t, cfg)
	if b.Name() != name || b.Capabilities().Retention {
		t.Fatalf("the created bucket: %s, %+v", b.Name(), b.Capabilities())
	}
	google := Config{Bucket: "c" + random(), ClientOptions: []option.ClientOption{option.WithoutAuthentication()}}
	if err := CreateBucket(t.Context(), google, ""); err == nil || !strings.Contains(err.Error(), "project") || !strings.Contains(err.Error(), google.Bucket) {
		t.Fatalf("CreateBucket on Google without a project: %v, want an error naming the bucket and asking for the project", err)
	}
}
