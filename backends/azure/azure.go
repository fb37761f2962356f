// Package azure is the Azure Blob Storage driver of backends.Backend, built
// on the azblob SDK.
//
// Each object is one block blob, written by a single Put Blob request with
// If-None-Match: * (so an existing blob is never replaced) and Content-MD5
// (so the service refuses bytes damaged on the way). The object's SHA-256 is
// kept as the blob metadata "sha256" and checked on every Get, together with
// the MD5 the service stored.
//
// Retention is a blob's version-level immutability policy (Unlocked is
// backends.RetentionGovernance, Locked is backends.RetentionCompliance) and
// legal hold is the blob's legal hold. Both exist only in a container with
// version-level immutability support; New reads the container's properties
// and Capabilities says whether it has it. Azurite, the emulator, has none
// (docs/replication.md).
package azure

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/willibrandon/mtlog-audit/backends"
)

// metaSHA256 is the metadata key under which Put stores the object's
// SHA-256 (lower-case hex).
const metaSHA256 = "sha256"

// Config configures New. Either Account and Key, or ConnectionString, give
// the credentials.
type Config struct {
	// Account is the storage account name.
	Account string
	// Key is the account's shared key (base64), as the portal shows it.
	Key string
	// ConnectionString, if set, is used instead of Account, Key and
	// Endpoint ("DefaultEndpointsProtocol=...;AccountName=...;AccountKey=...;
	// BlobEndpoint=...").
	ConnectionString string
	// Endpoint is the blob service URL; empty means
	// https://ACCOUNT.blob.core.windows.net/. For Azurite it is
	// http://127.0.0.1:PORT/devstoreaccount1.
	Endpoint string
	// Container is the container's name; it must exist.
	Container string
	// Prefix is prepended, with a '/', to every object key (may be empty).
	Prefix string
	// RequireImmutability makes New fail when the container has no
	// version-level immutability support (so no retention or legal hold).
	RequireImmutability bool
	// MaxRetries is how often the SDK retries a failed request: 0 means its
	// default (3), a negative value means no retry. The shipper has its own
	// backoff, so a low value keeps a dead service from holding it long.
	MaxRetries int32
}

// Backend is an Azure Blob Storage container (under a prefix) as a
// backends.Backend. It is safe for concurrent use.
type Backend struct {
	name      string
	prefix    string // "" or ending in '/'
	container *container.Client
	caps      backends.Capabilities
}

var _ backends.Backend = (*Backend)(nil)

// ErrNoContainer is matched (errors.Is) by New's error when the container
// does not exist (CreateContainer creates it).
var ErrNoContainer = errors.New("azure: no such container")

// containerName is Azure's rule for container names.
var containerName = regexp.MustCompile(`^[a-z0-9](-?[a-z0-9])+$`)

// New connects to the container cfg names and checks that the credentials
// work and that the container exists, reading whether it supports
// immutability. Its errors name the backend and say what to fix.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := buildBackend(cfg)
	if err != nil {
		return nil, err
	}
	immutable, err := b.probe(ctx, cfg)
	if err != nil {
		return nil, err
	}
	b.caps = backends.Capabilities{Retention: immutable, LegalHold: immutable, ServerChecksum: true}
	if cfg.RequireImmutability && !immutable {
		return nil, fmt.Errorf("%s: %w: the container has no version-level immutability support, which retention "+
			"and legal hold need: create the container with it enabled (Azurite has none)", b.name, backends.ErrUnsupported)
	}
	return b, nil
}

