// Package s3 is the backends.Backend driver for Amazon S3 and the services
// that speak its API (MinIO and others), on aws-sdk-go-v2.
//
// Put is a conditional write (If-None-Match: *) that carries the data's
// SHA-256 (x-amz-checksum-sha256), so the service refuses bytes damaged on
// the way and never replaces an object. Retention is S3 Object Lock:
// PutOptions.Retention becomes the object's lock mode and retain-until date
// (and legal hold) in the same request, and SetRetention extends it or sets
// and clears the legal hold. Object Lock exists only on buckets created with
// it; on others Capabilities reports no retention and a retention asked for
// is refused with backends.ErrUnsupported (or, when Config.RequireObjectLock
// is set, New refuses the bucket).
//
// Objects are named Prefix + "/" + key in the bucket. Credentials come from
// Config or, when it has none, from the SDK's default chain (environment,
// shared files, web identity, container and instance roles).
package s3

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/willibrandon/mtlog-audit/backends"
)

// Config configures an S3 backend. Bucket is required; the zero value of
// every other field is a sensible default.
type Config struct {
	// Bucket is the bucket's name (required). It must exist.
	Bucket string
	// Prefix, if not empty, is prepended to every key with a "/" between
	// them; it follows the rules of backends.CheckKey.
	Prefix string
	// Endpoint is the service's base URL, for MinIO and other S3-compatible
	// services ("http://127.0.0.1:9000"); empty means AWS.
	Endpoint string
	// Region is the bucket's region; empty means the SDK's default chain
	// (AWS_REGION, the shared config), and "us-east-1" if that has none.
	Region string
	// PathStyle addresses the bucket in the URL's path rather than its host
	// name, as MinIO and most other S3-compatible services need.
	PathStyle bool
	// AccessKeyID, SecretAccessKey and SessionToken are explicit
	// credentials; when AccessKeyID is empty the SDK's default chain is used.
	AccessKeyID, SecretAccessKey, SessionToken string
	// RequireObjectLock makes New refuse a bucket that was not created with
	// Object Lock, for profiles and options that ask for immutable copies.
	RequireObjectLock bool
	// MaxAttempts is how many times the SDK tries a request that failed in a
	// way worth retrying (a network error, a 5xx, throttling); 0 means the
	// SDK's default (3), 1 means no retry (the shipper retries itself).
	MaxAttempts int
}

// Errors of New and Open that their errors match (errors.Is), beside the
// context's errors. Each error also names the backend and says what to do.
var (
	// ErrConfig: the Config or URL is not usable.
	ErrConfig = errors.New("s3: invalid configuration")
	// ErrAccess: the service refused the credentials, or they give no
	// access to the bucket.
	ErrAccess = errors.New("s3: access denied")
	// ErrNoBucket: the bucket does not exist.
	ErrNoBucket = errors.New("s3: no such bucket")
	// ErrNoObjectLock: Config.RequireObjectLock is set and the bucket has no
	// Object Lock.
	ErrNoObjectLock = errors.New("s3: bucket has no Object Lock")
	// ErrProtocol: the endpoint's answer is not an S3 answer.
	ErrProtocol = errors.New("s3: endpoint does not answer as S3")
)

// Backend is an S3 bucket (and prefix) as a backends.Backend. It is safe for
// concurrent use.
type Backend struct {
	client *awss3.Client
	bucket string
	prefix string // "" or ends with "/"
	name   string
	caps   backends.Capabilities
}

var _ backends.Backend = (*Backend)(nil)

// New returns a Backend for cfg after checking, with one request bounded by
// ctx, that the bucket exists, that the credentials reach it and whether it
// has Object Lock. Its errors match ErrConfig, ErrAccess, ErrNoBucket,
// ErrNoObjectLock, ErrProtocol or the context's error.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	name := "s3://" + cfg.Bucket
	if cfg.Prefix != "" {
		name += "/" + cfg.Prefix
	}
	if cfg.Bucket == "" {
		return nil, fmt.Errorf("%w: %s: the bucket name is empty", ErrConfig, name)
	}
	if cfg.Prefix != "" {
		if err := backends.CheckKey(cfg.Prefix); err != nil {
			return nil, fmt.Errorf("%w: %s: prefix: %w", ErrConfig, name, err)
		}
	}
	if (cfg.AccessKeyID == "") != (cfg.SecretAccessKey == "") {
		return nil, fmt.Errorf("%w: %s: give both the access key ID and the secret access key, or neither (to use the default credential chain)", ErrConfig, name)
	}
	if cfg.MaxAttempts < 0 {
		return nil, fmt.Errorf("%w: %s: MaxAttempts is %d: use 0 for the default or a positive count", ErrConfig, name, cfg.MaxAttempts)
	}
	client, err := newClient(ctx, cfg, name)
	if err != nil {
		return nil, err
	}
	b := &Backend{client: client, bucket: cfg.Bucket, name: name}
	if cfg.Prefix != "" {
		b.prefix = cfg.Prefix + "/"
	}
	if err := b.probe(ctx, cfg); err != nil {
		return nil, err
	}
	return b, nil
}

