// Package ledger is the integrity layer of a writing Sink: it extends the
// hash chain and the Merkle tree on the WAL's commit hook, keeps the tree's
// nodes, authenticates batches and signs checkpoints (with forward-secure
// key epochs when configured). It wires package integrity to package wal
// and is used by the root package only; docs/integrity.md describes what it
// keeps on disk.
package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
	"golang.org/x/mod/sumdb/note"
)

// Files the integrity layer keeps in the log directory, besides
// integrity.NodesFile and integrity.CheckpointsFile.
const (
	// prevTagFile keeps, during a forward-security key rotation, the batch
	// tag key of the epoch being retired, until a checkpoint of the new
	// epoch covers every batch it tagged (see rotate).
	prevTagFile = "epoch.tagkey.prev"
)

// ErrIntegrity is matched by errors that report a log whose records, tree or
// checkpoints disagree with each other (tampering, or damage that checksums
// cannot see).
var ErrIntegrity = errors.New("audit: integrity check failed")

// ErrUnauthenticated is matched (together with ErrIntegrity) by the error
// of a signed log that holds, after its last signed checkpoint, records
// whose batch authentication tag is missing or wrong: records appended by
// someone without the signing key. The writer refuses to open such a log
// rather than sign them (docs/integrity.md).
var ErrUnauthenticated = fmt.Errorf("%w: records not authenticated by the signing key", ErrIntegrity)

// Config is what the root package's options set (see audit.WithSigningKey,
// audit.WithCheckpoints, audit.WithForwardSecurity, audit.WithClock).
type Config struct {
	SigningKey string
	Every      uint64
	Interval   time.Duration
	Heartbeat  time.Duration
	EpochEvery time.Duration    // > 0: forward security
	Now        func() time.Time // nil: time.Now
	// OnCheckpoint, if set, is called with each signed checkpoint once it
	// is durable in the checkpoints file, on the checkpointer goroutine
	// (it must not block).
	OnCheckpoint func(signed []byte)
}

// DefaultConfig is the configuration of a Sink given no integrity options.
func DefaultConfig() Config {
	return Config{Every: 65536, Interval: time.Second, Heartbeat: time.Minute}
}

// Ledger extends the hash chain and the Merkle tree as records commit, keeps
// the tree's nodes, and signs checkpoints.
type Ledger struct {
	cfg Config
	fs  vfs.FS
	dir string
	w   *wal.WAL

	mu      sync.Mutex // guards b, nodes, nodeErr and the tag state below
	b       *integrity.Builder
	nodes   *integrity.NodeStore
	nodeErr error

	// Batch authentication (signed logs only; see tag).
	tagKey  *integrity.TagKey // tags the next batch
	nextTag *integrity.TagKey // during a rotation: the next epoch's, current after rotStmt's batch
	rotStmt []byte            // during a rotation: the statement being appended
	tagSeq  uint64            // first sequence number of the batch whose leaf hashes tag computed
	tagN    int               // its record count (0: none pending)
	prevTag bool              // prevTagFile exists and must go once a checkpoint of the current epoch is stored

	// committer goroutine only
	lastReq uint64

	// checkpointer goroutine (and open/close) only
	cps          *integrity.CheckpointLog
	origin       string
	signer       note.Signer
	epochs       *integrity.EpochKeys
	lastRotation []byte // newest key-rotation record catchUp read (see checkEpochKey)
	epoch        uint64
	epochStart   time.Time
	lastSigned   uint64
	lastSignedAt time.Time
	signedAny    bool

	pruned *integrity.RetentionCheckpoint // set by Open (checkPruned); nil: nothing was pruned

	newest atomic.Int64 // unix nanoseconds of the newest stored signed checkpoint (0: none); see NewestCheckpoint

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
	now  func() time.Time
}