// buildBackend checks cfg and makes the client, without a request.
func buildBackend(cfg Config) (*Backend, error) {
	b := &Backend{}
	if cfg.Prefix != "" {
		if err := backends.CheckKey(cfg.Prefix); err != nil {
			return nil, fmt.Errorf("azure: prefix: %w", err)
		}
		b.prefix = cfg.Prefix + "/"
	}
	if len(cfg.Container) < 3 || len(cfg.Container) > 63 || !containerName.MatchString(cfg.Container) {
		return nil, fmt.Errorf("azure: container name %q is not valid: use 3 to 63 lower-case letters, digits and single hyphens", cfg.Container)
	}
	opts := &azblob.ClientOptions{ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: cfg.MaxRetries}}}
	var client *azblob.Client
	account := cfg.Account
	switch {
	case cfg.ConnectionString != "":
		var err error
		client, err = azblob.NewClientFromConnectionString(cfg.ConnectionString, opts)
		if err != nil {
			return nil, fmt.Errorf("azure: connection string: %w", err)
		}
		if account == "" {
			account = connAccount(cfg.ConnectionString)
		}
	case cfg.Account == "" || cfg.Key == "":
		return nil, errors.New("azure: no credentials: set Config.Account and Config.Key, or Config.ConnectionString")
	default:
		cred, err := azblob.NewSharedKeyCredential(cfg.Account, cfg.Key)
		if err != nil {
			return nil, fmt.Errorf("azure: account key of %q: %w (the key is the base64 string the portal shows)", cfg.Account, err)
		}
		endpoint := cfg.Endpoint
		if endpoint == "" {
			endpoint = "https://" + cfg.Account + ".blob.core.windows.net/"
		}
		client, err = azblob.NewClientWithSharedKeyCredential(endpoint, cred, opts)
		if err != nil {
			return nil, fmt.Errorf("azure: endpoint %q: %w", endpoint, err)
		}
	}
	b.name = "azure://" + account + "/" + cfg.Container
	if cfg.Prefix != "" {
		b.name += "/" + cfg.Prefix
	}
	b.container = client.ServiceClient().NewContainerClient(cfg.Container)
	return b, nil
}

// probe reads the container's properties: whether it exists, whether the
// credentials reach it, and whether it has version-level immutability.
func (b *Backend) probe(ctx context.Context, cfg Config) (immutable bool, err error) {
	var raw *http.Response
	props, err := b.container.GetProperties(policy.WithCaptureResponse(ctx, &raw), nil)
	switch {
	case bloberror.HasCode(err, bloberror.ContainerNotFound):
		return false, fmt.Errorf("%w: %s: container %q does not exist: create it first (mtlog-audit backend init, or "+
			"az storage container create --name %s): %w", ErrNoContainer, b.name, cfg.Container, cfg.Container, err)
	case err != nil:
		return false, b.refused(ctx, err, "reading the container's properties")
	case raw == nil || raw.Header.Get("x-ms-request-id") == "":
		return false, fmt.Errorf("%s: the endpoint does not answer as Azure Blob Storage does (no x-ms-request-id header): check the endpoint URL", b.name)
	}
	return props.IsImmutableStorageWithVersioningEnabled != nil && *props.IsImmutableStorageWithVersioningEnabled, nil
}

// refused explains the error err of a request about the container (what,
// such as "creating the container").
func (b *Backend) refused(ctx context.Context, err error, what string) error {
	switch {
	case bloberror.HasCode(err, bloberror.AuthenticationFailed, bloberror.AuthorizationFailure,
		bloberror.AuthorizationPermissionMismatch, bloberror.InvalidAuthenticationInfo):
		return fmt.Errorf("%s: the service refused the credentials: check the account name and key "+
			"(AZURE_STORAGE_KEY or AZURE_STORAGE_CONNECTION_STRING): %w", b.name, err)
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", b.name, ctx.Err())
	}
	return fmt.Errorf("%s: %s failed: check the endpoint and the network: %w", b.name, what, err)
}

// CreateContainer creates cfg's container; one that already exists is not
// an error. It is for setting up (mtlog-audit backend init, a test, a
// provisioning script). The Blob service's own API cannot ask for
// version-level immutability: a new container has it when the account has
// it for all its containers, or when it is created through Azure Resource
// Manager (az storage container-rm create --enable-vlw). So with
// cfg.RequireImmutability, a container it created without immutability is
// deleted again (it is empty) and the error matches
// backends.ErrUnsupported; a container that existed is left alone (New
// then reports it).
func CreateContainer(ctx context.Context, cfg Config) error {
	b, err := buildBackend(cfg)
	if err != nil {
		return err
	}
	_, err = b.container.Create(ctx, nil)
	if bloberror.HasCode(err, bloberror.ContainerAlreadyExists) || err == nil && !cfg.RequireImmutability {
		return nil
	}
	if err != nil {
		return b.refused(ctx, err, "creating the container")
	}
	immutable, err := b.probe(ctx, cfg)
	if err != nil || immutable {
		return err
	}
	if _, err := b.container.Delete(ctx, nil); err != nil {
		return fmt.Errorf("%s: the new container has no version-level immutability, and deleting it again failed: %w", b.name, err)
	}
	return fmt.Errorf("%s: %w: the account does not give new containers version-level immutability, and the Blob "+
		"service cannot ask for it: create the container with az storage container-rm create --enable-vlw, or enable "+
		"it on the account (Azurite has none); the container created without it was deleted again", b.name, backends.ErrUnsupported)
}