// newClient builds the SDK client of cfg (backend name for errors).
func newClient(ctx context.Context, cfg Config, name string) (*awss3.Client, error) {
	var loadOpts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKeyID != "" {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)))
	}
	if cfg.MaxAttempts > 0 {
		loadOpts = append(loadOpts, config.WithRetryMaxAttempts(cfg.MaxAttempts))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: loading the AWS configuration: %w", ErrConfig, name, err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	client := awss3.NewFromConfig(awsCfg, func(o *awss3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	return client, nil
}

// CreateBucket creates cfg's bucket, with Object Lock when objectLock is
// set (S3 enables Object Lock only at creation). A bucket that already
// exists and is the caller's is not an error. It is for setting up: a quick
// start, a test, a provisioning script; production buckets usually come
// from infrastructure code, with a default retention.
func CreateBucket(ctx context.Context, cfg Config, objectLock bool) error {
	name := "s3://" + cfg.Bucket
	if cfg.Bucket == "" {
		return fmt.Errorf("%w: %s: the bucket name is empty", ErrConfig, name)
	}
	client, err := newClient(ctx, cfg, name)
	if err != nil {
		return err
	}
	_, err = client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: &cfg.Bucket, ObjectLockEnabledForBucket: aws.Bool(objectLock)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("%s: create bucket: %w", name, err)
	}
	return nil
}

// probe asks for the bucket's Object Lock configuration: one request that
// tells whether the bucket exists, whether the credentials reach it and
// whether it has Object Lock.
func (b *Backend) probe(ctx context.Context, cfg Config) error {
	out, err := b.client.GetObjectLockConfiguration(ctx, &awss3.GetObjectLockConfigurationInput{Bucket: &b.bucket})
	code := errorCode(err)
	switch {
	case err == nil && (out.ObjectLockConfiguration == nil || out.ObjectLockConfiguration.ObjectLockEnabled == ""):
		// S3 answers either a configuration that says Enabled or the
		// error ObjectLockConfigurationNotFoundError: this is neither.
		return fmt.Errorf("%w: %s: %s answered the request for the bucket's Object Lock configuration without one: check the endpoint URL",
			ErrProtocol, b.name, b.endpointName(cfg))
	case err == nil:
		on := out.ObjectLockConfiguration.ObjectLockEnabled == types.ObjectLockEnabledEnabled
		b.caps = backends.Capabilities{Retention: on, LegalHold: on, ServerChecksum: true}
	case code == "ObjectLockConfigurationNotFoundError":
		// MinIO answers so for a bucket that does not exist, too.
		if _, err := b.client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: &b.bucket}); err != nil {
			return b.probeFailed(ctx, cfg, err)
		}
		b.caps = backends.Capabilities{ServerChecksum: true}
	default:
		return b.probeFailed(ctx, cfg, err)
	}
	if cfg.RequireObjectLock && !b.caps.Retention {
		return fmt.Errorf("%w: %s: immutable copies are required but bucket %q was created without Object Lock: "+
			"use a bucket created with Object Lock enabled (it cannot be turned on later on every service)", ErrNoObjectLock, b.name, b.bucket)
	}
	return nil
}

