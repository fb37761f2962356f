// Package gcs is the Google Cloud Storage driver of backends.Backend, built
// on cloud.google.com/go/storage.
//
// Each object is written by one upload request with the DoesNotExist
// precondition (ifGenerationMatch=0, so an existing object is never
// replaced) and its CRC32C (so the service refuses bytes damaged on the
// way). The object's SHA-256 is kept as the object metadata "sha256" and
// checked on every Get, together with the CRC32C the service stored.
//
// Retention is GCS's object retention (Unlocked is
// backends.RetentionGovernance, Locked is backends.RetentionCompliance),
// which exists only in a bucket with object retention enabled; legal hold is
// the object's temporary hold. New reads the bucket's attributes and
// Capabilities says what it has. Against an emulator (Config.Endpoint or
// STORAGE_EMULATOR_HOST) the driver claims neither: fake-gcs-server stores a
// retention without enforcing it and has no holds (docs/replication.md).
package gcs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/willibrandon/mtlog-audit/backends"
)

// metaSHA256 is the metadata key under which Put stores the object's
// SHA-256 (lower-case hex).
const metaSHA256 = "sha256"

// castagnoli is the CRC32C table.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Config configures New.
type Config struct {
	// Bucket is the bucket's name; it must exist.
	Bucket string
	// Prefix is prepended, with a '/', to every object key (may be empty).
	Prefix string
	// Endpoint is the URL of a GCS emulator such as fake-gcs-server
	// ("http://127.0.0.1:4443"); the driver then sends no credentials and
	// claims no retention or holds. Empty means Google's service with
	// Application Default Credentials, unless STORAGE_EMULATOR_HOST is set
	// (which the SDK itself obeys), which counts as an emulator too.
	Endpoint string
	// RequireRetention makes New fail when the bucket has no object
	// retention (so Put and SetRetention could not apply one).
	RequireRetention bool
	// MaxAttempts bounds the SDK's attempts of a retried request; 0 means
	// the SDK's default (retry until the context ends). The shipper has its
	// own backoff, so a low value keeps a dead service from holding it long.
	MaxAttempts int
	// ClientOptions are passed to storage.NewClient (credentials, a
	// private endpoint, an HTTP client).
	ClientOptions []option.ClientOption
}

// Backend is a GCS bucket (under a prefix) as a backends.Backend. It is
// safe for concurrent use.
type Backend struct {
	name   string
	prefix string // "" or ending in '/'
	client *storage.Client
	bucket *storage.BucketHandle
	caps   backends.Capabilities
}

var _ backends.Backend = (*Backend)(nil)

// ErrNoBucket is matched (errors.Is) by New's error when the bucket does
// not exist (CreateBucket creates it).
var ErrNoBucket = errors.New("gcs: no such bucket")

