package azure

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/backends/backendtest"
	"github.com/willibrandon/mtlog-audit/internal/testservers"
)

// azurite returns the Config of a fresh container on the Azurite that
// scripts/servers.sh started.
func azurite(t *testing.T) Config {
	t.Helper()
	env := testservers.Require(t, "MTLOG_AUDIT_AZURITE_BLOB_ENDPOINT", "MTLOG_AUDIT_AZURITE_ACCOUNT", "MTLOG_AUDIT_AZURITE_KEY")
	cfg := Config{Endpoint: env[0], Account: env[1], Key: env[2], Container: "t" + random(), MaxRetries: -1}
	if _, err := rawClient(t, cfg).CreateContainer(t.Context(), cfg.Container, nil); err != nil {
		t.Fatalf("creating container %s on Azurite: %v", cfg.Container, err)
	}
	return cfg
}

func random() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// rawClient is the SDK's client, for what the driver would never do.
func rawClient(t *testing.T, cfg Config) *azblob.Client {
	t.Helper()
	cred, err := azblob.NewSharedKeyCredential(cfg.Account, cfg.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := azblob.NewClientWithSharedKeyCredential(cfg.Endpoint, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
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
	cfg := azurite(t)
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		c := cfg
		c.Prefix = "conf/" + random()
		return newBackend(t, c)
	})
}

// Azurite has no version-level immutability: the driver must say so rather
// than claim a retention that nothing enforces.
func TestAzuriteHasNoImmutability(t *testing.T) {
	cfg := azurite(t)
	b := newBackend(t, cfg)
	if got, want := b.Capabilities(), (backends.Capabilities{ServerChecksum: true}); got != want {
		t.Fatalf("Capabilities on Azurite = %+v, want %+v", got, want)
	}
	cfg.RequireImmutability = true
	_, err := New(t.Context(), cfg)
	if !errors.Is(err, backends.ErrUnsupported) || !strings.Contains(err.Error(), "immutability") {
		t.Fatalf("New with RequireImmutability on Azurite: err = %v, want ErrUnsupported naming immutability", err)
	}
}

// The service itself checks the bytes: a Content-MD5 that does not match
// what arrives is refused and nothing is stored.
func TestServiceChecksMD5(t *testing.T) {
	b := newBackend(t, azurite(t))
	data := []byte("segment bytes")
	wrong := md5.Sum([]byte("other bytes"))
	err := b.put(t.Context(), "k", backends.ReaderAt(data), int64(len(data)), backends.PutOptions{SHA256: sha256.Sum256(data)}, wrong[:])
	if !errors.Is(err, backends.ErrChecksum) {
		t.Fatalf("put with a wrong Content-MD5: err = %v, want ErrChecksum from the service", err)
	}
	if _, err := b.Get(t.Context(), "k"); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("after the refused put, Get: err = %v, want ErrNotFound", err)
	}
}