// probeFailed explains the error err of a request of probe.
func (b *Backend) probeFailed(ctx context.Context, cfg Config, err error) error {
	code := errorCode(err)
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s: reaching %s: %w", b.name, b.endpointName(cfg), ctx.Err())
	case code == "NoSuchBucket" || code == "NotFound" || httpStatus(err) == 404 && code != "":
		return fmt.Errorf("%w: %s: bucket %q does not exist at %s: create it (with Object Lock enabled, for immutable copies) or fix the name: %w",
			ErrNoBucket, b.name, b.bucket, b.endpointName(cfg), err)
	case code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" || code == "AccessDenied" ||
		code == "InvalidToken" || code == "ExpiredToken" || code == "Forbidden":
		return fmt.Errorf("%w: %s: %s refused the credentials (%s): check the access key and secret, and that they may read bucket %q: %w",
			ErrAccess, b.name, b.endpointName(cfg), code, b.bucket, err)
	case isProtocolError(err):
		return fmt.Errorf("%w: %s: %s answered something that is not an S3 answer: check the endpoint URL: %w",
			ErrProtocol, b.name, b.endpointName(cfg), err)
	case httpStatus(err) >= 500:
		return fmt.Errorf("%s: checking bucket %q: %s failed with HTTP %d: retry later, or check the endpoint URL: %w",
			b.name, b.bucket, b.endpointName(cfg), httpStatus(err), err)
	default:
		return fmt.Errorf("%s: checking bucket %q at %s: %w", b.name, b.bucket, b.endpointName(cfg), err)
	}
}

func (b *Backend) endpointName(cfg Config) string {
	if cfg.Endpoint != "" {
		return cfg.Endpoint
	}
	return "AWS S3"
}

// Name returns "s3://bucket" or "s3://bucket/prefix".
func (b *Backend) Name() string { return b.name }

// Capabilities reports retention and legal hold when the bucket has Object
// Lock, and server-side checksums always.
func (b *Backend) Capabilities() backends.Capabilities { return b.caps }

// Close releases nothing: the SDK's client holds only idle connections.
func (b *Backend) Close() error { return nil }

func (b *Backend) objectKey(key string) (string, error) {
	if err := backends.CheckKey(key); err != nil {
		return "", fmt.Errorf("%s: %w", b.name, err)
	}
	return b.prefix + key, nil
}

// Put stores data as key if no object of that name exists, with the
// service checking opts.SHA256 against the bytes it receives; see
// backends.Backend.
func (b *Backend) Put(ctx context.Context, key string, body io.ReaderAt, size int64, opts backends.PutOptions) error {
	if _, err := b.objectKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: put %s: %w", b.name, key, err)
	}
	return b.put(ctx, key, body, size, opts, opts.SHA256)
}

// put is Put; signHash is the SHA-256 the request is signed with
// (x-amz-content-sha256), which Put takes from opts too, so that tests can
// see the service refuse a wrong one. The bytes are not hashed here: the
// service checks them against both the signature's hash and the
// x-amz-checksum-sha256 header, and refuses the request (ErrChecksum) when
// they differ.
func (b *Backend) put(ctx context.Context, key string, body io.ReaderAt, size int64, opts backends.PutOptions, signHash [32]byte) error {
	ok, err := b.objectKey(key)
	if err != nil {
		return err
	}
	in := &awss3.PutObjectInput{
		Bucket:            &b.bucket,
		Key:               &ok,
		ContentLength:     aws.Int64(size),
		IfNoneMatch:       aws.String("*"),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		ChecksumSHA256:    aws.String(base64.StdEncoding.EncodeToString(opts.SHA256[:])),
		ContentType:       aws.String("application/octet-stream"),
	}
	if r := opts.Retention; !r.IsZero() {
		if !b.caps.Retention {
			return fmt.Errorf("%w: %s: put %s with retention: bucket %q has no Object Lock", backends.ErrUnsupported, b.name, key, b.bucket)
		}
		if err := checkRetention(r); err != nil {
			return fmt.Errorf("%s: put %s: %w", b.name, key, err)
		}
		if r.Mode != backends.RetentionNone {
			in.ObjectLockMode = lockMode(r.Mode)
			in.ObjectLockRetainUntilDate = aws.Time(r.Until.UTC())
		}
		if r.LegalHold {
			in.ObjectLockLegalHoldStatus = types.ObjectLockLegalHoldStatusOn
		}
	}
	// The SHA-256 that signs the request is the one already known, not a
	// second pass over the data (the service checks the body against it).
	payloadHash := hex.EncodeToString(signHash[:])
	signed := awss3.WithAPIOptions(func(st *middleware.Stack) error {
		return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("mtlogAuditPayloadHash",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				return next.HandleFinalize(v4.SetPayloadHash(ctx, payloadHash), in)
			}), middleware.Before)
	})
	for attempt := 1; ; attempt++ {
		in.Body = io.NewSectionReader(body, 0, size)
		_, err = b.client.PutObject(ctx, in, signed)
		// AWS answers 409 ConditionalRequestConflict while another
		// conditional write of the key is in flight; once it ends, the key
		// exists (412, ErrExists) or is free again.
		if errorCode(err) != "ConditionalRequestConflict" || attempt == conflictAttempts || !wait(ctx, time.Duration(attempt)*20*time.Millisecond) {
			break
		}
	}
	if err == nil {
		return nil
	}
	switch code := errorCode(err); {
	case httpStatus(err) == 412 || code == "PreconditionFailed":
		return fmt.Errorf("%w: %s: put %s: %w", backends.ErrExists, b.name, key, err)
	case code == "BadDigest" || code == "XAmzContentChecksumMismatch" || code == "XAmzContentSHA256Mismatch" || code == "InvalidDigest":
		return fmt.Errorf("%w: %s: put %s: the service found that the bytes it received do not match the SHA-256: %w", backends.ErrChecksum, b.name, key, err)
	}
	return b.fail("put", key, err)
}