// Open opens the tree and checkpoints of the log in dir and brings
// them up to date with the records, before any new record is appended.
//
// publish is called with the ledger once it is ready and before its
// checkpointer goroutine starts, which may append key-rotation records:
// from then on the WAL's commit hook must hand every record to it.
func Open(cfg Config, fsys vfs.FS, dir string, w *wal.WAL, publish func(*Ledger)) (*Ledger, error) {
	l := &Ledger{cfg: cfg, fs: fsys, dir: dir, w: w, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), now: time.Now}
	if cfg.Now != nil {
		l.now = cfg.Now
	}
	ok := false
	defer func() {
		if !ok {
			l.CloseFiles()
		}
	}()
	var err error
	if l.nodes, err = integrity.OpenNodeStore(fsys, filepath.Join(dir, integrity.NodesFile)); err != nil {
		return nil, fmt.Errorf("audit: open tree: %w", err)
	}
	var genesis note.Signer
	if cfg.SigningKey != "" {
		if genesis, err = integrity.NewSigner(cfg.SigningKey); err != nil {
			return nil, fmt.Errorf("audit: signing key: %w", err)
		}
		l.origin = genesis.Name()
	}
	if genesis != nil || cfg.EpochEvery > 0 {
		if l.cps, err = integrity.OpenCheckpointLog(fsys, filepath.Join(dir, integrity.CheckpointsFile)); err != nil {
			return nil, fmt.Errorf("audit: open checkpoints: %w", err)
		}
	}
	if err := fsys.SyncDir(dir); err != nil {
		return nil, fmt.Errorf("audit: sync %s: %w", dir, err)
	}
	var last *integrity.Checkpoint
	if l.cps != nil {
		if raw, ok := l.cps.Last(); ok {
			cp, err := ParseStored(raw)
			if err != nil {
				return nil, fmt.Errorf("%w: the last stored checkpoint does not parse: %v", ErrIntegrity, err)
			}
			last = &cp
		}
	}
	if l.pruned, err = l.checkPruned(); err != nil {
		return nil, err
	}
	rotations, err := l.catchUp(last)
	if err != nil {
		return nil, err
	}
	if cfg.EpochEvery > 0 {
		l.epochs, err = integrity.OpenEpochKeys(fsys, dir, genesis, func(vkey string) bool { return rotations[vkey] })
		if err != nil {
			return nil, fmt.Errorf("audit: forward-security keys: %w", err)
		}
		if err := l.checkEpochKey(genesis, last); err != nil {
			return nil, err
		}
		l.epoch, l.signer, _ = l.epochs.Current()
		l.origin = l.signer.Name()
		l.epochStart = l.now()
	} else {
		l.signer = genesis
	}
	if last != nil && cfg.EpochEvery == 0 && l.signer != nil {
		vkey, err := integrity.PublicKeyOf(cfg.SigningKey)
		if err == nil {
			var trusted note.Verifiers
			if trusted, err = integrity.NewVerifiers(vkey); err == nil {
				raw, _ := l.cps.Last()
				_, err = integrity.OpenCheckpoint(raw, trusted)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%w: the log's stored checkpoints are not signed by the configured signing key (%v); use the key this log was created with", ErrIntegrity, err)
		}
	}
	if last != nil {
		if l.origin != "" && last.Origin != l.origin {
			return nil, fmt.Errorf("%w: stored checkpoints are for origin %q but the signing key is for %q; use the log's own key", ErrIntegrity, last.Origin, l.origin)
		}
		l.lastSigned, l.signedAny = last.Size, true
		l.newest.Store(last.Time.UnixNano())
		if last.Epoch > l.epoch {
			return nil, fmt.Errorf("%w: stored checkpoints are signed in key epoch %d but the current key is for epoch %d", ErrIntegrity, last.Epoch, l.epoch)
		}
	}
	if l.signer != nil {
		if err := l.authenticateTail(last); err != nil {
			return nil, err
		}
	}
	ok = true
	publish(l)
	if l.signer != nil {
		go l.run()
	} else {
		close(l.done)
	}
	return l, nil
}

// ParseStored parses a stored signed checkpoint without checking its
// signatures.
func ParseStored(raw []byte) (integrity.Checkpoint, error) {
	i := bytes.LastIndex(raw, []byte("\n\n"))
	if i < 0 {
		return integrity.Checkpoint{}, errors.New("not a signed note")
	}
	return integrity.ParseCheckpointBody(string(raw[:i+1]))
}

