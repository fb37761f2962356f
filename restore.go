package audit

import (
	"context"

	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/replica"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// RestoreReport is what Restore found and wrote (see replica.RestoreReport).
type RestoreReport = replica.RestoreReport

// Restore rebuilds the log in dir on fsys (a new or empty directory) from
// the segment and checkpoint objects that one or more backends hold, and
// verifies the result with opts (give WithTrustedKeys: without keys no
// signature is checked). When the backends disagree it chooses by quorum
// and by verification, and the report names every object it did not take
// and why (see replica.Restore). The error matches replica.ErrNotVerified
// when the result does not verify or is not complete.
func Restore(ctx context.Context, fsys vfs.FS, dir string, sources []backends.Backend, opts ...VerifyOption) (*RestoreReport, error) {
	var cfg verifyConfig
	for _, o := range opts {
		o(&cfg)
	}
	return replica.Restore(ctx, fsys, dir, replica.RestoreOptions{Verify: verifier(opts), Keys: cfg.keys}, sources...)
}