// conflictAttempts is how many times Put sends a request that the service
// answers with ConditionalRequestConflict.
const conflictAttempts = 5

// wait waits for d, or returns false when ctx ends first.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// checkRetention refuses a retention that cannot be applied as asked.
func checkRetention(r backends.Retention) error {
	switch {
	case r.Mode == backends.RetentionNone && !r.Until.IsZero():
		return fmt.Errorf("retention until %s has no mode: set Mode to governance or compliance", r.Until.Format(time.RFC3339))
	case r.Mode != backends.RetentionNone && r.Mode != backends.RetentionGovernance && r.Mode != backends.RetentionCompliance:
		return fmt.Errorf("unknown retention mode %v", r.Mode)
	case r.Mode != backends.RetentionNone && r.Until.IsZero():
		return fmt.Errorf("%v retention has no end date: set Until", r.Mode)
	}
	return nil
}

func lockMode(m backends.RetentionMode) types.ObjectLockMode {
	if m == backends.RetentionCompliance {
		return types.ObjectLockModeCompliance
	}
	return types.ObjectLockModeGovernance
}

func retentionMode(m types.ObjectLockMode) backends.RetentionMode {
	switch m {
	case types.ObjectLockModeCompliance:
		return backends.RetentionCompliance
	case types.ObjectLockModeGovernance:
		return backends.RetentionGovernance
	}
	return backends.RetentionNone
}

// Get returns the object's content; the SDK checks it against the SHA-256
// the service stored with it.
func (b *Backend) Get(ctx context.Context, key string) ([]byte, error) {
	ok, err := b.objectKey(key)
	if err != nil {
		return nil, err
	}
	out, err := b.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: &b.bucket, Key: &ok, ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		return nil, b.fail("get", key, err)
	}
	defer out.Body.Close()
	var buf bytes.Buffer
	if out.ContentLength != nil && *out.ContentLength > 0 {
		buf.Grow(int(*out.ContentLength))
	}
	if _, err := io.Copy(&buf, out.Body); err != nil {
		// The SDK's checksum validation error has an unexported type:
		// its text is all there is to recognise it by.
		if strings.Contains(err.Error(), "checksum did not match") {
			return nil, fmt.Errorf("%w: %s: get %s: %w", backends.ErrChecksum, b.name, key, err)
		}
		return nil, b.fail("get", key, err)
	}
	if out.ContentLength != nil && int64(buf.Len()) != *out.ContentLength {
		return nil, fmt.Errorf("%s: get %s: read %d bytes of %d", b.name, key, buf.Len(), *out.ContentLength)
	}
	return buf.Bytes(), nil
}

// Stat returns the object's size, modification time, retention and, when
// the service stored one for the whole object, its SHA-256.
func (b *Backend) Stat(ctx context.Context, key string) (backends.ObjectInfo, error) {
	ok, err := b.objectKey(key)
	if err != nil {
		return backends.ObjectInfo{}, err
	}
	out, err := b.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &b.bucket, Key: &ok, ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		return backends.ObjectInfo{}, b.fail("stat", key, err)
	}
	info := backends.ObjectInfo{Key: key, Size: aws.ToInt64(out.ContentLength), Modified: aws.ToTime(out.LastModified)}
	if s := aws.ToString(out.ChecksumSHA256); s != "" && out.ChecksumType != types.ChecksumTypeComposite {
		if sum, err := base64.StdEncoding.DecodeString(s); err == nil && len(sum) == 32 {
			info.SHA256 = sum
		}
	}
	info.Retention.Mode = retentionMode(out.ObjectLockMode)
	if info.Retention.Mode != backends.RetentionNone {
		info.Retention.Until = aws.ToTime(out.ObjectLockRetainUntilDate)
	}
	info.Retention.LegalHold = out.ObjectLockLegalHoldStatus == types.ObjectLockLegalHoldStatusOn
	return info, nil
}

