package recovery

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

// Authentication says whether the salvaged records of a signed input log
// were authenticated as written by the holder of its signing key before
// they were copied. A signed writer tags every batch with a MAC of the
// batch's last leaf hash under a key derived from the signing key
// (docs/integrity.md); the leaf hashes chain every record before, so a tag
// that checks vouches for its batch and everything before it. Records
// whose checksums are valid but that nobody without the key could have
// written are told apart from forged or altered ones only this way: the
// new log, signed afresh, must not vouch for the second kind.
type Authentication struct {
	// Checked is true when every copied record was authenticated by a
	// batch tag under the signing key given to Recover.
	Checked bool `json:"checked"`
	// Note says why the records were not checked when the input is a
	// signed log (empty when Checked, or when the input is not signed).
	Note string `json:"note,omitempty"`
	// Refused counts the salvaged records not copied because they could
	// not be authenticated, from the old sequence number RefusedFrom on;
	// Reason says why the first of them was refused.
	Refused uint64 `json:"refused"`
	// Unchecked counts the records copied from format version 1 batches,
	// which carry no tag (Note says so).
	Unchecked   uint64 `json:"unchecked,omitempty"`
	RefusedFrom uint64 `json:"refused_from,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// authenticator buffers each batch's records until its tag checks, then
// passes them on; from the first batch that does not check (or a record
// out of sequence, after which the chain cannot be recomputed) it passes
// nothing on and counts what it refuses.
type authenticator struct {
	key     *integrity.TagKey
	next    uint64 // the sequence number the chain expects
	broken  bool   // a gap was met: the chain is unknown from there on
	prev    integrity.Hash
	pending []wal.Record
	rep     *Authentication
	pass    func(wal.Record) error
}

// newAuthenticator returns the authenticator of the signed log in dir
// under skey, or nil and a note saying why its records cannot be checked
// (nil and "" when the log is not signed: there is nothing to check).
func newAuthenticator(dir, skey string, pass func(wal.Record) error) (*authenticator, string, error) {
	cps, err := integrity.ReadCheckpointLog(vfs.OS(), filepath.Join(dir, integrity.CheckpointsFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, "", nil
	case err != nil:
		return nil, fmt.Sprintf("the input's signed checkpoints cannot be read (%v), so the signing key it was written with is unknown", err), nil
	case len(cps) == 0:
		return nil, "", nil
	}
	if skey == "" {
		return nil, "the input is a signed log, and no --signing-key was given to check its batch authentication tags: records appended by someone without the key cannot be told apart", nil
	}
	if _, err := vfs.OS().Stat(filepath.Join(dir, integrity.EpochKeyFile)); err == nil {
		return nil, "the input uses forward security: its batches are tagged under epoch keys derived since, not under the --signing-key, so they were not checked", nil
	}
	vkey, err := integrity.PublicKeyOf(skey)
	if err != nil {
		return nil, "", fmt.Errorf("recovery: signing key: %w", err)
	}
	trusted, err := integrity.NewVerifiers(vkey)
	if err != nil {
		return nil, "", fmt.Errorf("recovery: signing key: %w", err)
	}
	if _, err := integrity.OpenCheckpoint(cps[len(cps)-1], trusted); err != nil {
		return nil, fmt.Sprintf("the input's newest checkpoint is not signed by the --signing-key (%v): it was written with another key, so its batches were not checked", err), nil
	}
	signer, err := integrity.NewSigner(skey)
	if err != nil {
		return nil, "", fmt.Errorf("recovery: signing key: %w", err)
	}
	key, err := integrity.NewTagKey(signer)
	if err != nil {
		return nil, "", fmt.Errorf("recovery: batch tag key: %w", err)
	}
	return &authenticator{key: key, next: 1, rep: &Authentication{Checked: true}, pass: pass}, "", nil
}

// visit takes the next salvaged record.
func (a *authenticator) visit(r wal.Record) error {
	if a.rep.Refused > 0 {
		a.rep.Refused++
		return nil
	}
	if r.Seq != a.next && !a.broken {
		// A gap (aggressive mode): the hash chain cannot be recomputed
		// past it, so tags can no longer be checked. What follows is
		// copied unchecked and counted, except batches without any tag,
		// which a signed writer never writes.
		a.broken = true
		if err := a.flush(true); err != nil {
			return err
		}
		a.rep.Note = fmt.Sprintf("records %d to %d are missing (a gap): past it the hash chain cannot be recomputed, so the tags of later batches were not checked and their records were copied unchecked", a.next, r.Seq-1)
	}
	if !a.broken {
		a.prev = integrity.LeafHash(integrity.Record{Index: r.Seq - 1, Prev: a.prev, Time: r.Time, Type: uint8(r.Type), PayloadHash: integrity.PayloadHash(r.Payload)})
	}
	a.next = r.Seq + 1
	r.Payload = bytes.Clone(r.Payload) // the salvager reuses its buffer
	a.pending = append(a.pending, r)
	if !r.BatchEnd {
		return nil
	}
	if a.broken {
		if !r.Tagged && r.Version >= 2 {
			a.refuse(a.pending[0].Seq, uint64(len(a.pending)), fmt.Sprintf("the batch ending at record %d carries no authentication tag: written without the signing key", r.Seq))
			return nil
		}
		return a.flush(true)
	}
	switch {
	case !r.Tagged && r.Version == 1:
		// Format version 1 has no batch tags: they are copied unchecked,
		// and the report says so.
		if a.rep.Note == "" {
			a.rep.Note = "records in segments of format version 1 carry no batch authentication tags: they were copied unchecked"
		}
		return a.flush(true)
	case !r.Tagged:
		a.refuse(a.pending[0].Seq, uint64(len(a.pending)), fmt.Sprintf("the batch ending at record %d carries no authentication tag: written without the signing key (or by a writer older than format version 2)", r.Seq))
		return nil
	case !a.key.Check(a.prev, r.Tag):
		a.refuse(a.pending[0].Seq, uint64(len(a.pending)), fmt.Sprintf("the batch ending at record %d has an authentication tag the signing key did not make: forged or altered", r.Seq))
		return nil
	}
	return a.flush(false)
}

// flush passes the pending records on, counted as unchecked if so.
func (a *authenticator) flush(unchecked bool) error {
	if unchecked {
		a.rep.Unchecked += uint64(len(a.pending))
	}
	for _, p := range a.pending {
		if err := a.pass(p); err != nil {
			return err
		}
	}
	a.pending = a.pending[:0]
	return nil
}

// finish refuses records left without the end of their batch.
func (a *authenticator) finish() {
	if a.rep.Refused == 0 && len(a.pending) > 0 {
		a.refuse(a.pending[0].Seq, uint64(len(a.pending)), "the end of their batch, which carries its tag, was not salvaged")
	}
	a.key.Wipe()
}

func (a *authenticator) refuse(from, n uint64, why string) {
	a.rep.RefusedFrom, a.rep.Refused, a.rep.Reason = from, n, why
	a.pending = nil
}
