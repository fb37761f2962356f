// Package verify reads a log back for the root package: it checks a log
// against its checkpoints and stored tree (Run), replays its events, and
// builds and opens the proofs of docs/integrity.md. The root package keeps
// the exported API and its types; this package holds the logic.
package verify

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

	"golang.org/x/mod/sumdb/note"

	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/ledger"
	"github.com/willibrandon/mtlog-audit/replica"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// Config is what the root's VerifyOptions set.
type Config struct {
	Keys        []string
	Anchor      []byte
	Progress    func(Progress)
	StoredRoots *replica.Roots // checked only without Keys
	ExtraRoots  [][]byte
	Visit       func(wal.Record) // if set, sees each record read (its Payload only during the call)
}

// Progress is the root's Progress.
type Progress struct {
	Records uint64
	Segment uint64
	Offset  int64
}

// Problem is the root's Problem (the same fields, so that a *Problem
// converts to the root's).
type Problem struct {
	Code     integrity.Code
	Index    uint64
	Exact    bool
	RangeEnd uint64
	Segment  uint64
	Offset   int64
	Detail   string
}

// NoRecord is the root's Problem.NoRecord.
func (p *Problem) NoRecord() bool { return !p.Exact && p.RangeEnd <= p.Index }

// Error is the root's Problem.Error.
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

// Report is the root's IntegrityReport, field for field.
type Report struct {
	Segments     int
	Records      uint64
	Events       uint64
	FirstSeq     uint64
	LastSeq      uint64
	Bytes        int64
	TornTail     *wal.TailInfo
	Checkpoints  int
	Covered      uint64
	Latest       *integrity.Checkpoint
	Epoch        uint64
	NodesChecked uint64
	Retention    *integrity.RetentionCheckpoint
	OK           bool
	Problem      *Problem
}