// A blob altered or written behind the driver's back (other bytes than its
// sha256 metadata says, or no metadata) is refused by Get.
func TestGetRefusesAlteredBlob(t *testing.T) {
	cfg := azurite(t)
	b := newBackend(t, cfg)
	raw := rawClient(t, cfg)
	otherSum := sha256.Sum256([]byte("what was shipped"))
	cases := map[string]map[string]*string{
		"wrongsum": {"sha256": to.Ptr(hex.EncodeToString(otherSum[:]))},
		"nosum":    nil,
		"badsum":   {"sha256": to.Ptr("not hex")},
	}
	for key, md := range cases {
		if _, err := raw.UploadBuffer(t.Context(), cfg.Container, key, []byte("forged content"), &azblob.UploadBufferOptions{Metadata: md}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Get(t.Context(), key); !errors.Is(err, backends.ErrChecksum) || !strings.Contains(err.Error(), b.Name()) {
			t.Errorf("Get of blob %q: err = %v, want ErrChecksum naming %s", key, err, b.Name())
		}
	}
}

func TestNewBadInput(t *testing.T) {
	cfg := azurite(t)
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
		if strings.Contains(err.Error(), c.Key) && c.Key != "" {
			t.Errorf("%s: the error carries the key: %v", name, err)
		}
	}
	wrongKey := cfg
	wrongKey.Key = "AAAA" + cfg.Key[4:]
	check("wrong key", wrongKey, "azure://devstoreaccount1/"+cfg.Container, "credentials")
	missing := cfg
	missing.Container = "nosuch" + random()
	check("missing container", missing, missing.Container, "does not exist")
	check("bad container name", Config{Account: "a", Key: "a2V5", Container: "Bad_Name"}, "container name")
	check("no credentials", Config{Container: "abc"}, "no credentials")
	badKey := cfg
	badKey.Key = "not base64!"
	check("key not base64", badKey, "account key")
	badPrefix := cfg
	badPrefix.Prefix = "../x"
	check("bad prefix", badPrefix, "prefix")

	// A server that answers 200 to everything, with nothing Azure would say.
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html>hello</html>"))
	}))
	t.Cleanup(garbage.Close)
	g := cfg
	g.Endpoint = garbage.URL + "/devstoreaccount1"
	check("garbage answer", g, "azure://devstoreaccount1/", "does not answer as Azure Blob Storage")

	// A server that answers 500 with garbage.
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte("\x00\x01garbage"))
	}))
	t.Cleanup(broken.Close)
	g.Endpoint = broken.URL + "/devstoreaccount1"
	check("server error", g, "azure://devstoreaccount1/", "500")

	// A TCP server that speaks no HTTP at all.
	g.Endpoint = "http://" + testservers.NotHTTP(t) + "/devstoreaccount1"
	check("not HTTP", g, "azure://devstoreaccount1/", "check the endpoint")
}

// A server that accepts the connection and never answers holds New only
// as long as its context.
func TestNewBlackhole(t *testing.T) {
	cfg := azurite(t)
	cfg.Endpoint = "http://" + testservers.Blackhole(t) + "/devstoreaccount1"
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := New(ctx, cfg); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("New against a server that never answers: err = %v, want context.DeadlineExceeded", err)
	}
}

func TestNewCanceled(t *testing.T) {
	cfg := azurite(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := New(ctx, cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("New with a canceled context: err = %v, want context.Canceled", err)
	}
}

func TestOpen(t *testing.T) {
	cfg := azurite(t)
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "")
	t.Setenv("AZURE_STORAGE_KEY", cfg.Key)
	b, err := Open(t.Context(), "azure://"+cfg.Account+"/"+cfg.Container+"/some/prefix?endpoint="+cfg.Endpoint)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if want := "azure://" + cfg.Account + "/" + cfg.Container + "/some/prefix"; b.Name() != want {
		t.Fatalf("Name() = %q, want %q", b.Name(), want)
	}
	data := []byte("x")
	if err := b.Put(t.Context(), "k", backends.ReaderAt(data), int64(len(data)), backends.PutOptions{SHA256: sha256.Sum256(data)}); err != nil {
		t.Fatal(err)
	}
	// The object sits under the prefix.
	if _, err := rawClient(t, cfg).ServiceClient().NewContainerClient(cfg.Container).NewBlobClient("some/prefix/k").GetProperties(t.Context(), nil); err != nil {
		t.Fatalf("the blob is not at some/prefix/k: %v", err)
	}

	// The same through a connection string.
	t.Setenv("AZURE_STORAGE_KEY", "")
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "DefaultEndpointsProtocol=http;AccountName="+cfg.Account+
		";AccountKey="+cfg.Key+";BlobEndpoint="+cfg.Endpoint+";")
	b2, err := Open(t.Context(), "azure://"+cfg.Account+"/"+cfg.Container+"/some/prefix")
	if err != nil {
		t.Fatalf("Open with a connection string: %v", err)
	}
	if _, err := b2.Get(t.Context(), "k"); err != nil {
		t.Fatalf("Get through the connection string: %v", err)
	}
}

