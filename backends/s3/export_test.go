package s3

import (
	"context"

	"github.com/willibrandon/mtlog-audit/backends"
)

// PutUnchecked is Put without the driver's own check of opts.SHA256, so
// that a test sees the service refuse a wrong one.
func PutUnchecked(ctx context.Context, b *Backend, key string, data []byte, opts backends.PutOptions) error {
	return b.put(ctx, key, data, opts)
}
