package integrity

import (
	"errors"
	"fmt"
	"strings"
)

// setAnchor takes the anchor checkpoint. An anchor of epoch 0 is verified
// at once with the genesis keys; an anchor of a later epoch is verified
// when the stream reaches its size, with the key the log's rotation chain
// establishes for its epoch.
func (v *Verifier) setAnchor(raw []byte) error {
	body, err := noteBody(raw)
	if err != nil {
		return fmt.Errorf("integrity: the anchor checkpoint is not acceptable: %w", err)
	}
	claimed, err := ParseCheckpointBody(body)
	if err != nil {
		return fmt.Errorf("integrity: the anchor checkpoint is not acceptable: %w", err)
	}
	if claimed.Epoch > 0 {
		if len(raw) > MaxCheckpointSize {
			return fmt.Errorf("integrity: the anchor checkpoint is not acceptable: %w", cpErr(ReasonMalformed, "anchor note is longer than %d bytes", MaxCheckpointSize))
		}
		v.anchor, v.anchorRaw = &claimed, raw
		return nil
	}
	cp, err := OpenCheckpoint(raw, v.opts.Trusted)
	if err != nil {
		return fmt.Errorf("integrity: the anchor checkpoint is not acceptable: %w", err)
	}
	v.anchor = &cp
	return nil
}

// checkAnchorSignature runs once the stream has reached the anchor's size:
// the anchor must claim the epoch active there, and a later-epoch anchor
// must carry a valid signature by that epoch's key.
func (v *Verifier) checkAnchorSignature() *Problem {
	bad := func(format string, args ...any) *Problem {
		return &Problem{Code: CodeAnchorMismatch, Index: v.anchor.Size, Exact: true, Detail: fmt.Sprintf(format, args...)}
	}
	raw := v.anchorRaw
	v.anchorRaw = nil
	if v.anchor.Epoch != v.epoch {
		return bad("the trusted anchor (tree size %d) claims key epoch %d, but the log's rotation chain from the genesis key has epoch %d active at that size: the anchor is not from this log, or the log's rotations were rewritten", v.anchor.Size, v.anchor.Epoch, v.epoch)
	}
	if raw == nil {
		return nil // an epoch 0 anchor, verified with the genesis keys
	}
	cp, err := OpenCheckpoint(raw, v.verifier)
	if err != nil {
		return bad("the trusted anchor (tree size %d, epoch %d) does not verify with the key of epoch %d that the log's rotation chain from the genesis key establishes (%v): the anchor is not from this log, or the log's rotations were rewritten", v.anchor.Size, v.anchor.Epoch, v.epoch, err)
	}
	v.anchor = &cp
	return nil
}

// anchorBeyondLog says, for an anchor larger than the log, whether its
// signature could be checked.
func (v *Verifier) anchorBeyondLog() string {
	if v.anchorRaw == nil {
		return ""
	}
	if v.anchor.Epoch >= uint64(len(v.epochKeys)) {
		return fmt.Sprintf(" (the anchor's signature by the key of epoch %d could not be checked: the log's rotation statements reach only epoch %d)", v.anchor.Epoch, v.epoch)
	}
	if _, err := OpenCheckpoint(v.anchorRaw, v.epochKeys[v.anchor.Epoch]); err != nil {
		return fmt.Sprintf(" (and the anchor does not verify with the key of its epoch %d: %v)", v.anchor.Epoch, err)
	}
	return ""
}

// untrusted returns a CodeUntrustedKey problem when err, the rejection of
// a stored checkpoint, means that no checkpoint of the log is signed by a
// key the verifier trusts: the checkpoint is at epoch 0 (judged by the
// genesis keys given), it is signed only by other keys, no checkpoint
// verified before it, and none of the stored checkpoints carries a
// signature by a trusted key (valid or not). Anything else (a trusted key
// ID with a bad signature, a stripped signature, a trusted key that stops
// signing part-way) is tampering and gets nil here.
func (v *Verifier) untrusted(err error) *Problem {
	var ce *CheckpointError
	if !errors.As(err, &ce) || ce.Reason != ReasonUnknownKey || v.epoch != 0 || v.rep.Checkpoints > 0 || (v.anchor != nil && v.anchorRaw == nil) {
		return nil
	}
	if v.next > 0 && v.cps[v.next-1].cp.Epoch != 0 {
		// It claims a later epoch where the log has not rotated: no
		// key, right or wrong, makes that honest.
		return nil
	}
	var found []string
	hint := ""
	for _, pc := range v.cps {
		cp, err := OpenCheckpoint(pc.raw, v.opts.Trusted)
		if err == nil && cp.Epoch > 0 {
			// A later epoch's key was given as if it were the
			// genesis key: it counts only through the chain.
			hint = fmt.Sprintf(" A key you gave signs checkpoints of key epoch %d: it is a later epoch's key, which counts only through the log's rotation chain; give the genesis key (epoch 0).", cp.Epoch)
			continue
		}
		if !errors.As(err, &ce) || ce.Reason != ReasonUnknownKey {
			return nil
		}
		found = append(found, SignatureKeyIDs(pc.raw)...)
	}
	return &Problem{Code: CodeUntrustedKey, Index: 0, Exact: false, RangeEnd: v.cps[len(v.cps)-1].cp.Size,
		Detail: fmt.Sprintf("no stored checkpoint of epoch 0 is signed by a key you trust: they are signed by %s.%s If the key you gave is this log's genesis key, this is tampering (someone re-signed the checkpoints with another key): keep the directory unchanged as evidence; otherwise give the log's own public key", strings.Join(sortedUnique(found), ", "), hint)}
}
