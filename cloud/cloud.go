// Package cloud gives the shorthands for shipping a log to the cloud object
// stores: WithS3, WithAzure and WithGCS return an audit.Option that opens
// the backend when audit.New runs (audit.WithShippingOpen), and WithURL
// does the same for a backend URL of any driver.
//
//	sink, err := audit.New(
//		audit.WithWAL("/var/lib/app/audit"),
//		cloud.WithS3(s3.Config{Bucket: "audit-eu", Prefix: "host-1", RequireObjectLock: true}),
//		cloud.WithGCS(gcs.Config{Bucket: "audit-copy", Prefix: "host-1"}),
//		audit.WithShippingQuorum(2), // both must hold an object before it counts
//	)
//
// Several shorthands, and audit.WithShipping, form one set of backends under
// one quorum (audit.WithShipping documents how it is chosen). The package
// sits above audit, like the adapters, so that the root package does not
// import any cloud SDK; it imports all three (as backends/all does): a
// program that must compile only one SDK opens that driver's backend itself
// and passes it to audit.WithShipping.
//
// A backend opened by a shorthand is checked at New: a configuration the
// driver refuses, refused credentials, a missing bucket or container, a
// store without immutability when the Config requires it, and a service that
// does not answer within 30 seconds make New fail with an error that names
// the backend and matches audit.ErrShipping and the driver's error. Once
// New succeeded, a backend that goes down delays no write: it shows in
// Sink.ShippingHealth and the failure handler, and is retried.
package cloud

import (
	"context"
	"fmt"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/backends/all"
	"github.com/willibrandon/mtlog-audit/backends/azure"
	"github.com/willibrandon/mtlog-audit/backends/gcs"
	"github.com/willibrandon/mtlog-audit/backends/s3"
)

// opener turns a driver's constructor into an audit.BackendOpener whose
// errors name the shorthand and the backend.
func opener[B backends.Backend](label string, open func(context.Context) (B, error)) audit.Option {
	return audit.WithShippingOpen(func(ctx context.Context) (backends.Backend, error) {
		b, err := open(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
		return b, nil
	})
}

// name is how the shorthands name a backend before it is open.
func name(scheme, bucket, prefix string) string {
	n := scheme + "://" + bucket
	if prefix != "" {
		n += "/" + prefix
	}
	return n
}

// WithS3 ships the log to the S3 bucket (or MinIO, with cfg.Endpoint) that
// cfg describes (backends/s3.New), with a quorum of 1 unless the set's
// quorum is set otherwise.
func WithS3(cfg s3.Config) audit.Option {
	return opener("cloud.WithS3("+name("s3", cfg.Bucket, cfg.Prefix)+")", func(ctx context.Context) (*s3.Backend, error) {
		return s3.New(ctx, cfg)
	})
}

// WithAzure ships the log to the Azure Blob container that cfg describes
// (backends/azure.New), with a quorum of 1 unless the set's quorum is set
// otherwise.
func WithAzure(cfg azure.Config) audit.Option {
	return opener("cloud.WithAzure("+name("azure", cfg.Account+"/"+cfg.Container, cfg.Prefix)+")", func(ctx context.Context) (*azure.Backend, error) {
		return azure.New(ctx, cfg)
	})
}

// WithGCS ships the log to the Cloud Storage bucket that cfg describes
// (backends/gcs.New), with a quorum of 1 unless the set's quorum is set
// otherwise.
func WithGCS(cfg gcs.Config) audit.Option {
	return opener("cloud.WithGCS("+name("gs", cfg.Bucket, cfg.Prefix)+")", func(ctx context.Context) (*gcs.Backend, error) {
		return gcs.New(ctx, cfg)
	})
}

// WithURL ships the log to the backend rawURL names, of any driver
// (backends/all.Open: file://, s3://, azure://, gs://; credentials from the
// driver's usual environment), with a quorum of 1 unless the set's quorum
// is set otherwise.
func WithURL(rawURL string) audit.Option {
	return opener("cloud.WithURL", func(ctx context.Context) (backends.Backend, error) {
		return all.Open(ctx, rawURL)
	})
}
