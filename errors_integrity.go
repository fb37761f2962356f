package audit

import "github.com/willibrandon/mtlog-audit/internal/ledger"

var (
	// ErrIntegrity is matched by errors that report a log whose records,
	// tree or checkpoints disagree with each other (tampering, or damage
	// that checksums cannot see).
	ErrIntegrity = ledger.ErrIntegrity
	// ErrUnauthenticated is matched (together with ErrIntegrity) by the
	// error of a signed log that holds, after its last signed checkpoint,
	// records whose batch authentication tag is missing or wrong: records
	// appended by someone without the signing key. The writer refuses to
	// open such a log rather than sign them (docs/integrity.md).
	ErrUnauthenticated = ledger.ErrUnauthenticated
	// ErrEpochKeyMismatch is matched by the error of New when the log's
	// forward-security key file (epoch.key) disagrees with the log: its
	// epoch or its key is not the one the log's newest rotation statement
	// (or last signed checkpoint, or the genesis key) establishes. Signing
	// with it would produce checkpoints the log's own verifiers reject.
	ErrEpochKeyMismatch = ledger.ErrEpochKeyMismatch
)