// bucketName is GCS's rule for bucket names (without dotted names' longer
// limit of 222 bytes, which it also allows).
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$`)

// New connects to the bucket cfg names and checks that the credentials work
// and that the bucket exists, reading whether it has object retention. Its
// errors name the backend and say what to fix.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	b, emulator, err := buildBackend(ctx, cfg)
	if err != nil {
		return nil, err
	}
	client := b.client
	attrs, err := b.bucket.Attrs(ctx)
	switch {
	case errors.Is(err, storage.ErrBucketNotExist):
		err = fmt.Errorf("%w: %s: bucket %q does not exist: create it first (mtlog-audit backend init, or "+
			"gcloud storage buckets create gs://%s): %w", ErrNoBucket, b.name, cfg.Bucket, cfg.Bucket, err)
	case err != nil:
		err = b.refused(ctx, err, "reading the bucket's attributes")
	case attrs == nil || attrs.Name != cfg.Bucket:
		err = fmt.Errorf("%s: the endpoint does not answer as Cloud Storage does (the bucket's attributes name no bucket %q): "+
			"check the endpoint URL", b.name, cfg.Bucket)
	}
	if err != nil {
		client.Close()
		return nil, err
	}
	b.caps = backends.Capabilities{
		Retention:      !emulator && attrs.ObjectRetentionMode == "Enabled",
		LegalHold:      !emulator,
		ServerChecksum: true,
	}
	if cfg.RequireRetention && !b.caps.Retention {
		client.Close()
		return nil, fmt.Errorf("%s: %w: the bucket has no object retention: create it with "+
			"--enable-per-object-retention (emulators have none)", b.name, backends.ErrUnsupported)
	}
	return b, nil
}

// buildBackend checks cfg and makes the client, without a request; it
// says whether the service is an emulator.
func buildBackend(ctx context.Context, cfg Config) (*Backend, bool, error) {
	b := &Backend{name: "gs://" + cfg.Bucket}
	if cfg.Prefix != "" {
		if err := backends.CheckKey(cfg.Prefix); err != nil {
			return nil, false, fmt.Errorf("gcs: prefix: %w", err)
		}
		b.prefix = cfg.Prefix + "/"
		b.name += "/" + cfg.Prefix
	}
	if !bucketName.MatchString(cfg.Bucket) {
		return nil, false, fmt.Errorf("gcs: bucket name %q is not valid: use 3 to 222 lower-case letters, digits, '-', '_' and '.', "+
			"beginning and ending with a letter or digit", cfg.Bucket)
	}
	emulator := cfg.Endpoint != "" || os.Getenv("STORAGE_EMULATOR_HOST") != ""
	var opts []option.ClientOption
	if cfg.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(strings.TrimSuffix(cfg.Endpoint, "/")+"/storage/v1/"),
			option.WithoutAuthentication(), storage.WithJSONReads())
	}
	opts = append(opts, cfg.ClientOptions...)
	client, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, false, fmt.Errorf("%s: no client: set up Application Default Credentials "+
			"(GOOGLE_APPLICATION_CREDENTIALS) or give Config.ClientOptions: %w", b.name, err)
	}
	if cfg.MaxAttempts > 0 {
		client.SetRetry(storage.WithMaxAttempts(cfg.MaxAttempts))
	}
	b.client = client
	b.bucket = client.Bucket(cfg.Bucket)
	return b, emulator, nil
}

// refused explains the error err of a request about the bucket (what,
// such as "creating the bucket").
func (b *Backend) refused(ctx context.Context, err error, what string) error {
	var ge *googleapi.Error
	switch {
	case errors.As(err, &ge) && (ge.Code == http.StatusUnauthorized || ge.Code == http.StatusForbidden):
		return fmt.Errorf("%s: the service refused the credentials (HTTP %d): check GOOGLE_APPLICATION_CREDENTIALS "+
			"and the account's roles on the bucket: %w", b.name, ge.Code, err)
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", b.name, ctx.Err())
	}
	return fmt.Errorf("%s: %s failed: check the endpoint and the network: %w", b.name, what, err)
}

// CreateBucket creates cfg's bucket in the Google Cloud project project;
// one that already exists and is the caller's is not an error. It is for
// setting up (mtlog-audit backend init, a test, a provisioning script).
// With cfg.RequireRetention the bucket is created with object retention
// enabled (which GCS allows only at creation), and against an emulator,
// which keeps none, it refuses with backends.ErrUnsupported before asking.
// project may be empty against an emulator; against Google it must name
// the project the bucket is billed to.
func CreateBucket(ctx context.Context, cfg Config, project string) error {
	b, emulator, err := buildBackend(ctx, cfg)
	if err != nil {
		return err
	}
	defer b.client.Close()
	switch {
	case cfg.RequireRetention && emulator:
		return fmt.Errorf("%s: %w: an emulator keeps no object retention: create the bucket without retention "+
			"(--mutable), or use Google's service", b.name, backends.ErrUnsupported)
	case project == "" && emulator:
		project = "emulator" // the emulator ignores it
	case project == "":
		return fmt.Errorf("%s: no project to create the bucket in: give the Google Cloud project (--project or "+
			"GOOGLE_CLOUD_PROJECT)", b.name)
	}
	bucket := b.bucket
	if cfg.RequireRetention {
		bucket = bucket.SetObjectRetention(true)
	}
	err = bucket.Create(ctx, project, nil)
	var ge *googleapi.Error
	if err == nil || errors.As(err, &ge) && ge.Code == http.StatusConflict && b.owned(ctx) {
		return nil
	}
	return b.refused(ctx, err, "creating the bucket")
}

// owned reports whether the bucket, which a create found existing, can be
// read by the caller (a name taken by someone else cannot).
func (b *Backend) owned(ctx context.Context) bool {
	_, err := b.bucket.Attrs(ctx)
	return err == nil
}

// Name returns "gs://BUCKET/PREFIX".
func (b *Backend) Name() string { return b.name }

// Capabilities reports ServerChecksum (the service checks the CRC32C),
// Retention when the bucket has object retention, and LegalHold (temporary
// holds) on Google's service; an emulator gets neither of the last two.
func (b *Backend) Capabilities() backends.Capabilities { return b.caps }

// Close closes the SDK's client.
func (b *Backend) Close() error { return b.client.Close() }

// objectName checks key and returns the object's name.
func (b *Backend) objectName(op, key string) (string, error) {
	if err := backends.CheckKey(key); err != nil {
		return "", fmt.Errorf("%s: %s: %w", b.name, op, err)
	}
	return b.prefix + key, nil
}

// fail wraps err of operation op on key, mapping the service's answers to
// the errors of package backends.
func (b *Backend) fail(ctx context.Context, op, key string, err error) error {
	var ge *googleapi.Error
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %s %q: %w", b.name, op, key, ctx.Err())
	case errors.Is(err, storage.ErrObjectNotExist):
		return fmt.Errorf("%s: %s %q: %w", b.name, op, key, backends.ErrNotFound)
	case errors.Is(err, storage.ErrBucketNotExist):
		return fmt.Errorf("%s: %s %q: the bucket no longer exists: %w", b.name, op, key, err)
	case errors.As(err, &ge) && ge.Code == http.StatusPreconditionFailed:
		return fmt.Errorf("%s: %s %q: %w", b.name, op, key, backends.ErrExists)
	case errors.As(err, &ge) && ge.Code == http.StatusBadRequest && strings.Contains(strings.ToLower(ge.Message), "crc32c"):
		return fmt.Errorf("%s: %s %q: %w: the service received other bytes than were sent: %w", b.name, op, key, backends.ErrChecksum, err)
	case errors.As(err, &ge) && ge.Code == http.StatusNotFound:
		return fmt.Errorf("%s: %s %q: %w", b.name, op, key, backends.ErrNotFound)
	}
	return fmt.Errorf("%s: %s %q: %w", b.name, op, key, err)
}

// Put uploads the size bytes of body as the object key in one request,
// with the DoesNotExist precondition, its CRC32C and the SHA-256 as
// metadata, and with the retention in opts when the bucket supports it
// (else ErrUnsupported, before anything is sent). It reads body twice:
// once to hash it (the CRC32C goes with the request's metadata, and the
// service does not check the SHA-256), once to send it.
func (b *Backend) Put(ctx context.Context, key string, body io.ReaderAt, size int64, opts backends.PutOptions) error {
	if _, err := b.objectName("put", key); err != nil {
		return err
	}
	c, s := crc32.New(castagnoli), sha256.New()
	if err := backends.Hash(body, size, c, s); err != nil {
		return fmt.Errorf("%s: put %q: %w", b.name, key, err)
	}
	if !bytes.Equal(s.Sum(nil), opts.SHA256[:]) {
		return fmt.Errorf("%s: put %q: %w: the data's SHA-256 is not the one given", b.name, key, backends.ErrChecksum)
	}
	return b.put(ctx, key, body, size, opts, c.Sum32())
}

// put is Put with the CRC32C to send (tests send a wrong one to see the
// service refuse it), once the bytes are known to match opts.SHA256.
func (b *Backend) put(ctx context.Context, key string, body io.ReaderAt, size int64, opts backends.PutOptions, crc uint32) error {
	name, err := b.objectName("put", key)
	if err != nil {
		return err
	}
	if err := b.checkRetention(opts.Retention); err != nil {
		return fmt.Errorf("%s: put %q: %w", b.name, key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: put %q: %w", b.name, key, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel() // a Writer not closed is abandoned by canceling its context
	w := b.bucket.Object(name).If(storage.Conditions{DoesNotExist: true}).NewWriter(wctx)
	w.ChunkSize = 0 // one request: the object appears whole or not at all
	w.CRC32C, w.SendCRC32C = crc, true
	w.ContentType = "application/octet-stream"
	w.Metadata = map[string]string{metaSHA256: hex.EncodeToString(opts.SHA256[:])}
	if r := opts.Retention; r.Mode != backends.RetentionNone {
		w.Retention = &storage.ObjectRetention{Mode: retentionMode(r.Mode), RetainUntil: r.Until}
	}
	w.TemporaryHold = opts.Retention.LegalHold
	if _, err := io.Copy(w, io.NewSectionReader(body, 0, size)); err != nil {
		return b.fail(ctx, "put", key, err)
	}
	if err := w.Close(); err != nil {
		return b.fail(ctx, "put", key, err)
	}
	return nil
}

// checkRetention returns ErrUnsupported when r asks for what the bucket
// cannot do.
func (b *Backend) checkRetention(r backends.Retention) error {
	if r.Mode != backends.RetentionNone && !b.caps.Retention {
		return fmt.Errorf("%w: retention needs a bucket with object retention enabled (emulators have none)", backends.ErrUnsupported)
	}
	if r.LegalHold && !b.caps.LegalHold {
		return fmt.Errorf("%w: this service has no object holds (emulators have none)", backends.ErrUnsupported)
	}
	return nil
}

// retentionMode maps a retention mode to GCS's object retention mode.
func retentionMode(m backends.RetentionMode) string {
	if m == backends.RetentionCompliance {
		return "Locked"
	}
	return "Unlocked"
}

// info maps an object's attributes to an ObjectInfo.
func (b *Backend) info(a *storage.ObjectAttrs) backends.ObjectInfo {
	in := backends.ObjectInfo{
		Key:      strings.TrimPrefix(a.Name, b.prefix),
		Size:     a.Size,
		SHA256:   metaSum(a.Metadata),
		Modified: a.Created,
	}
	if r := a.Retention; r != nil && !r.RetainUntil.IsZero() {
		switch r.Mode {
		case "Unlocked":
			in.Retention.Mode, in.Retention.Until = backends.RetentionGovernance, r.RetainUntil
		case "Locked":
			in.Retention.Mode, in.Retention.Until = backends.RetentionCompliance, r.RetainUntil
		}
	}
	in.Retention.LegalHold = a.TemporaryHold
	return in
}

// metaSum returns the SHA-256 stored in metadata md, or nil.
func metaSum(md map[string]string) []byte {
	if sum, err := hex.DecodeString(md[metaSHA256]); err == nil && len(sum) == sha256.Size {
		return sum
	}
	return nil
}

// Get reads the object key (the generation its attributes name) and checks
// its length, its CRC32C and its SHA-256 against what Put stored; a
// mismatch is ErrChecksum.
func (b *Backend) Get(ctx context.Context, key string) ([]byte, error) {
	name, err := b.objectName("get", key)
	if err != nil {
		return nil, err
	}
	obj := b.bucket.Object(name)
	attrs, err := obj.Attrs(ctx)
	if err != nil {
		return nil, b.fail(ctx, "get", key, err)
	}
	r, err := obj.Generation(attrs.Generation).NewReader(ctx)
	if err != nil {
		return nil, b.fail(ctx, "get", key, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, b.fail(ctx, "get", key, err)
	}
	bad := func(why string) error {
		return fmt.Errorf("%s: get %q: %w: %s", b.name, key, backends.ErrChecksum, why)
	}
	if int64(len(data)) != attrs.Size {
		return nil, bad(fmt.Sprintf("read %d bytes, the service reports %d", len(data), attrs.Size))
	}
	if crc32.Checksum(data, castagnoli) != attrs.CRC32C {
		return nil, bad("the content does not match the CRC32C the service stored")
	}
	want := metaSum(attrs.Metadata)
	if want == nil {
		return nil, bad("the object has no sha256 metadata (not written by this driver)")
	}
	if got := backends.SHA256(data); !bytes.Equal(got[:], want) {
		return nil, bad("the content does not match the SHA-256 stored with it")
	}
	return data, nil
}

// Stat reads the object's attributes.
func (b *Backend) Stat(ctx context.Context, key string) (backends.ObjectInfo, error) {
	name, err := b.objectName("stat", key)
	if err != nil {
		return backends.ObjectInfo{}, err
	}
	a, err := b.bucket.Object(name).Attrs(ctx)
	if err != nil {
		return backends.ObjectInfo{}, b.fail(ctx, "stat", key, err)
	}
	return b.info(a), nil
}

// List lists the objects whose keys begin with prefix, with their
// metadata.
func (b *Backend) List(ctx context.Context, prefix string) ([]backends.ObjectInfo, error) {
	full := b.prefix + prefix
	it := b.bucket.Objects(ctx, &storage.Query{Prefix: full})
	var out []backends.ObjectInfo
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, b.fail(ctx, "list", prefix, err)
		}
		if !strings.HasPrefix(a.Name, full) {
			return nil, fmt.Errorf("%s: list %q: the service listed an object outside the prefix", b.name, prefix)
		}
		out = append(out, b.info(a))
	}
	slices.SortFunc(out, func(x, y backends.ObjectInfo) int { return strings.Compare(x.Key, y.Key) })
	return out, nil
}

// SetRetention sets the object's retention (when r.Mode is set) and its
// temporary hold. Without retention or holds it returns ErrUnsupported for
// anything but clearing a hold, which is then a no-op.
func (b *Backend) SetRetention(ctx context.Context, key string, r backends.Retention) error {
	name, err := b.objectName("set retention", key)
	if err != nil {
		return err
	}
	if err := b.checkRetention(r); err != nil {
		return fmt.Errorf("%s: set retention %q: %w", b.name, key, err)
	}
	var ua storage.ObjectAttrsToUpdate
	if r.Mode != backends.RetentionNone {
		ua.Retention = &storage.ObjectRetention{Mode: retentionMode(r.Mode), RetainUntil: r.Until}
	}
	if b.caps.LegalHold {
		ua.TemporaryHold = r.LegalHold
	}
	if ua.Retention == nil && ua.TemporaryHold == nil {
		// Nothing to set; still say whether the object exists.
		_, err := b.Stat(ctx, key)
		return err
	}
	if _, err := b.bucket.Object(name).Update(ctx, ua); err != nil {
		return b.fail(ctx, "set retention", key, err)
	}
	return nil
}
