// Package s3test gives tests a fresh bucket on the MinIO that
// scripts/servers/minio.sh starts (found through internal/testservers), for
// the tests of backends/s3, the shipper and restore.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/willibrandon/mtlog-audit/backends/s3"
	"github.com/willibrandon/mtlog-audit/internal/testservers"
)

// The environment variables scripts/servers/minio.sh prints.
const (
	EndpointVar  = "MTLOG_AUDIT_MINIO_ENDPOINT"
	AccessKeyVar = "MTLOG_AUDIT_MINIO_ACCESS_KEY"
	SecretKeyVar = "MTLOG_AUDIT_MINIO_SECRET_KEY"
)

// Server returns the Config of the test MinIO with no bucket set: endpoint,
// credentials, path style and one attempt per request (tests see faults
// at once). It fails (or skips, see testservers.Require) the test when no
// MinIO runs.
func Server(t testing.TB) s3.Config {
	t.Helper()
	v := testservers.Require(t, EndpointVar, AccessKeyVar, SecretKeyVar)
	return s3.Config{Endpoint: v[0], Region: "us-east-1", PathStyle: true, AccessKeyID: v[1], SecretAccessKey: v[2], MaxAttempts: 1}
}

// NewBucket creates a bucket with a fresh name on the test MinIO, with
// Object Lock enabled when objectLock is set, removes it and what it holds
// (bypassing governance retention) when the test ends, and returns the
// Config of a backend on it.
func NewBucket(t testing.TB, objectLock bool) s3.Config {
	t.Helper()
	cfg := Server(t)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	cfg.Bucket = "mtlog-test-" + hex.EncodeToString(rnd[:])
	admin := Admin(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := admin.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: &cfg.Bucket, ObjectLockEnabledForBucket: aws.Bool(objectLock)}); err != nil {
		t.Fatalf("creating bucket %s on %s: %v", cfg.Bucket, cfg.Endpoint, err)
	}
	t.Cleanup(func() { removeBucket(t, admin, cfg.Bucket) })
	return cfg
}

// Admin returns an SDK client for the test MinIO of cfg, for what a test
// does besides the driver (creating buckets, looking at versions).
func Admin(t testing.TB, cfg s3.Config) *awss3.Client {
	t.Helper()
	return awss3.New(awss3.Options{
		Region:       cfg.Region,
		BaseEndpoint: aws.String(cfg.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, ""),
	})
}

// removeBucket deletes every version in bucket and then the bucket, as far
// as retention allows (compliance-mode objects stay until they expire;
// MinIO's data directory is emptied at its next fresh start).
func removeBucket(t testing.TB, c *awss3.Client, bucket string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pages := awss3.NewListObjectVersionsPaginator(c, &awss3.ListObjectVersionsInput{Bucket: &bucket})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return
		}
		var ids []types.ObjectIdentifier
		for _, v := range page.Versions {
			ids = append(ids, types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
		}
		for _, m := range page.DeleteMarkers {
			ids = append(ids, types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
		}
		for _, id := range ids {
			_, _ = c.PutObjectLegalHold(ctx, &awss3.PutObjectLegalHoldInput{Bucket: &bucket, Key: id.Key, VersionId: id.VersionId,
				LegalHold: &types.ObjectLockLegalHold{Status: types.ObjectLockLegalHoldStatusOff}})
			_, _ = c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &bucket, Key: id.Key, VersionId: id.VersionId, BypassGovernanceRetention: aws.Bool(true)})
		}
	}
	if _, err := c.DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: &bucket}); err != nil {
		t.Logf("bucket %s left on the test server: %v", bucket, err)
	}
}

// RemoveAtCleanup removes cfg's bucket and what it holds (as NewBucket does)
// when the test ends, for a bucket the code under test creates itself.
func RemoveAtCleanup(t testing.TB, cfg s3.Config) {
	t.Helper()
	admin := Admin(t, cfg)
	t.Cleanup(func() { removeBucket(t, admin, cfg.Bucket) })
}