func TestParseURL(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	key := env(map[string]string{"AZURE_STORAGE_KEY": "a2V5"})
	good, err := parseURL("azure://acct/cont/a/b/?endpoint=http://127.0.0.1:1/acct", key)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Config{Account: "acct", Container: "cont", Prefix: "a/b", Endpoint: "http://127.0.0.1:1/acct", Key: "a2V5"}); good != want {
		t.Fatalf("parseURL = %+v, want %+v", good, want)
	}
	bad := []struct{ url, want string }{
		{"azure://acct", "names no container"},
		{"s3://acct/cont", "not of the form"},
		{"azure:///cont", "not of the form"},
		{"azure://user:pw@acct/cont", "not of the form"},
		{"azure://acct/cont?endpoint=ftp://x", "not an http or https URL"},
		{"azure://acct/cont?region=x", `"region" is not known`},
		{"azure://acct/cont?endpoint=http://a&endpoint=http://b", "not given once"},
		{"azure://acct/%zz", "does not parse"},
		{"::", "does not parse"},
	}
	for _, tc := range bad {
		if _, err := parseURL(tc.url, key); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseURL(%q): err = %v, want one saying %q", tc.url, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("parseURL(%q): the error shows the password: %v", tc.url, err)
		}
	}
	if _, err := parseURL("azure://acct/cont", env(nil)); err == nil || !strings.Contains(err.Error(), "AZURE_STORAGE_KEY") {
		t.Errorf("no key in the environment: err = %v, want one naming AZURE_STORAGE_KEY", err)
	}
	other := env(map[string]string{"AZURE_STORAGE_CONNECTION_STRING": "AccountName=other;AccountKey=a2V5"})
	if _, err := parseURL("azure://acct/cont", other); err == nil || !strings.Contains(err.Error(), `for account "other"`) {
		t.Errorf("connection string of another account: err = %v", err)
	}
}

// Errors of the service that the driver does not map keep the SDK's error
// for errors.As.
func TestUnmappedErrorKeepsCause(t *testing.T) {
	cfg := azurite(t)
	b := newBackend(t, cfg)
	if _, err := rawClient(t, cfg).DeleteContainer(t.Context(), cfg.Container, nil); err != nil {
		t.Fatal(err)
	}
	data := []byte("x")
	err := b.Put(t.Context(), "k", backends.ReaderAt(data), int64(len(data)), backends.PutOptions{SHA256: sha256.Sum256(data)})
	if !bloberror.HasCode(err, bloberror.ContainerNotFound) || !strings.Contains(err.Error(), "no longer exists") {
		t.Fatalf("Put into a deleted container: err = %v, want ContainerNotFound saying the container no longer exists", err)
	}
}

// CreateContainer on Azurite: a container required to be immutable is not
// left behind without immutability (Azurite has none: its Get Container
// Properties carries no x-ms-immutable-storage-with-versioning-enabled
// header), one without the requirement is created, and creating it again is
// no error; refused credentials name the backend.
func TestCreateContainer(t *testing.T) {
	cfg := azurite(t)
	cfg.Container = "c" + random()
	cfg.Prefix = "host-1"
	name := "azure://" + cfg.Account + "/" + cfg.Container + "/host-1"
	if _, err := New(t.Context(), cfg); !errors.Is(err, ErrNoContainer) || !strings.Contains(err.Error(), "backend init") {
		t.Fatalf("New on a missing container: %v, want ErrNoContainer saying how to create it", err)
	}
	strict := cfg
	strict.RequireImmutability = true
	err := CreateContainer(t.Context(), strict)
	if !errors.Is(err, backends.ErrUnsupported) || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "--enable-vlw") {
		t.Fatalf("CreateContainer requiring immutability on Azurite: %v, want ErrUnsupported naming %s and what to do", err, name)
	}
	if _, err := New(t.Context(), cfg); !errors.Is(err, ErrNoContainer) {
		t.Fatalf("the container created without immutability was left behind: New = %v", err)
	}
	for range 2 {
		if err := CreateContainer(t.Context(), cfg); err != nil {
			t.Fatalf("CreateContainer: %v", err)
		}
	}
	b := newBackend(t, cfg)
	if b.Name() != name || b.Capabilities().Retention {
		t.Fatalf("the created container: %s, %+v", b.Name(), b.Capabilities())
	}
	bad := cfg
	bad.Container = "c" + random()
	bad.Key = "d3Jvbmc=" // "wrong"
	if err := CreateContainer(t.Context(), bad); err == nil || !strings.Contains(err.Error(), "credentials") || !strings.Contains(err.Error(), bad.Container) {
		t.Fatalf("CreateContainer with a wrong key: %v, want an error naming the backend and the credentials", err)
	}
}
