// Package all opens a backend of any driver from its URL. It imports every
// driver, and so every cloud SDK: a program that needs one driver imports
// that driver's package instead.
package all

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"

	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/backends/azure"
	"github.com/willibrandon/mtlog-audit/backends/fs"
	"github.com/willibrandon/mtlog-audit/backends/gcs"
	"github.com/willibrandon/mtlog-audit/backends/s3"
)

// Schemes lists the URL forms Open accepts, for help texts and errors.
const Schemes = "file:///abs/path, s3://bucket/prefix?endpoint=…&region=…, azure://account/container/prefix?endpoint=…, gs://bucket/prefix"

// Open returns the backend rawURL names: file:// (backends/fs), s3://
// (backends/s3), azure:// (backends/azure) or gs:// (backends/gcs). Each
// driver documents its URL's parameters and where its credentials come
// from (never from the URL). The drivers that reach a service check it
// within ctx.
func Open(ctx context.Context, rawURL string) (backends.Backend, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("backend URL %q does not parse: %w (use one of %s)", rawURL, err, Schemes)
	}
	switch u.Scheme {
	case "file":
		return fs.Open(rawURL)
	case "s3":
		return s3.Open(ctx, rawURL)
	case "azure":
		return azure.Open(ctx, rawURL)
	case "gs":
		return gcs.Open(ctx, rawURL)
	}
	return nil, fmt.Errorf("backend URL %q: unknown scheme %q (use one of %s)", rawURL, u.Scheme, Schemes)
}

// InitOptions configure Init.
type InitOptions struct {
	// Immutable asks for a store that keeps objects immutable: a new S3
	// bucket gets Object Lock, a new GCS bucket object retention, and a new
	// Azure container that the account did not give version-level
	// immutability is deleted again. Init fails then with an error
	// matching backends.ErrUnsupported; it does not check a store that
	// existed (the caller reads Capabilities).
	Immutable bool
	// Project is the Google Cloud project a new GCS bucket is created in
	// (default: $GOOGLE_CLOUD_PROJECT; not needed against an emulator).
	Project string
}

// Init creates the store rawURL names when it is missing and its driver can
// create it: a directory (mode 0700), an S3 bucket (s3.CreateBucket), an
// Azure container (azure.CreateContainer) or a GCS bucket
// (gcs.CreateBucket). It then opens the backend as Open does, without
// requiring immutability, and says whether it created the store. Only a
// missing store is created: any other answer of the service (refused
// credentials, a wrong endpoint) is Open's error, which names the backend.
func Init(ctx context.Context, rawURL string, opts InitOptions) (b backends.Backend, created bool, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		_, err := Open(ctx, rawURL) // the error that lists the URL forms
		return nil, false, err
	}
	switch u.Scheme {
	case "file":
		if u.Path != "" {
			if _, err := os.Stat(u.Path); errors.Is(err, os.ErrNotExist) {
				if err := os.MkdirAll(u.Path, 0o700); err != nil {
					return nil, false, fmt.Errorf("%s: create the directory: %w", rawURL, err)
				}
				created = true
			}
		}
	case "s3":
		cfg, err := s3.ParseURL(rawURL)
		if err != nil {
			return nil, false, err
		}
		created, err = ensure(func() (*s3.Backend, error) { return s3.New(ctx, cfg) }, s3.ErrNoBucket,
			func() error { return s3.CreateBucket(ctx, cfg, opts.Immutable) })
		if err != nil {
			return nil, false, err
		}
	case "azure":
		cfg, err := azure.ParseURL(rawURL)
		if err != nil {
			return nil, false, err
		}
		created, err = ensure(func() (*azure.Backend, error) { return azure.New(ctx, cfg) }, azure.ErrNoContainer, func() error {
			cfg.RequireImmutability = opts.Immutable
			return azure.CreateContainer(ctx, cfg)
		})
		if err != nil {
			return nil, false, err
		}
	case "gs":
		cfg, err := gcs.ParseURL(rawURL)
		if err != nil {
			return nil, false, err
		}
		project := cmp.Or(opts.Project, os.Getenv("GOOGLE_CLOUD_PROJECT"))
		created, err = ensure(func() (*gcs.Backend, error) { return gcs.New(ctx, cfg) }, gcs.ErrNoBucket, func() error {
			cfg.RequireRetention = opts.Immutable
			return gcs.CreateBucket(ctx, cfg, project)
		})
		if err != nil {
			return nil, false, err
		}
	}
	b, err = Open(ctx, rawURL)
	return b, created, err
}

// ensure calls create when open fails with an error matching missing, and
// says whether it did. Any other error of open is left for Open to report.
func ensure[B backends.Backend](open func() (B, error), missing error, create func() error) (bool, error) {
	b, err := open()
	switch {
	case err == nil:
		b.Close()
		return false, nil
	case !errors.Is(err, missing):
		return false, nil
	}
	return true, create()
}
