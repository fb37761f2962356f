package audit

import (
	"context"
	"iter"
	"time"

	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/verify"
	"github.com/willibrandon/mtlog-audit/replica"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// Code says what kind of problem verification found (see the Code*
// constants of package integrity).
type Code = integrity.Code

// Problem is the first thing verification found wrong.
type Problem struct {
	Code Code
	// Index is the first leaf index (sequence number − 1) not proven good:
	// the exact first bad record when Exact, else the start of the range
	// [Index, RangeEnd) in which it lies. Every record before Index was
	// verified. An empty range (see NoRecord) implicates no record.
	Index    uint64
	Exact    bool
	RangeEnd uint64
	// Segment and Offset locate damaged bytes (Code record-corrupt) or
	// the batch holding an event that cannot be decoded (Code
	// event-undecodable).
	Segment uint64
	Offset  int64
	Detail  string
}

// NoRecord reports whether the problem implicates no record: every record
// is proven good, and the problem lies elsewhere (a stored checkpoint that
// cannot be parsed).
func (p *Problem) NoRecord() bool { return (*verify.Problem)(p).NoRecord() }

// Error describes the problem.
func (p *Problem) Error() string { return (*verify.Problem)(p).Error() }

// IntegrityReport is the result of verifying a log.
type IntegrityReport struct {
	Segments int
	Records  uint64 // records of every kind (events, seals, key rotations)
	Events   uint64
	FirstSeq uint64
	LastSeq  uint64
	Bytes    int64
	// TornTail is set when the log ends in bytes a crash left behind that
	// were never acknowledged (Open removes them). It is crash recovery,
	// not tampering.
	TornTail *wal.TailInfo
	// Checkpoints counts stored signed checkpoints that verified (only
	// with trusted keys).
	Checkpoints int
	// Covered is the number of records a verified signed checkpoint (or
	// the anchor) commits to.
	Covered uint64
	// Latest is the newest verified checkpoint.
	Latest *integrity.Checkpoint
	// Epoch is the forward-security key epoch at the end of the log.
	Epoch uint64
	// NodesChecked counts stored tree nodes compared with the records.
	NodesChecked uint64
	// Retention is the log's retention checkpoint when its oldest records
	// were deleted under retention (nil: none were): its Size records were
	// pruned at its Time by its Policy, and verification started after
	// them (docs/retention.md). Records and Covered count from record 1,
	// the pruned ones included in Covered only.
	Retention *integrity.RetentionCheckpoint
	// OK is true when nothing wrong was found. A log can be OK and still
	// have an uncovered tail (see UncoveredTail).
	OK bool
	// Problem is the first problem found (nil when OK).
	Problem *Problem
}

// UncoveredTail returns how many records at the end of the log no verified
// signed checkpoint covers yet.
func (r *IntegrityReport) UncoveredTail() uint64 {
	size := r.Records
	if r.Retention != nil {
		size += r.Retention.Size
	}
	if size > r.Covered {
		return size - r.Covered
	}
	return 0
}

// VerifyOption configures Verify.
type VerifyOption func(*verifyConfig)

type verifyConfig struct {
	keys        []string
	anchor      []byte
	progress    func(Progress)
	storedRoots *replica.Roots // see withStoredRoots
	extraRoots  [][]byte
}

// Progress tells how far a long read of the log has come.
type Progress struct {
	Records uint64 // records read so far
	Segment uint64 // segment being read
	Offset  int64  // offset in that segment of the batch being read
}

// WithProgress calls fn after each record read (fn should be cheap; a
// progress display throttles itself).
func WithProgress(fn func(Progress)) VerifyOption {
	return func(c *verifyConfig) { c.progress = fn }
}

// WithTrustedKeys gives the genesis public keys (name+hash+base64) whose
// signatures make checkpoints count: for a log without forward security its
// key, with forward security the key of epoch 0 (the one given to
// WithSigningKey). Later epochs' keys are learnt only from the log's signed
// rotation statements and count only for their own epoch; two different
// keys with the same name are refused (see integrity.NewGenesisVerifiers).
// Signatures by other keys are ignored; a stored checkpoint with no valid
// trusted signature fails verification (with integrity.CodeUntrustedKey
// when no checkpoint at all is signed by a trusted key). Without trusted
// keys, checkpoints are not checked and nothing counts as covered.
func WithTrustedKeys(vkeys ...string) VerifyOption {
	return func(c *verifyConfig) { c.keys = append(c.keys, vkeys...) }
}

// WithAnchor checks the log against a signed checkpoint obtained from
// outside it (for instance one handed to an auditor earlier): the log must
// reproduce its root, and must not be shorter. It needs trusted keys.
func WithAnchor(signedCheckpoint []byte) VerifyOption {
	return func(c *verifyConfig) { c.anchor = signedCheckpoint }
}

// VerifyIntegrity checks the durable part of the open log: every checksum,
// sequence continuity, the chain between segments, the hash chain and the
// Merkle tree against every stored signed checkpoint (with the Sink's own
// key, when it has one) and the stored tree nodes.
func (s *Sink) VerifyIntegrity() (*IntegrityReport, error) {
	if err := s.logRead(context.Background(), "VerifyIntegrity", "all", ""); err != nil {
		return nil, err
	}
	var opts []VerifyOption
	if s.cfg.ledger.SigningKey != "" {
		if vkey, err := integrity.PublicKeyOf(s.cfg.ledger.SigningKey); err == nil {
			opts = append(opts, WithTrustedKeys(vkey))
		}
	}
	rep, err := verifyLog(context.Background(), s.cfg.fs, s.w.Dir(), s.w.Reader, opts)
	s.verified(err)
	return rep, err
}

// Verify checks the log in dir without opening it for writing (it may be a
// copy, or a log no process has open). It returns a report and, when it
// found a problem, an error matching ErrIntegrity (and ErrCorrupt for
// damaged bytes).
func Verify(ctx context.Context, dir string, opts ...VerifyOption) (*IntegrityReport, error) {
	return VerifyFS(ctx, vfs.OS(), dir, opts...)
}

// VerifyFS is Verify on the given filesystem.
func VerifyFS(ctx context.Context, fsys vfs.FS, dir string, opts ...VerifyOption) (*IntegrityReport, error) {
	if err := RecordRead(ctx, fsys, dir, "Verify", "all", ""); err != nil {
		return nil, err
	}
	return verifyLog(ctx, fsys, dir, func() *wal.Reader { return wal.NewReader(fsys, dir) }, opts)
}

// verifyLog runs verify.Run with the options opts.
func verifyLog(ctx context.Context, fsys vfs.FS, dir string, reader func() *wal.Reader, opts []VerifyOption) (*IntegrityReport, error) {
	var cfg verifyConfig
	for _, o := range opts {
		o(&cfg)
	}
	var progress func(verify.Progress)
	if cfg.progress != nil {
		progress = func(p verify.Progress) { cfg.progress(Progress(p)) }
	}
	var as anchors
	r, err := verify.Run(ctx, fsys, dir, reader, verify.Config{Keys: cfg.keys, Anchor: cfg.anchor, Progress: progress, StoredRoots: cfg.storedRoots, ExtraRoots: cfg.extraRoots, Visit: as.visit})
	if r == nil {
		return nil, err
	}
	if err == nil {
		if err = verifyAccess(ctx, fsys, dir, as, cfg.keys); err != nil {
			r.OK = false
		}
	}
	return &IntegrityReport{Segments: r.Segments, Records: r.Records, Events: r.Events, FirstSeq: r.FirstSeq, LastSeq: r.LastSeq, Bytes: r.Bytes,
		TornTail: r.TornTail, Checkpoints: r.Checkpoints, Covered: r.Covered, Latest: r.Latest, Epoch: r.Epoch, NodesChecked: r.NodesChecked,
		Retention: r.Retention, OK: r.OK, Problem: (*Problem)(r.Problem)}, err
}

// Replay reads the events of the log in dir whose timestamps lie in
// [from, to) (a zero bound is open; any other time.Time, of any year, is
// exact), without opening it for writing.
func Replay(ctx context.Context, dir string, from, to time.Time) iter.Seq2[*Event, error] {
	return ReplayFS(ctx, vfs.OS(), dir, from, to)
}

// ReplayFS is Replay on the given filesystem.
func ReplayFS(ctx context.Context, fsys vfs.FS, dir string, from, to time.Time) iter.Seq2[*Event, error] {
	return loggedSeq(ctx, func(ctx context.Context) error { return RecordRead(ctx, fsys, dir, "Replay", TimeRange(from, to), "") }, func() iter.Seq2[*Event, error] { return verify.Replay(ctx, wal.NewReader(fsys, dir), from, to) })
}
