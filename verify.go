package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"path/filepath"
	"strings"
	"time"

	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/integrity"
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
func (p *Problem) NoRecord() bool { return !p.Exact && p.RangeEnd <= p.Index }

// Error describes the problem.
func (p *Problem) Error() string {
	where := fmt.Sprintf("at index %d", p.Index)
	switch {
	case p.NoRecord():
		where = fmt.Sprintf("(no record implicated; the %d records are proven good)", p.Index)
	case !p.Exact:
		where = fmt.Sprintf("in indexes [%d, %d)", p.Index, p.RangeEnd)
	}
	switch p.Code {
	case integrity.CodeRecordCorrupt:
		where = fmt.Sprintf("in segment %d at offset %d (index %d)", p.Segment, p.Offset, p.Index)
	case integrity.CodeEventUndecodable:
		where = fmt.Sprintf("at index %d (sequence number %d) in the batch at segment %d offset %d", p.Index, p.Index+1, p.Segment, p.Offset)
	}
	return fmt.Sprintf("%s %s: %s", p.Code, where, p.Detail)
}

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
	// OK is true when nothing wrong was found. A log can be OK and still
	// have an uncovered tail (see UncoveredTail).
	OK bool
	// Problem is the first problem found (nil when OK).
	Problem *Problem
}