// connAccount returns the AccountName of a connection string, or "".
func connAccount(cs string) string {
	for _, part := range strings.Split(cs, ";") {
		if k, v, ok := strings.Cut(part, "="); ok && strings.EqualFold(strings.TrimSpace(k), "AccountName") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Name returns "azure://ACCOUNT/CONTAINER/PREFIX".
func (b *Backend) Name() string { return b.name }

// Capabilities reports ServerChecksum (the service checks Content-MD5) and,
// when the container has version-level immutability, Retention and
// LegalHold.
func (b *Backend) Capabilities() backends.Capabilities { return b.caps }

// Close releases nothing: the SDK's clients hold no resources of their own.
func (b *Backend) Close() error { return nil }

// blobName checks key and returns the blob's name.
func (b *Backend) blobName(op, key string) (string, error) {
	if err := backends.CheckKey(key); err != nil {
		return "", fmt.Errorf("%s: %s: %w", b.name, op, err)
	}
	return b.prefix + key, nil
}

// fail wraps err of operation op on key, mapping the service's answers to
// the errors of package backends.
func (b *Backend) fail(ctx context.Context, op, key string, err error) error {
	var re *azcore.ResponseError
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %s %q: %w", b.name, op, key, ctx.Err())
	case bloberror.HasCode(err, bloberror.BlobNotFound):
		return fmt.Errorf("%s: %s %q: %w", b.name, op, key, backends.ErrNotFound)
	case bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet):
		return fmt.Errorf("%s: %s %q: %w", b.name, op, key, backends.ErrExists)
	case bloberror.HasCode(err, bloberror.MD5Mismatch),
		// Azurite says it so.
		bloberror.HasCode(err, bloberror.InvalidOperation) && strings.Contains(strings.ToLower(err.Error()), "contentmd5"):
		return fmt.Errorf("%s: %s %q: %w: the service received other bytes than were sent", b.name, op, key, backends.ErrChecksum)
	case bloberror.HasCode(err, bloberror.ContainerNotFound):
		return fmt.Errorf("%s: %s %q: the container no longer exists: %w", b.name, op, key, err)
	case errors.As(err, &re) && re.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%s: %s %q: %w", b.name, op, key, backends.ErrNotFound)
	}
	return fmt.Errorf("%s: %s %q: %w", b.name, op, key, err)
}

// Put uploads the size bytes of body as the block blob key with
// If-None-Match: *, Content-MD5 and the SHA-256 as metadata, and with the
// retention in opts when the container supports it (else ErrUnsupported,
// before anything is sent). It reads body twice: once to hash it (the
// MD5 goes in a header, and the service does not check the SHA-256), once
// to send it.
func (b *Backend) Put(ctx context.Context, key string, body io.ReaderAt, size int64, opts backends.PutOptions) error {
	if _, err := b.blobName("put", key); err != nil {
		return err
	}
	m, s := md5.New(), sha256.New()
	if err := backends.Hash(body, size, m, s); err != nil {
		return fmt.Errorf("%s: put %q: %w", b.name, key, err)
	}
	if !bytes.Equal(s.Sum(nil), opts.SHA256[:]) {
		return fmt.Errorf("%s: put %q: %w: the data's SHA-256 is not the one given", b.name, key, backends.ErrChecksum)
	}
	return b.put(ctx, key, body, size, opts, m.Sum(nil))
}