// catchUp brings the builder up to date with the log before anything is
// appended: it resumes from the stored tree where that can be trusted
// (resume), then adds every later record, read from the log: the tail. It
// returns the keys named by key-rotation records it read.
func (l *Ledger) catchUp(last *integrity.Checkpoint) (map[string]bool, error) {
	logSize := l.w.LastSeq()
	if last != nil && last.Size > logSize {
		return nil, fmt.Errorf("%w: a signed checkpoint covers %d records but the log holds %d: records were removed from the end; refusing to sign anything that contradicts it (run audit.Verify with the public key to see what changed)", ErrIntegrity, last.Size, logSize)
	}
	from, err := l.resume(last, logSize) // leaves already in the builder
	if err != nil {
		return nil, err
	}
	if l.pruned != nil && from < l.pruned.Size {
		if from, err = l.resumePruned(l.pruned); err != nil {
			return nil, err
		}
	}
	storedBefore := l.nodes.Leaves()
	if err := l.nodes.TruncateLeaves(from); err != nil {
		return nil, fmt.Errorf("audit: trim tree: %w", err)
	}
	l.b.OnNode(l.storeNode)
	rotations := map[string]bool{}
	for rec, err := range l.records(from + 1) {
		if err != nil {
			return nil, fmt.Errorf("audit: read the log to rebuild its tree: %w", err)
		}
		l.b.Append(rec.Time, uint8(rec.Type), integrity.PayloadHash(rec.Payload))
		if rec.Type == wal.RecordMeta {
			if rot, err := integrity.ParseRotationKey(rec.Payload); err == nil {
				rotations[rot] = true
				// Only a statement after the last checkpoint can be
				// newer than it (checkEpochKey): one it covers says
				// nothing of the key that signs next, whichever point
				// the tree was rebuilt from.
				if last == nil || rec.Seq > last.Size {
					l.lastRotation = bytes.Clone(rec.Payload)
				}
			}
		}
		if last != nil && l.b.Size() == last.Size && l.b.Root() != last.Root {
			return nil, fmt.Errorf("%w: the records do not reproduce the root of the last signed checkpoint (tree size %d): the log was altered; refusing to sign anything that contradicts it (run audit.Verify with the public key to see what changed)", ErrIntegrity, last.Size)
		}
	}
	if l.nodeErr != nil {
		return nil, fmt.Errorf("audit: store tree nodes: %w", l.nodeErr)
	}
	if l.b.Size() != logSize {
		return nil, fmt.Errorf("%w: rebuilt %d leaves for a log of %d records", ErrIntegrity, l.b.Size(), logSize)
	}
	// Make the cut and the nodes of the tail durable now: the stored nodes
	// of every record before the last segment must stay durable (resume and
	// Verify rely on it), and a crash must not leave the cut without the
	// nodes rewritten after it. When resume trusted nodes inside the last
	// segment (up to its last seal, whose sync a crash in Close may have
	// cut short), they are made durable before any record follows that
	// seal. A full disk only delays this (see storeNode).
	if from < storedBefore || l.b.Size() > from || (from > 0 && from >= l.w.LastSegmentStart()) {
		if err := l.nodes.Sync(); err != nil && !diskFull(err) {
			return nil, fmt.Errorf("audit: sync tree: %w", err)
		}
	}
	l.lastReq = logSize
	return rotations, nil
}

