package s3

import (
	"context"

	"github.com/willibrandon/mtlog-audit/backends"
)

// PutUnchecked is Put with the request signed with signHash as the
// payload's SHA-256 (Put signs it with opts.SHA256), so that a test sees
// the service refuse a signature hash that does not match the bytes.
func PutUnchecked(ctx context.Context, b *Backend, key string, data []byte, opts backends.PutOptions, signHash [32]byte) error {
	return b.put(ctx, key, backends.ReaderAt(data), int64(len(data)), opts, signHash)
}
