package ledger

import (
	"fmt"
	"time"

	"github.com/willibrandon/mtlog-audit/integrity"
)

// checkPruned is called by Open: a log whose first record is not record 1
// had its oldest segments deleted, which only retention may do, and only
// after it stored a retention checkpoint, signed by the log's key, that
// covers every deleted record (docs/retention.md). Anything else is a
// deletion outside retention, and the log is refused. It returns the
// retention checkpoint (nil when nothing was pruned).
func (l *Ledger) checkPruned() (*integrity.RetentionCheckpoint, error) {
	first := l.w.FirstSeq()
	raw, ok, err := integrity.ReadRetention(l.fs, l.dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIntegrity, err)
	}
	if !ok {
		if first > 1 {
			return nil, fmt.Errorf("%w: the log starts at record %d, and no retention checkpoint (%s) accounts for records 1 to %d: they were deleted outside retention; run audit.Verify with the public key, and restore the segments from a mirror or backend", ErrIntegrity, first, integrity.RetentionFile, first-1)
		}
		return nil, nil
	}
	if l.cfg.SigningKey == "" || l.cfg.EpochEvery > 0 {
		return nil, fmt.Errorf("%w: the log has a retention checkpoint (its oldest records were deleted) and can be opened only with its signing key, without forward security (audit.WithSigningKey)", ErrIntegrity)
	}
	vkey, err := integrity.PublicKeyOf(l.cfg.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	trusted, err := integrity.NewVerifiers(vkey)
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	rc, err := integrity.OpenRetention(raw, trusted)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w; the deletion it stands for is not authenticated: run audit.Verify with the public key", ErrIntegrity, integrity.RetentionFile, err)
	}
	if first > rc.Size+1 {
		return nil, fmt.Errorf("%w: the log starts at record %d, but its retention checkpoint accounts only for records 1 to %d: records %d to %d were deleted outside retention", ErrIntegrity, first, rc.Size, rc.Size+1, first-1)
	}
	if rc.Size > l.w.LastSeq() {
		return nil, fmt.Errorf("%w: the retention checkpoint covers %d records but the log holds %d", ErrIntegrity, rc.Size, l.w.LastSeq())
	}
	return &rc, nil
}

// resumePruned is catchUp's way past a pruned prefix when the stored tree
// could not be trusted from a checkpoint at or after it: it resumes at the
// retention checkpoint's size, from the stored tree, if that reproduces
// the root the retention checkpoint signed. The pruned records cannot be
// read again, so a stored tree that lost them cannot be rebuilt.
func (l *Ledger) resumePruned(rc *integrity.RetentionCheckpoint) (uint64, error) {
	if root, err := l.nodes.RootAt(rc.Size); err == nil && root == rc.Root {
		if n := l.resumeAt(rc.Size); n == rc.Size {
			return n, nil
		}
	}
	return 0, fmt.Errorf("%w: %s does not reproduce the retention checkpoint's root of the %d pruned records, and they cannot be read again to rebuild it: restore %s from a mirror or backup", ErrIntegrity, integrity.NodesFile, rc.Size, integrity.NodesFile)
}

// SignRetention returns the signed retention checkpoint of the first size
// records, taken from the stored tree, which must cover them (they are in
// sealed segments, whose nodes are durable). It needs a signing key without
// forward security: the key that must sign it has to be the one every
// verifier of the log already trusts.
func (l *Ledger) SignRetention(size uint64, at time.Time, policy string, holds []integrity.RetentionHold) ([]byte, error) {
	if l.signer == nil || l.cfg.EpochEvery > 0 {
		return nil, fmt.Errorf("audit: retention deletes records only from a log signed with audit.WithSigningKey and without forward security, so that the deletion is provable with the log's public key")
	}
	l.mu.Lock()
	edge, err1 := l.nodes.Edge(size)
	head, err2 := l.nodes.Node(0, size-1)
	l.mu.Unlock()
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("audit: read the tree of the first %d records: %v", size, firstErr(err1, err2))
	}
	rc := integrity.RetentionCheckpoint{Origin: l.origin, Size: size, Head: head, Edge: edge, Time: at, Policy: policy, Holds: holds}
	rc.Root = integrity.RootOfEdge(edge)
	return integrity.SignRetention(rc, l.signer)
}

// Pruned returns the retention checkpoint Open found (nil: none).
func (l *Ledger) Pruned() *integrity.RetentionCheckpoint { return l.pruned }

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
