package s3

import (
	"context"

	"github.com/willibrandon/mtlog-audit/backends"
)

// PutUnchecked is Put without the driver's own check of opts.SHA256, so
// that a test sees the service refuse a wrong one; the request is signed
// with signHash as the payload's SHA-256.
func PutUnchecked(ctx context.Context, b *Backend, key string, data []byte, opts backends.PutOptions, signHash [32]byte) error {
	return b.put(ctx, key, data, opts, signHash)
}
