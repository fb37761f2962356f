package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// Batch authentication (docs/integrity.md, "Records appended without the
// key"). A signed log's writer tags every batch it writes with
// integrity.TagKey.Tag of the batch's last leaf hash, under a key derived
// from the signing key (the current epoch's, with forward security). On
// open, before it signs anything, it checks the tag of every batch after
// the last signed checkpoint: a record that someone without the key
// appended is never signed.

// Tag is the WAL's Tag hook: on the committing goroutine, before the batch
// is written, it computes the batch's leaf hashes (left in recs[i].Digest
// for OnCommit, which then does not hash them again) and tags the batch's
// last one. Nothing is added to the tree here: if the write fails, the
// next batch is computed afresh from the same tree.
func (l *Ledger) Tag(recs []wal.Committed) ([32]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tagKey == nil {
		return [32]byte{}, errors.New("integrity: no batch tag key")
	}
	idx, prev := l.b.Size(), l.b.Head()
	for i := range recs {
		r := &recs[i]
		if r.Seq != idx+1 {
			return [32]byte{}, fmt.Errorf("integrity: record %d tagged where %d was expected", r.Seq, idx+1)
		}
		prev = integrity.LeafHash(integrity.Record{Index: idx, Prev: prev, Time: r.Time, Type: uint8(r.Type), PayloadHash: payloadHashOf(r)})
		r.Digest = prev
		idx++
	}
	l.tagSeq, l.tagN = recs[0].Seq, len(recs)
	return l.tagKey.Tag(prev), nil
}

// payloadHashOf is the payload hash of a committed record: PreDigest's, or
// computed for a seal (which the committer makes without PreDigest).
func payloadHashOf(r *wal.Committed) integrity.Hash {
	if r.Type == wal.RecordSeal || r.Pre == ([32]byte{}) {
		return integrity.PayloadHash(r.Payload)
	}
	return r.Pre
}

// tagged reports whether recs are the batch whose leaf hashes tag just
// computed (l.mu held), and forgets it.
func (l *Ledger) tagged(recs []wal.Committed) bool {
	ok := l.tagN == len(recs) && len(recs) > 0 && l.tagSeq == recs[0].Seq
	l.tagN = 0
	return ok
}

// switchTagKey makes the next epoch's tag key current once the batch
// holding the rotation statement committed (l.mu held): that batch and
// every one before it carry the old epoch's tag.
func (l *Ledger) switchTagKey(recs []wal.Committed) {
	if l.rotStmt == nil {
		return
	}
	for i := range recs {
		if recs[i].Type == wal.RecordMeta && bytes.Equal(recs[i].Payload, l.rotStmt) {
			old := l.tagKey
			l.tagKey, l.nextTag, l.rotStmt = l.nextTag, nil, nil
			if old != nil {
				old.Wipe() // epoch.tagkey.prev keeps it until a checkpoint covers its batches
			}
			return
		}
	}
}