// resume sets l.b to the tree of the first n records, read from the stored
// tree, and returns n: how far the stored tree is trusted without reading
// the records it covers. It reads at most two records.
//
//   - A signed log resumes at its last checkpoint, and only if the stored
//     tree reproduces that checkpoint's root: every record after it (the
//     uncovered tail) is read again, so that nothing the checkpoint does not
//     commit to is ever signed on the word of the cache. With no checkpoint
//     yet, the whole log is the uncovered tail.
//   - An unsigned log resumes at the end of the stored tree, but never past
//     the last seal the WAL found at open (wal.WAL.LastSeal; without one,
//     the last segment's first record): the writer syncs tree.nodes when
//     it seals a segment (OnCommit), also at the seal of a clean Close that
//     the next open continues after, and later nodes may be what a crash
//     left of unsynced writes. The stored leaf there is checked against the
//     record it stands for (read at the seal's offset, which must hold that
//     seal) and, through the chain, its predecessor; if it differs, the
//     stored tree is rebuilt from record 1.
//
// Verify compares every durable stored node with the records; open checks
// only this right edge.
func (l *Ledger) resume(last *integrity.Checkpoint, logSize uint64) (uint64, error) {
	l.b = integrity.NewBuilder()
	stored := min(l.nodes.Leaves(), logSize)
	var n uint64
	switch {
	case l.cps != nil && last == nil:
		return 0, nil
	case l.cps != nil:
		n = last.Size
		if n > stored {
			return 0, nil
		}
		if root, err := l.nodes.RootAt(n); err != nil || root != last.Root {
			return 0, nil
		}
	default:
		var atStart uint64
		if start := l.w.LastSegmentStart(); start > 0 {
			atStart = min(stored, start-1)
		}
		n = atStart
		if m, ok := l.w.LastSeal(); ok && m.Seq <= stored && m.Seq > n {
			ok, err := l.storedLeafMatches(m.Seq)
			if err != nil {
				return 0, err
			}
			if ok {
				return l.resumeAt(m.Seq), nil
			}
		}
		if n == 0 {
			return 0, nil
		}
		ok, err := l.storedLeafMatches(n)
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, nil
		}
	}
	return l.resumeAt(n), nil
}

// resumeAt sets l.b to the stored tree of the first n records and returns
// n, or 0 (l.b empty) if the stored nodes it needs cannot be read.
func (l *Ledger) resumeAt(n uint64) uint64 {
	if n == 0 {
		return 0
	}
	edge, err1 := l.nodes.Edge(n)
	head, err2 := l.nodes.Node(0, n-1)
	if err1 != nil || err2 != nil {
		return 0
	}
	b, err := integrity.ResumeBuilder(n, head, edge)
	if err != nil {
		return 0
	}
	l.b = b
	return n
}

// storedLeafMatches reports whether the stored leaf of record n (index n−1)
// is the leaf hash of that record chained to the stored leaf before it.
func (l *Ledger) storedLeafMatches(n uint64) (bool, error) {
	want, err := l.nodes.Node(0, n-1)
	if err != nil {
		return false, nil
	}
	var prev integrity.Hash
	if n > 1 {
		if prev, err = l.nodes.Node(0, n-2); err != nil {
			return false, nil
		}
	}
	for rec, err := range l.records(n) {
		if err != nil {
			return false, fmt.Errorf("audit: read record %d to check the stored tree: %w", n, err)
		}
		if rec.Seq != n {
			return false, nil
		}
		got := integrity.LeafHash(integrity.Record{Index: n - 1, Prev: prev, Time: rec.Time, Type: uint8(rec.Type), PayloadHash: integrity.PayloadHash(rec.Payload)})
		return got == want, nil
	}
	return false, nil
}

// records reads the log's records from sequence number from on, starting
// at the last seal the WAL found at open when from is not before it, so
// that the part of the last segment before that seal is not read again.
func (l *Ledger) records(from uint64) iter.Seq2[wal.Record, error] {
	r := l.w.Reader()
	if m, ok := l.w.LastSeal(); ok && from >= m.Seq {
		return r.RecordsFrom(context.Background(), m, from)
	}
	return r.Records(context.Background(), from)
}

func (l *Ledger) storeNode(level uint, index uint64, h integrity.Hash) {
	if l.nodeErr != nil {
		return
	}
	// A full disk only delays the tree: the store keeps the node buffered
	// and a later flush writes it (the tree is derived from the records,
	// which the WAL made durable). Anything else is kept and fails the log.
	if err := l.nodes.Append(level, index, h); err != nil && !diskFull(err) {
		l.nodeErr = err
	}
}