// Run verifies the log in dir. It reads the checkpoints first, then opens
// the stored tree, and only then reads the records, so that on a live log
// every checkpoint read is covered by the records read (a checkpoint is
// written only after the records it covers, and the tree nodes it covers
// are durable before it is signed): a checkpoint written after the read
// began is not seen, and cannot be taken for a sign of truncation.
func Run(ctx context.Context, fsys vfs.FS, dir string, reader func() *wal.Reader, cfg Config) (*Report, error) {
	vo := integrity.VerifyOptions{Anchor: cfg.Anchor, RotationType: uint8(wal.RecordMeta)}
	// A torn last entry, or one being appended, is left out: only an
	// entry followed by intact data is damage (ReadCheckpointLog).
	cps, cpErr := integrity.ReadCheckpointLog(fsys, filepath.Join(dir, integrity.CheckpointsFile))
	if cpErr != nil && !errors.Is(cpErr, fs.ErrNotExist) && len(cfg.Keys) == 0 {
		cps, cpErr = nil, nil // without keys the checkpoints serve only as sizes (nodesDurable)
	}
	if len(cfg.Keys) > 0 {
		trusted, err := integrity.NewGenesisVerifiers(cfg.Keys...)
		if err != nil {
			return nil, fmt.Errorf("audit: trusted keys: %w", err)
		}
		vo.Trusted = trusted
		if cpErr != nil && !errors.Is(cpErr, fs.ErrNotExist) {
			return nil, fmt.Errorf("audit: read checkpoints: %w", cpErr)
		}
		vo.Checkpoints = cps
	} else if cfg.Anchor != nil {
		return nil, errors.New("audit: an anchor checkpoint needs the trusted public key that signed it (WithTrustedKeys)")
	}
	if nodes, err := integrity.OpenNodeReader(fsys, filepath.Join(dir, integrity.NodesFile)); err == nil {
		defer nodes.Close()
		vo.Nodes, vo.NodesLeaves = nodes, nodes.Leaves()
		if f, err := fsys.Open(filepath.Join(dir, integrity.NodesFile)); err == nil {
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
	rc, err := pruned(fsys, dir, vo.Trusted, v)
	if err != nil {
		return nil, err
	}
	var roots *replica.RootChecker
	if cfg.StoredRoots != nil && len(cfg.Keys) == 0 {
		if roots, err = replica.NewRootChecker(fsys, dir, cfg.StoredRoots, cfg.ExtraRoots); err != nil {
			return nil, err
		}
	}
	var rootProblem *integrity.Problem
	rep := &Report{}
	var stopped bool
	var n uint64
	var undecodable *Problem // the first event that cannot be decoded
	var decodeErr error
	var leftovers uint64 // records the retention checkpoint covers, not yet removed (a crash during a deletion)
	wr, werr := reader().Check(ctx, func(rec wal.Record) error {
		if rc != nil && rec.Seq <= rc.Size {
			leftovers++
			return nil
		}
		if rec.Type == wal.RecordEvent {
			// "Verified" means readable: replay and export decode every
			// event, so verify proves that they can.
			if err := event.Validate(rec.Payload); err != nil && v.Failed() == nil {
				undecodable = &Problem{Code: integrity.CodeEventUndecodable, Index: rec.Seq - 1, Exact: true, Segment: rec.Segment, Offset: rec.Offset,
					Detail: fmt.Sprintf("event %d (sequence number %d) passes its checksums but cannot be decoded, so replay and export cannot read it: %v", rec.Seq-1, rec.Seq, err)}
				decodeErr = err
				stopped = true
				return errStop
			}
		}
		if cfg.Visit != nil {
			cfg.Visit(rec)
		}
		if p := v.Add(rec.Seq-1, rec.Time, uint8(rec.Type), rec.Payload); p != nil {
			stopped = true
			return errStop
		}
		if roots != nil {
			if rootProblem = roots.Add(rec); rootProblem != nil {
				stopped = true
				return errStop
			}
		}
		if cfg.Progress != nil {
			n++
			cfg.Progress(Progress{Records: n, Segment: rec.Segment, Offset: rec.Offset})
		}
		return nil
	})
	if wr != nil {
		rep.Segments, rep.Records, rep.Events = wr.Segments, wr.Records-min(leftovers, wr.Records), wr.Events
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
	rep.Retention = rc
	var ce *wal.CorruptError
	switch {
	case werr != nil && !stopped && errors.As(werr, &ce):
		rep.Problem = &Problem{Code: integrity.CodeRecordCorrupt, Index: ir.Records, Exact: true, Segment: ce.Segment, Offset: ce.Offset, Detail: ce.Reason}
		return rep, fmt.Errorf("%w: %w: %s", ledger.ErrIntegrity, wal.ErrCorrupt, rep.Problem)
	case werr != nil && !stopped:
		return rep, fmt.Errorf("audit: verify %s: %w", dir, werr)
	case rootProblem != nil:
		p := rootProblem
		rep.Problem = &Problem{Code: p.Code, Index: p.Index, Exact: p.Exact, RangeEnd: p.RangeEnd, Detail: p.Detail}
		return rep, fmt.Errorf("%w: %s", ledger.ErrIntegrity, rep.Problem)
	case undecodable != nil:
		rep.Problem = undecodable
		return rep, fmt.Errorf("%w: %s: %w", ledger.ErrIntegrity, rep.Problem, decodeErr)
	case ir.Problem != nil:
		p := ir.Problem
		rep.Problem = &Problem{Code: p.Code, Index: p.Index, Exact: p.Exact, RangeEnd: p.RangeEnd, Detail: p.Detail}
		if p.Code == integrity.CodeUntrustedKey {
			rep.Problem.Detail += "; the keys given are " + strings.Join(integrity.KeyIDs(cfg.Keys...), ", ")
		}
		return rep, fmt.Errorf("%w: %s", ledger.ErrIntegrity, rep.Problem)
	}
	rep.OK = true
	return rep, nil
}

var errStop = errors.New("stop")

// pruned reads the log's retention checkpoint, if any, checks its signature
// with trusted (when keys were given; without them it serves, like the
// stored checkpoints, unchecked) and starts v after the records it covers.
// A retention checkpoint that does not verify is a problem v reports; the
// records it claims were pruned are then missing, and reported as deleted.
func pruned(fsys vfs.FS, dir string, trusted note.Verifiers, v *integrity.Verifier) (*integrity.RetentionCheckpoint, error) {
	raw, ok, err := integrity.ReadRetention(fsys, dir)
	if err != nil && !errors.Is(err, integrity.ErrRetention) {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if !ok && err == nil {
		return nil, nil
	}
	var rc integrity.RetentionCheckpoint
	if err == nil {
		if trusted != nil {
			rc, err = integrity.OpenRetention(raw, trusted)
		} else {
			rc, err = integrity.ParseStoredRetention(raw)
		}
	}
	if err != nil {
		v.Fail(&integrity.Problem{Code: integrity.CodeRetention, Detail: fmt.Sprintf("%s does not verify (%v): the deletion of the log's oldest records it stands for is not authenticated", integrity.RetentionFile, err)})
		return nil, nil
	}
	if p := v.Prune(rc); p != nil {
		return nil, nil
	}
	return &rc, nil
}

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
		if cp, err := ledger.ParseStored(raw); err == nil {
			n = max(n, cp.Size)
		}
	}
	return n
}

// Replay yields the events r reads whose timestamps lie in [from, to) (a
// zero bound is open).
func Replay(ctx context.Context, r *wal.Reader, from, to time.Time) iter.Seq2[*event.Event, error] {
	win := wal.Window{From: from, To: to}
	lo, hi := win.Bounds()
	return func(yield func(*event.Event, error) bool) {
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
