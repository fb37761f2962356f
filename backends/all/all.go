// Package all opens a backend of any driver from its URL. It imports every
// driver, and so every cloud SDK: a program that needs one driver imports
// that driver's package instead.
package all

import (
	"context"
	"fmt"
	"net/url"

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
