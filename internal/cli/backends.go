package cli

import (
	"context"
	"net/url"

	"github.com/willibrandon/mtlog-audit/backends"
	fsbackend "github.com/willibrandon/mtlog-audit/backends/fs"
)

// openBackend opens the backend a URL names, by scheme. Every error is a
// usage error that names the URL and says what to write.
func openBackend(_ context.Context, raw string) (backends.Backend, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, usageErr("backend URL %q does not parse: %w (write file:///path, s3://bucket/prefix, azure://account/container/prefix or gs://bucket/prefix)", raw, err)
	}
	switch u.Scheme {
	case "file":
		b, err := fsbackend.Open(raw)
		if err != nil {
			return nil, usageErr("backend %s: %w", raw, err)
		}
		return b, nil
	// The cloud drivers (backends/s3, backends/azure, backends/gcs) are
	// added here: case "s3", case "azure", case "gs".
	case "s3", "azure", "gs":
		return nil, usageErr("backend %s: the %s:// driver is not built into this mtlog-audit (copy the objects to a directory and use file:///path)", raw, u.Scheme)
	case "":
		return nil, usageErr("backend URL %q has no scheme (write file:///path, s3://bucket/prefix, azure://account/container/prefix or gs://bucket/prefix)", raw)
	}
	return nil, usageErr("backend URL %q: unknown scheme %q (use file, s3, azure or gs)", raw, u.Scheme)
}
