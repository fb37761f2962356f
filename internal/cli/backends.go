package cli

import (
	"context"

	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/backends/all"
)

// openBackend opens the backend a URL names, by scheme (backends/all:
// file, s3, azure, gs). Every error is a usage error that names the URL and
// says what to write; a service that cannot be reached is named too.
func openBackend(ctx context.Context, raw string) (backends.Backend, error) {
	b, err := all.Open(ctx, raw)
	if err != nil {
		return nil, usageErr("%w", err)
	}
	return b, nil
}