// UncoveredTail returns how many records at the end of the log no verified
// signed checkpoint covers yet.
func (r *IntegrityReport) UncoveredTail() uint64 {
	if r.Records > r.Covered {
		return r.Records - r.Covered
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
	var opts []VerifyOption
	if s.cfg.ledger.SigningKey != "" {
		if vkey, err := integrity.PublicKeyOf(s.cfg.ledger.SigningKey); err == nil {
			opts = append(opts, WithTrustedKeys(vkey))
		}
	}
	return verify(context.Background(), s.cfg.fs, s.w.Dir(), s.w.Reader, opts)
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
	return verify(ctx, fsys, dir, func() *wal.Reader { return wal.NewReader(fsys, dir) }, opts)
}

// verify reads the checkpoints first, then opens the stored tree, and only
// then reads the records, so that on a live log every checkpoint read is
// covered by the records read (a checkpoint is written only after the
// records it covers, and the tree nodes it covers are durable before it is
// signed): a checkpoint written after the read began is not seen, and
// cannot be taken for a sign of truncation.
func verify(ctx context.Context, fsys vfs.FS, dir string, reader func() *wal.Reader, opts []VerifyOption) (*IntegrityReport, error) {
	var cfg verifyConfig
	for _, o := range opts {
		o(&cfg)
	}
	vo := integrity.VerifyOptions{Anchor: cfg.anchor, RotationType: uint8(wal.RecordMeta)}
	// A torn last entry, or one being appended, is left out: only an
	// entry followed by intact data is damage (ReadCheckpointLog).
	cps, cpErr := integrity.ReadCheckpointLog(fsys, filepath.Join(dir, checkpointsFile))
	if cpErr != nil && !errors.Is(cpErr, fs.ErrNotExist) && len(cfg.keys) == 0 {
		cps, cpErr = nil, nil // without keys the checkpoints serve only as sizes (nodesDurable)
	}
	if len(cfg.keys) > 0 {
		trusted, err := integrity.NewGenesisVerifiers(cfg.keys...)
		if err != nil {
			return nil, fmt.Errorf("audit: trusted keys: %w", err)
		}
		vo.Trusted = trusted
		if cpErr != nil && !errors.Is(cpErr, fs.ErrNotExist) {
			return nil, fmt.Errorf("audit: read checkpoints: %w", cpErr)
		}
		vo.Checkpoints = cps
	} else if cfg.anchor != nil {
		return nil, errors.New("audit: an anchor checkpoint needs the trusted public key that signed it (WithTrustedKeys)")
	}
	if nodes, err := integrity.OpenNodeReader(fsys, filepath.Join(dir, nodesFile)); err == nil {
		defer nodes.Close()
		vo.Nodes, vo.NodesLeaves = nodes, nodes.Leaves()
		if f, err := fsys.Open(filepath.Join(dir, nodesFile)); err == nil {
			defer f.Close()
			if size, err := f.Size(); err == nil {
				vo.NodeStream = bufio.NewReaderSize(io.NewSectionReader(f, 0, size), int(min(max(size, 16), 1<<20)))
			}
		}
	}
	v, err := integrity.NewVerifier(vo)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	var roots *replica.RootChecker
	if cfg.storedRoots != nil && len(cfg.keys) == 0 {
		if roots, err = replica.NewRootChecker(fsys, dir, cfg.storedRoots, cfg.extraRoots); err != nil {
			return nil, err
		}
	}
	var rootProblem *integrity.Problem
	rep := &IntegrityReport{}
	var stopped bool
	var n uint64
	var undecodable *Problem // the first event that cannot be decoded
	var decodeErr error
	wr, werr := reader().Check(ctx, func(rec wal.Record) error {
		if rec.Type == wal.RecordEvent {
			// "Verified" means readable: replay and export decode every
			// event, so verify proves that they can.
			if err := event.Validate(rec.Payload); err != nil && v.Failed() == nil {
				undecodable = &Problem{Code: integrity.CodeEventUndecodable, Index: rec.Seq - 1, Exact: true, Segment: rec.Segment, Offset: rec.Offset,
					Detail: fmt.Sprintf("event %d (sequence number %d) passes its checksums but cannot be decoded, so replay and export cannot read it: %v", rec.Seq-1, rec.Seq, err)}
				decodeErr = err
				stopped = true
				return errStopVerify
			}
		}
		if p := v.Add(rec.Seq-1, rec.Time, uint8(rec.Type), rec.Payload); p != nil {
			stopped = true
			return errStopVerify
		}
		if roots != nil {
			if rootProblem = roots.Add(rec); rootProblem != nil {
				stopped = true
				return errStopVerify
			}
		}
		if cfg.progress != nil {
			n++
			cfg.progress(Progress{Records: n, Segment: rec.Segment, Offset: rec.Offset})
		}
		return nil
	})
	if wr != nil {
		rep.Segments, rep.Records, rep.Events = wr.Segments, wr.Records, wr.Events
		rep.FirstSeq, rep.LastSeq, rep.Bytes, rep.TornTail = wr.FirstSeq, wr.LastSeq, wr.Bytes, wr.TornTail
	}
	if wr != nil {
		v.SetNodesDurable(nodesDurable(cps, wr))
	}
	ir := v.Finish()
	if roots != nil && werr == nil && rootProblem == nil && ir.Problem == nil {
		rootProblem = roots.Finish()
	}
	rep.Checkpoints, rep.Covered, rep.Latest, rep.Epoch, rep.NodesChecked = ir.Checkpoints, ir.Covered, ir.Latest, ir.Epoch, ir.NodesChecked
	var ce *wal.CorruptError
	switch {
	case werr != nil && !stopped && errors.As(werr, &ce):
		rep.Problem = &Problem{Code: integrity.CodeRecordCorrupt, Index: ir.Records, Exact: true, Segment: ce.Segment, Offset: ce.Offset, Detail: ce.Reason}
		return rep, fmt.Errorf("%w: %w: %s", ErrIntegrity, ErrCorrupt, rep.Problem)
	case werr != nil && !stopped:
		return rep, fmt.Errorf("audit: verify %s: %w", dir, werr)
	case rootProblem != nil:
		p := rootProblem
		rep.Problem = &Problem{Code: p.Code, Index: p.Index, Exact: p.Exact, RangeEnd: p.RangeEnd, Detail: p.Detail}
		return rep, fmt.Errorf("%w: %s", ErrIntegrity, rep.Problem)
	case undecodable != nil:
		rep.Problem = undecodable
		return rep, fmt.Errorf("%w: %s: %w", ErrIntegrity, rep.Problem, decodeErr)
	case ir.Problem != nil:
		p := ir.Problem
		rep.Problem = &Problem{Code: p.Code, Index: p.Index, Exact: p.Exact, RangeEnd: p.RangeEnd, Detail: p.Detail}
		if p.Code == integrity.CodeUntrustedKey {
			rep.Problem.Detail += "; the keys given are " + strings.Join(integrity.KeyIDs(cfg.keys...), ", ")
		}
		return rep, fmt.Errorf("%w: %s", ErrIntegrity, rep.Problem)
	}
	rep.OK = true
	return rep, nil
}

var errStopVerify = errors.New("stop")

// nodesDurable returns how many leaves' stored tree nodes the writer had
// made durable: those of every record before the last segment (the ledger
// syncs tree.nodes when a segment is sealed, before the next one is
// created), those up to the last interior seal of the last segment, and
// those covered by a stored checkpoint (tree.nodes is synced
// before each is signed). Later stored nodes may be the torn remains of
// writes a crash interrupted, which the writer recomputes on open: a
// difference there is not damage. cps are the stored checkpoints, read
// before the records; they serve only as sizes, so their signatures do not
// matter.
func nodesDurable(cps [][]byte, wr *wal.Report) uint64 {
	var n uint64
	if wr.LastSegmentStart > 0 {
		n = wr.LastSegmentStart - 1
	}
	// Up to an interior seal too: the ledger syncs tree.nodes at every seal
	// and again on the open that continues after it, before any record
	// follows it.
	n = max(n, wr.LastInteriorSeal)
	for _, raw := range cps {
		if cp, err := parseStored(raw); err == nil {
			n = max(n, cp.Size)
		}
	}
	return n
}

func replay(ctx context.Context, r *wal.Reader, from, to time.Time) iter.Seq2[*Event, error] {
	win := wal.Window{From: from, To: to}
	lo, hi := win.Bounds()
	return func(yield func(*Event, error) bool) {
		for rec, err := range r.Between(ctx, lo, hi) {
			if err != nil {
				yield(nil, err)
				return
			}
			ev, err := event.Decode(rec.Payload)
			if err != nil {
				yield(nil, fmt.Errorf("audit: event %d in segment %d: %w", rec.Seq, rec.Segment, err))
				return
			}
			if !win.Contains(ev.Timestamp) { // Bounds select more where a stored time is at an extreme (see wal.Window)
				continue
			}
			if !yield(ev, nil) {
				return
			}
		}
	}
}

// Replay reads the events of the log in dir whose timestamps lie in
// [from, to) (a zero bound is open; any other time.Time, of any year, is
// exact), without opening it for writing.
func Replay(ctx context.Context, dir string, from, to time.Time) iter.Seq2[*Event, error] {
	return ReplayFS(ctx, vfs.OS(), dir, from, to)
}

// ReplayFS is Replay on the given filesystem.
func ReplayFS(ctx context.Context, fsys vfs.FS, dir string, from, to time.Time) iter.Seq2[*Event, error] {
	return replay(ctx, wal.NewReader(fsys, dir), from, to)
}