// authenticateTail sets up batch tagging for a signed log and checks the
// tag of every batch after the last signed checkpoint (last, nil if none),
// whose records catchUp has added to the tree but nobody has signed yet.
// It fails with an error matching ErrUnauthenticated, naming the segment
// file and offset of the first batch that is not authentic.
func (l *Ledger) authenticateTail(last *integrity.Checkpoint) error {
	key, err := integrity.NewTagKey(l.signer)
	if err != nil {
		return fmt.Errorf("audit: batch tag key: %w", err)
	}
	keys := []*integrity.TagKey{key}
	if prev, err := l.readPrevTag(); err != nil {
		return err
	} else if prev != nil {
		if last != nil && last.Epoch == l.epoch && l.epochs != nil {
			// A checkpoint of the current epoch covers the rotation
			// and every batch the old key tagged: it is not needed.
			prev.Wipe()
			if err := l.removePrevTag(); err != nil {
				return err
			}
		} else {
			keys = append(keys, prev)
			l.prevTag = true
		}
	}
	defer func() {
		for _, k := range keys[1:] {
			k.Wipe()
		}
	}()
	var from uint64
	if last != nil {
		from = last.Size
	}
	// The chain is resumed from the stored tree, whose root the last
	// checkpoint vouches for; the last record it covers is read again and
	// must reproduce its stored leaf, so that a forger who replaced the
	// log's end (its seal, say) by as many records of his own is caught
	// here too, not only by audit.Verify.
	//
	// Retention may have deleted that record, and the unsigned ones after
	// it: the signed retention checkpoint then vouches for the tree up to
	// its size (checkPruned checked its signature, catchUp the stored tree
	// against its root), and the chain resumes there from the stored leaf,
	// with nothing left to read again.
	pruned := l.pruned != nil && l.pruned.Size >= from && l.pruned.Size > 0
	if pruned {
		from = l.pruned.Size
	}
	var prev, covered integrity.Hash
	idx := from
	if from > 0 && pruned {
		if prev, err = l.nodes.Node(0, from-1); err != nil {
			return fmt.Errorf("audit: read the tree at the retention checkpoint: %w", err)
		}
	} else if from > 0 {
		idx = from - 1
		if covered, err = l.nodes.Node(0, from-1); err != nil {
			return fmt.Errorf("audit: read the tree at the last signed checkpoint: %w", err)
		}
		if from > 1 {
			if prev, err = l.nodes.Node(0, from-2); err != nil {
				return fmt.Errorf("audit: read the tree at the last signed checkpoint: %w", err)
			}
		}
	}
	var batchSeg uint64
	batchOff := int64(-1)
	coveredSeg := uint64(0) // segment of the last covered record (0: none)
	for rec, err := range l.records(idx + 1) {
		if err != nil {
			return fmt.Errorf("audit: read the records after the last signed checkpoint: %w", err)
		}
		if rec.Seq != idx+1 {
			return fmt.Errorf("%w: the log holds record %d where record %d was expected after the last signed checkpoint (tree size %d): records are missing. Nothing was signed; keep the directory as evidence and run audit.Verify with the public key",
				ErrIntegrity, rec.Seq, idx+1, from)
		}
		prev = integrity.LeafHash(integrity.Record{Index: idx, Prev: prev, Time: rec.Time, Type: uint8(rec.Type), PayloadHash: integrity.PayloadHash(rec.Payload)})
		idx++
		alone := rec.Segment != batchSeg || rec.Offset != batchOff
		batchSeg, batchOff = rec.Segment, rec.Offset
		if idx == from {
			coveredSeg = rec.Segment
			if prev != covered {
				return fmt.Errorf("%w: record %d, the last one the signed checkpoint of tree size %d covers, in segment %d (%s) at offset %d, differs from the tree the checkpoint signed: the end of the log was replaced. Nothing was signed; keep the directory as evidence and run audit.Verify with the public key",
					ErrIntegrity, rec.Seq, from, rec.Segment, filepath.Join(l.dir, wal.SegmentName(rec.Segment)), rec.Offset)
			}
			continue
		}
		if !rec.BatchEnd {
			continue
		}
		where := fmt.Sprintf("segment %d (%s) at offset %d", rec.Segment, filepath.Join(l.dir, wal.SegmentName(rec.Segment)), rec.Offset)
		if !rec.Tagged {
			if rec.Type == wal.RecordSeal && rec.Version < 2 && alone && idx == from+1 && rec.Segment == coveredSeg {
				// The seal this writer put on a version 1 segment
				// whose records a signed checkpoint covers (format
				// version 1 has no tags): its content is fixed by
				// those records.
				continue
			}
			return fmt.Errorf("%w: the batch ending at record %d, in %s, carries no authentication tag: it was written without the signing key (forged, or by an unsigned writer or an mtlog-audit older than format version 2) after the last signed checkpoint (tree size %d). Nothing was signed. If the log is yours and was written unsigned, check it with `mtlog-audit verify` and `replay`, then copy it into a new signed log with `mtlog-audit recover --signing-key`; otherwise keep the directory as evidence of tampering",
				ErrUnauthenticated, rec.Seq, where, from)
		}
		ok := false
		for _, k := range keys {
			if k.Check(prev, rec.Tag) {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("%w: the batch ending at record %d, in %s, has an authentication tag that the signing key did not make: records after the last signed checkpoint (tree size %d) were forged or altered. Nothing was signed; keep the directory as evidence and restore the log from a mirror or backup",
				ErrUnauthenticated, rec.Seq, where, from)
		}
	}
	l.tagKey = key
	return nil
}

// readPrevTag reads prevTagFile, nil if there is none.
func (l *Ledger) readPrevTag() (*integrity.TagKey, error) {
	if l.epochs == nil {
		return nil, nil
	}
	path := filepath.Join(l.dir, prevTagFile)
	if fi, err := l.fs.Stat(path); err == nil {
		if why, fix := vfs.OwnerOnly(l.fs, path, fi); why != "" {
			return nil, fmt.Errorf("%w: %s has %s, so users other than its owner may read a key that authenticates this log's records; run '%s' (and of every mirror's copy)", integrity.ErrKeyFileMode, path, why, fix)
		}
	}
	f, err := l.fs.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	defer f.Close()
	var b [33]byte
	n, _ := f.ReadAt(b[:], 0)
	if n != 32 {
		return nil, fmt.Errorf("%w: %s holds %d bytes, not a 32-byte tag key; it was damaged", ErrIntegrity, path, n)
	}
	k := integrity.TagKeyFromBytes(b[:32])
	clear(b[:])
	return k, nil
}

// savePrevTag stores the current tag key durably in prevTagFile.
func (l *Ledger) savePrevTag() error {
	path := filepath.Join(l.dir, prevTagFile)
	l.mu.Lock()
	key := l.tagKey.Bytes()
	l.mu.Unlock()
	err := vfs.ReplaceFile(l.fs, path, filepath.Join(l.dir, prevTagTemp), key, true)
	clear(key)
	if err != nil {
		return fmt.Errorf("integrity: store the retiring tag key in %s: %w", path, err)
	}
	l.prevTag = true
	return nil
}

// removePrevTag overwrites and removes prevTagFile.
func (l *Ledger) removePrevTag() error {
	path := filepath.Join(l.dir, prevTagFile)
	if f, err := l.fs.OpenReadWrite(path); err == nil {
		var zero [32]byte
		_, _ = f.WriteAt(zero[:], 0)
		_ = f.Datasync()
		_ = f.Close()
	}
	if err := l.fs.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("integrity: remove the retired tag key %s: %w", path, err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("integrity: sync %s: %w", l.dir, err)
	}
	l.prevTag = false
	return nil
}
