package audit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/replica"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// The repair types are package replica's, which makes repairs; these
// aliases keep them in the one package users import.
type (
	// RepairReport says what a repair found and did (see replica.Report).
	RepairReport = replica.Report
	// RepairAction is one change made to one copy.
	RepairAction = replica.Action
	// RepairOp says what a repair did to one file of one copy.
	RepairOp = replica.Op
	// CopyState is what a repair found in one copy before changing anything.
	CopyState = replica.CopyState
)

// What a repair can do to a file (see replica.Added and the others).
const (
	RepairAdded    = replica.Added
	RepairReplaced = replica.Replaced
	RepairRemoved  = replica.Removed
)

var (
	// ErrRepaired is matched by the *RepairError that New gives the failure
	// handler (with a nil event) when WithRedundancy changed a copy of the
	// log before opening it: a damaged, missing or out-of-date file was
	// replaced from another copy.
	ErrRepaired = errors.New("audit: the log was repaired from a mirror copy")
	// ErrDiverged is matched when copies of the log hold different records
	// that both verify (see replica.ErrDiverged): New and RepairFromMirror
	// refuse, and change nothing.
	ErrDiverged = replica.ErrDiverged
)

// RepairError reports the repair New made when it opened a log with
// WithRedundancy. It is given, with a nil event, to the failure handler (see
// WithFailureHandler), so that a repair is never silent; it matches
// ErrRepaired. Sink.RepairReport returns the same report.
type RepairError struct {
	Report *RepairReport
}

// Error summarises the repair: what was changed, where, and why.
func (e *RepairError) Error() string {
	if e.Report == nil {
		return ErrRepaired.Error()
	}
	return fmt.Sprintf("audit: repaired the log from its mirror copies before opening it (%s); every copy now holds the same verified log through sequence %d", e.Report.Changes(8), e.Report.LastSeq)
}

// Is makes errors.Is(err, ErrRepaired) true.
func (e *RepairError) Is(target error) bool { return target == ErrRepaired }

// RepairReport returns what New repaired when it opened the log with
// WithRedundancy, or nil when it changed nothing (the copies already held
// the same log).
func (s *Sink) RepairReport() *RepairReport { return s.repair }

// RepairFromMirror repairs the log in dir from the copy of it in mirror
// (for instance a directory that WithRedundancy kept), offline: no process
// may have either open. It is the library side of a command such as
// `mtlog-audit recover --mirror DIR`.
//
// Both copies are verified (with opts: give WithTrustedKeys to check signed
// checkpoints too). The repaired log is the verified log with the most
// records that can be made from the two, file by file, a segment damaged in
// both at different places pieced together from the parts of each that
// verify (see replica.Reconcile). It is then written into dir atomically,
// file by file. The mirror is only read (its LOCK file is taken, so that no
// writer runs meanwhile). dir is created if it does not exist.
//
// The report lists every file replaced, added or removed, and why. Nothing
// is changed, and the error says why, when no verified log can be made
// (it wraps the primary's damage: errors.Is(err, ErrCorrupt) and errors.As
// with *wal.CorruptError name segment and offset), when the copies hold
// different records that both verify (ErrDiverged), or when a record that
// verifies in either copy would be missing from the result (ErrDiverged).
func RepairFromMirror(ctx context.Context, fsys vfs.FS, dir, mirror string, opts ...VerifyOption) (*RepairReport, error) {
	if dir == "" || mirror == "" {
		return nil, errors.New("audit: RepairFromMirror: both the log directory and the mirror directory are required")
	}
	if filepath.Clean(dir) == filepath.Clean(mirror) {
		return nil, fmt.Errorf("audit: RepairFromMirror: %s is both the log and its mirror", dir)
	}
	var cfg verifyConfig
	for _, o := range opts {
		o(&cfg)
	}
	return replica.Reconcile(ctx, replica.Options{Verify: verifier(opts), Keyless: len(cfg.keys) == 0, Thorough: true, CreateMissing: true},
		replica.Copy{Replica: vfs.Replica{FS: fsys, Dir: dir}, Writable: true},
		replica.Copy{Replica: vfs.Replica{FS: fsys, Dir: mirror}})
}

// openMirrors is the repair-on-open step of New with WithRedundancy: it
// creates missing copies, reconciles and repairs them, and switches cfg to a
// vfs.Mirror of the copies (with the WithRedundancyQuorum policy, stale
// copies reported to the failure handler). It returns the mirror, and the
// report when it changed anything.
func openMirrors(cfg *config) (*vfs.Mirror, *RepairReport, error) {
	var vopts []VerifyOption
	if cfg.ledger.SigningKey != "" {
		if vkey, err := integrity.PublicKeyOf(cfg.ledger.SigningKey); err == nil {
			vopts = append(vopts, WithTrustedKeys(vkey))
		}
	}
	quorum := len(cfg.mirrors) + 1 // without WithRedundancyQuorum, every copy
	if cfg.quorum != nil {
		quorum = cfg.quorum.copies
	}
	m, rep, err := replica.OpenMirror(context.Background(), cfg.fs, cfg.dir, cfg.mirrors, replica.Options{Verify: verifier(vopts), Owner: cfg.wal.Owner, Quorum: quorum})
	if err != nil {
		return nil, nil, err
	}
	if q := cfg.quorum; q != nil {
		onFailure := cfg.onFailure
		p := vfs.MirrorPolicy{Quorum: q.copies, Timeout: q.timeout, Now: cfg.wal.Now, OnStale: func(st vfs.MirrorStatus) {
			onFailure(nil, &MirrorStaleError{Dir: st.Dir, Since: st.Since, Err: st.Err})
		}}
		if m, err = m.WithPolicy(p); err != nil {
			return nil, nil, fmt.Errorf("audit: WithRedundancyQuorum: %w", err)
		}
	}
	cfg.fs = m
	return m, rep, nil
}

// verifier is VerifyFS with opts, as package replica needs it.
func verifier(opts []VerifyOption) replica.Verifier {
	return func(ctx context.Context, fsys vfs.FS, dir string, roots *replica.Roots, extra [][]byte) (*replica.Result, error) {
		vopts := opts
		if roots != nil {
			vopts = append(slices.Clone(opts), withStoredRoots(roots, extra))
		}
		rep, err := VerifyFS(ctx, fsys, dir, vopts...)
		if rep == nil {
			return nil, err
		}
		res := &replica.Result{LastSeq: rep.LastSeq, Checkpoints: rep.Checkpoints, TornTail: rep.TornTail}
		if p := rep.Problem; p != nil {
			res.Problem = &replica.Problem{Code: p.Code, Index: p.Index, Segment: p.Segment, Offset: p.Offset, Text: p.Error()}
		}
		return res, err
	}
}

// withStoredRoots makes a verification without trusted keys compare the
// records with the roots of the stored checkpoints, dir's own and extra,
// and report in res what it checked (see replica.NewRootChecker). A repair
// without a key uses it to tell which copy holds the records that the log
// signed. It is ignored when trusted keys are given (they check the roots
// and the signatures).
func withStoredRoots(res *replica.Roots, extra [][]byte) VerifyOption {
	return func(c *verifyConfig) { c.storedRoots, c.extraRoots = res, extra }
}