// diskFull reports whether err is a write that failed for lack of space,
// which freeing space cures: unlike a failed fsync, it may be retried.
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// OnCommit runs on the WAL's committing goroutine for every batch: it
// extends the chain and the tree and sets each record's leaf hash as its
// digest (returned in the Receipt).
func (l *Ledger) OnCommit(recs []wal.Committed) error {
	seal := false
	l.mu.Lock()
	pre := l.tagged(recs) // leaf hashes computed by tag, before the write
	for i := range recs {
		r := &recs[i]
		if r.Seq != l.b.Size()+1 {
			l.mu.Unlock()
			return fmt.Errorf("integrity: record %d committed where %d was expected", r.Seq, l.b.Size()+1)
		}
		if pre {
			l.b.AppendLeafHash(r.Digest)
		} else {
			ph := r.Pre
			if r.Type == wal.RecordSeal { // sealed by the committer: no PreDigest
				ph = integrity.PayloadHash(r.Payload)
			}
			r.Digest = l.b.Append(r.Time, uint8(r.Type), ph)
		}
		seal = seal || r.Type == wal.RecordSeal
	}
	l.switchTagKey(recs)
	size, err := l.b.Size(), l.nodeErr
	l.mu.Unlock()
	if err != nil {
		return fmt.Errorf("integrity: store tree nodes: %w", err)
	}
	if seal {
		// The WAL creates the next segment only after this returns: make
		// the nodes of every record up to the seal durable first, so that
		// after a crash the stored tree can be trusted up to the last
		// segment (resume) and Verify knows which nodes a crash may have
		// torn. A full disk only delays it, as in storeNode.
		if err := l.nodes.Sync(); err != nil && !diskFull(err) {
			l.mu.Lock()
			if l.nodeErr == nil {
				l.nodeErr = err
			}
			l.mu.Unlock()
			return fmt.Errorf("integrity: sync tree nodes at a seal: %w", err)
		}
	}
	if seal || size-l.lastReq >= l.cfg.Every {
		l.lastReq = size
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// run is the checkpointer goroutine.
func (l *Ledger) run() {
	defer close(l.done)
	tick := time.NewTicker(min(l.cfg.Interval, l.cfg.Heartbeat))
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-l.kick:
		case <-tick.C:
		}
		if err := l.checkpoint(false); err != nil {
			if diskFull(err) {
				// Not signed this time: the next tick or kick tries
				// again, once space was freed.
				continue
			}
			// A checkpoint that cannot be written for any other reason
			// (a failed fsync above all) is a durability failure of
			// the integrity layer: stop signing, keep the error for
			// Close.
			l.mu.Lock()
			if l.nodeErr == nil {
				l.nodeErr = err
			}
			l.mu.Unlock()
			return
		}
	}
}

// checkpoint signs and stores a checkpoint of the current tree if it grew,
// or as a heartbeat if none was signed for cfg.Heartbeat (always when final).
func (l *Ledger) checkpoint(final bool) error {
	l.mu.Lock()
	size, root := l.b.Size(), l.b.Root()
	l.mu.Unlock()
	now := l.now()
	grew := size > l.lastSigned || !l.signedAny
	if !final && !grew && now.Sub(l.lastSignedAt) < l.cfg.Heartbeat {
		return nil
	}
	if final && !grew && now.Sub(l.lastSignedAt) < time.Second {
		return nil
	}
	// Only durable records may be covered by a signature.
	if err := l.w.Sync(context.Background()); err != nil && !errors.Is(err, wal.ErrClosed) {
		return err
	}
	// The store is safe for concurrent use and syncs without blocking the
	// commit hook; every node of the tree of size `size` was appended
	// before the snapshot above, so this makes them durable.
	if err := l.nodes.Sync(); err != nil {
		return fmt.Errorf("integrity: sync tree: %w", err)
	}
	cp := integrity.Checkpoint{Origin: l.origin, Size: size, Root: root, Time: now.UTC(), Epoch: l.epoch}
	signed, err := integrity.SignCheckpoint(cp, l.signer)
	if err != nil {
		return err
	}
	if err := l.cps.Append(signed); err != nil {
		return err
	}
	if l.cfg.OnCheckpoint != nil {
		l.cfg.OnCheckpoint(signed)
	}
	l.lastSigned, l.lastSignedAt, l.signedAny = size, now, true
	l.newest.Store(now.UnixNano())
	if l.prevTag && cp.Epoch == l.epoch {
		// This checkpoint covers the last rotation statement and so every
		// batch the retired epoch's tag key made: it is no longer needed.
		if err := l.removePrevTag(); err != nil {
			return err
		}
	}
	if l.epochs != nil && !final && now.Sub(l.epochStart) >= l.cfg.EpochEvery {
		return l.rotate(cp)
	}
	return nil
}