// put is Put with the Content-MD5 to send (tests send a wrong one to see the
// service refuse it), once the bytes are known to match opts.SHA256.
func (b *Backend) put(ctx context.Context, key string, body io.ReaderAt, size int64, opts backends.PutOptions, contentMD5 []byte) error {
	name, err := b.blobName("put", key)
	if err != nil {
		return err
	}
	if err := b.checkRetention(opts.Retention); err != nil {
		return fmt.Errorf("%s: put %q: %w", b.name, key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: put %q: %w", b.name, key, err)
	}
	uo := &blockblob.UploadOptions{
		Metadata:                map[string]*string{metaSHA256: to.Ptr(hex.EncodeToString(opts.SHA256[:]))},
		TransactionalValidation: blob.TransferValidationTypeMD5(contentMD5),
		HTTPHeaders:             &blob.HTTPHeaders{BlobContentMD5: contentMD5, BlobContentType: to.Ptr("application/octet-stream")},
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{
			IfNoneMatch: to.Ptr(azcore.ETagAny),
		}},
	}
	if r := opts.Retention; r.Mode != backends.RetentionNone {
		uo.ImmutabilityPolicyMode = to.Ptr(policyMode(r.Mode))
		uo.ImmutabilityPolicyExpiryTime = to.Ptr(r.Until)
	}
	if opts.Retention.LegalHold {
		uo.LegalHold = to.Ptr(true)
	}
	_, err = b.container.NewBlockBlobClient(name).Upload(ctx, nopCloser{io.NewSectionReader(body, 0, size)}, uo)
	if err != nil {
		return b.fail(ctx, "put", key, err)
	}
	return nil
}

// nopCloser is a ReadSeekCloser over a section of the body.
type nopCloser struct{ *io.SectionReader }

func (nopCloser) Close() error { return nil }

// checkRetention returns ErrUnsupported when r asks for what the container
// cannot do.
func (b *Backend) checkRetention(r backends.Retention) error {
	if r.Mode != backends.RetentionNone && !b.caps.Retention {
		return fmt.Errorf("%w: retention needs a container with version-level immutability support", backends.ErrUnsupported)
	}
	if r.LegalHold && !b.caps.LegalHold {
		return fmt.Errorf("%w: legal hold needs a container with version-level immutability support", backends.ErrUnsupported)
	}
	return nil
}

// policyMode maps a retention mode to Azure's immutability policy mode.
func policyMode(m backends.RetentionMode) blob.ImmutabilityPolicySetting {
	if m == backends.RetentionCompliance {
		return blob.ImmutabilityPolicySettingLocked
	}
	return blob.ImmutabilityPolicySettingUnlocked
}

// retention maps what the service reports to a backends.Retention.
func retention(mode *blob.ImmutabilityPolicyMode, until *time.Time, hold *bool) backends.Retention {
	var r backends.Retention
	if mode != nil && until != nil {
		switch *mode {
		case blob.ImmutabilityPolicyModeUnlocked:
			r.Mode, r.Until = backends.RetentionGovernance, *until
		case blob.ImmutabilityPolicyModeLocked:
			r.Mode, r.Until = backends.RetentionCompliance, *until
		}
	}
	r.LegalHold = hold != nil && *hold
	return r
}

// metaSum returns the SHA-256 stored in metadata md (whose keys the SDK
// returns in canonical header case), or nil.
func metaSum(md map[string]*string) []byte {
	for k, v := range md {
		if strings.EqualFold(k, metaSHA256) && v != nil {
			if sum, err := hex.DecodeString(*v); err == nil && len(sum) == sha256.Size {
				return sum
			}
		}
	}
	return nil
}