// List returns the objects whose keys begin with prefix, in increasing key
// order, following the service's pages. Objects under the backend's prefix
// whose names are not valid keys (backends.CheckKey), which no Put of this
// driver writes, are left out.
func (b *Backend) List(ctx context.Context, prefix string) ([]backends.ObjectInfo, error) {
	p := b.prefix + prefix
	pages := awss3.NewListObjectsV2Paginator(b.client, &awss3.ListObjectsV2Input{Bucket: &b.bucket, Prefix: &p})
	var infos []backends.ObjectInfo
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, b.fail("list", prefix, err)
		}
		for _, o := range page.Contents {
			k, ok := strings.CutPrefix(aws.ToString(o.Key), b.prefix)
			if !ok || backends.CheckKey(k) != nil {
				continue // not an object of this backend (or a name it would never write)
			}
			infos = append(infos, backends.ObjectInfo{Key: k, Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)})
		}
	}
	slices.SortFunc(infos, func(x, y backends.ObjectInfo) int { return strings.Compare(x.Key, y.Key) })
	return infos, nil
}

// SetRetention sets the object's legal hold to r.LegalHold and, when r.Mode
// is set, its Object Lock retention to r.Mode until r.Until.
func (b *Backend) SetRetention(ctx context.Context, key string, r backends.Retention) error {
	ok, err := b.objectKey(key)
	if err != nil {
		return err
	}
	if !b.caps.LegalHold {
		return fmt.Errorf("%w: %s: set retention of %s: bucket %q has no Object Lock", backends.ErrUnsupported, b.name, key, b.bucket)
	}
	if err := checkRetention(r); err != nil {
		return fmt.Errorf("%s: set retention of %s: %w", b.name, key, err)
	}
	if r.Mode != backends.RetentionNone {
		_, err := b.client.PutObjectRetention(ctx, &awss3.PutObjectRetentionInput{
			Bucket: &b.bucket, Key: &ok,
			Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionMode(lockMode(r.Mode)), RetainUntilDate: aws.Time(r.Until.UTC())},
		})
		if err != nil {
			return b.fail("set retention of", key, err)
		}
	}
	hold := types.ObjectLockLegalHoldStatusOff
	if r.LegalHold {
		hold = types.ObjectLockLegalHoldStatusOn
	}
	_, err = b.client.PutObjectLegalHold(ctx, &awss3.PutObjectLegalHoldInput{
		Bucket: &b.bucket, Key: &ok, LegalHold: &types.ObjectLockLegalHold{Status: hold},
	})
	if err != nil {
		return b.fail("set legal hold of", key, err)
	}
	return nil
}

// fail wraps err of operation op on key, matching backends.ErrNotFound when
// the service says there is no such object.
func (b *Backend) fail(op, key string, err error) error {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) || errorCode(err) == "NoSuchKey" || errorCode(err) == "NoSuchVersion" {
		return fmt.Errorf("%w: %s: %s %s: %w", backends.ErrNotFound, b.name, op, key, err)
	}
	if isProtocolError(err) {
		return fmt.Errorf("%w: %s: %s %s: %w", ErrProtocol, b.name, op, key, err)
	}
	return fmt.Errorf("%s: %s %s: %w", b.name, op, key, err)
}

// errorCode returns the service's error code in err ("NoSuchBucket"), or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// httpStatus returns the HTTP status of the service's answer in err, or 0.
func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// isProtocolError reports whether err says the answer could not be read as
// an S3 answer.
func isProtocolError(err error) bool {
	var de *smithy.DeserializationError
	if errors.As(err, &de) {
		return true
	}
	// An error status whose body is not S3's XML error document.
	code := errorCode(err)
	return httpStatus(err) != 0 && (code == "" || strings.ContainsAny(code, " <>"))
}