// rotate moves to the next forward-security key epoch: the next key is
// stored durably, a rotation statement signed with the current key (naming
// the next public key and committing to the checkpoint just signed) is
// appended to the log, and only then does the next key become current and
// the current private key get wiped.
func (l *Ledger) rotate(cp integrity.Checkpoint) error {
	next, nextVKey, err := l.epochs.Prepare()
	if err != nil {
		return err
	}
	stmt, err := integrity.SignRotation(integrity.Rotation{Origin: l.origin, Epoch: l.epoch + 1, Size: cp.Size, Root: cp.Root, NextKey: nextVKey}, l.signer)
	if err != nil {
		return err
	}
	// Batches up to the one holding the statement are tagged with this
	// epoch's tag key, later ones with the next epoch's (see
	// switchTagKey). Until a checkpoint of the next epoch covers the
	// statement, a reopen after a crash must still check the former, whose
	// signing key Commit wipes: keep it in prevTagFile until then.
	nextTag, err := integrity.NewTagKey(next)
	if err != nil {
		return err
	}
	if err := l.savePrevTag(); err != nil {
		return err
	}
	l.mu.Lock()
	l.nextTag, l.rotStmt = nextTag, stmt
	l.mu.Unlock()
	if _, err := l.w.Append(context.Background(), wal.RecordMeta, l.now().UnixNano(), stmt); err != nil {
		l.mu.Lock()
		if l.rotStmt != nil { // the statement never committed: the key never switched
			l.nextTag.Wipe()
			l.nextTag, l.rotStmt = nil, nil
		}
		l.mu.Unlock()
		return fmt.Errorf("integrity: append key rotation: %w", err)
	}
	if err := l.epochs.Commit(); err != nil {
		return err
	}
	l.epoch++
	l.signer = next
	l.epochStart = l.now()
	return nil
}

// NewestCheckpoint returns the time of the newest stored signed checkpoint
// (by the ledger's clock), or false when none is stored or the log is not
// signed. It is safe for concurrent use.
func (l *Ledger) NewestCheckpoint() (time.Time, bool) {
	n := l.newest.Load()
	if n == 0 || l.signer == nil {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}

// Signed reports whether the ledger signs checkpoints.
func (l *Ledger) Signed() bool { return l.signer != nil }

// StopRunner stops the checkpointer goroutine (before the WAL is closed, so
// that it never appends to a closing log).
func (l *Ledger) StopRunner() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

// Close writes the final checkpoint (the WAL must already be closed, so
// that the seal is covered) and releases the files.
func (l *Ledger) Close() error {
	var errs []error
	if l.signer != nil {
		l.StopRunner()
		l.mu.Lock()
		err := l.nodeErr
		l.mu.Unlock()
		if err != nil {
			errs = append(errs, err)
		} else if err := l.checkpoint(true); err != nil {
			errs = append(errs, fmt.Errorf("audit: final checkpoint: %w", err))
		}
	}
	errs = append(errs, l.CloseFiles())
	return errors.Join(errs...)
}

// CloseFiles releases the files without writing a checkpoint (as a crash
// would leave them).
func (l *Ledger) CloseFiles() error {
	var errs []error
	if l.nodes != nil {
		errs = append(errs, l.nodes.Close())
	}
	if l.cps != nil {
		errs = append(errs, l.cps.Close())
	}
	return errors.Join(errs...)
}