// Get downloads the blob key and checks its length, its MD5 and its
// SHA-256 against what Put stored; a mismatch is ErrChecksum.
func (b *Backend) Get(ctx context.Context, key string) ([]byte, error) {
	name, err := b.blobName("get", key)
	if err != nil {
		return nil, err
	}
	resp, err := b.container.NewBlobClient(name).DownloadStream(ctx, nil)
	if err != nil {
		return nil, b.fail(ctx, "get", key, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, b.fail(ctx, "get", key, err)
	}
	bad := func(why string) error {
		return fmt.Errorf("%s: get %q: %w: %s", b.name, key, backends.ErrChecksum, why)
	}
	if resp.ContentLength != nil && *resp.ContentLength != int64(len(data)) {
		return nil, bad(fmt.Sprintf("read %d bytes, the service announced %d", len(data), *resp.ContentLength))
	}
	if m := md5.Sum(data); resp.ContentMD5 != nil && !bytes.Equal(resp.ContentMD5, m[:]) {
		return nil, bad("the content does not match the MD5 the service stored")
	}
	want := metaSum(resp.Metadata)
	if want == nil {
		return nil, bad("the blob has no sha256 metadata (not written by this driver)")
	}
	if got := backends.SHA256(data); !bytes.Equal(got[:], want) {
		return nil, bad("the content does not match the SHA-256 stored with it")
	}
	return data, nil
}

// Stat reads the blob's properties.
func (b *Backend) Stat(ctx context.Context, key string) (backends.ObjectInfo, error) {
	name, err := b.blobName("stat", key)
	if err != nil {
		return backends.ObjectInfo{}, err
	}
	p, err := b.container.NewBlobClient(name).GetProperties(ctx, nil)
	if err != nil {
		return backends.ObjectInfo{}, b.fail(ctx, "stat", key, err)
	}
	info := backends.ObjectInfo{
		Key:       key,
		SHA256:    metaSum(p.Metadata),
		Retention: retention(p.ImmutabilityPolicyMode, p.ImmutabilityPolicyExpiresOn, p.LegalHold),
	}
	if p.ContentLength != nil {
		info.Size = *p.ContentLength
	}
	if p.LastModified != nil {
		info.Modified = *p.LastModified
	}
	return info, nil
}

// List lists the blobs whose keys begin with prefix, with their metadata.
func (b *Backend) List(ctx context.Context, prefix string) ([]backends.ObjectInfo, error) {
	full := b.prefix + prefix
	include := container.ListBlobsInclude{Metadata: true, LegalHold: b.caps.LegalHold, ImmutabilityPolicy: b.caps.Retention}
	pager := b.container.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &full, Include: include})
	var out []backends.ObjectInfo
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, b.fail(ctx, "list", prefix, err)
		}
		for _, item := range page.Segment.BlobItems {
			if item.Name == nil || !strings.HasPrefix(*item.Name, full) {
				return nil, fmt.Errorf("%s: list %q: the service listed a blob outside the prefix", b.name, prefix)
			}
			info := backends.ObjectInfo{Key: strings.TrimPrefix(*item.Name, b.prefix), SHA256: metaSum(item.Metadata)}
			if p := item.Properties; p != nil {
				if p.ContentLength != nil {
					info.Size = *p.ContentLength
				}
				if p.LastModified != nil {
					info.Modified = *p.LastModified
				}
				info.Retention = retention(p.ImmutabilityPolicyMode, p.ImmutabilityPolicyExpiresOn, p.LegalHold)
			}
			out = append(out, info)
		}
	}
	slices.SortFunc(out, func(x, y backends.ObjectInfo) int { return strings.Compare(x.Key, y.Key) })
	return out, nil
}

// SetRetention sets the blob's immutability policy (when r.Mode is set) and
// its legal hold. On a container without immutability support it returns
// ErrUnsupported for anything but clearing a hold, which is then a no-op.
func (b *Backend) SetRetention(ctx context.Context, key string, r backends.Retention) error {
	name, err := b.blobName("set retention", key)
	if err != nil {
		return err
	}
	if err := b.checkRetention(r); err != nil {
		return fmt.Errorf("%s: set retention %q: %w", b.name, key, err)
	}
	bc := b.container.NewBlobClient(name)
	if r.Mode != backends.RetentionNone {
		mode := policyMode(r.Mode)
		if _, err := bc.SetImmutabilityPolicy(ctx, r.Until, &blob.SetImmutabilityPolicyOptions{Mode: &mode}); err != nil {
			return b.fail(ctx, "set retention", key, err)
		}
	}
	if !b.caps.LegalHold {
		// Nothing to set; still say whether the object exists.
		_, err := b.Stat(ctx, key)
		return err
	}
	if _, err := bc.SetLegalHold(ctx, r.LegalHold, nil); err != nil {
		return b.fail(ctx, "set legal hold", key, err)
	}
	return nil
}
