package integrity

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Trust in keys.
//
// A verifier is given genesis keys: the public keys of logs at epoch 0 (for
// a log without forward security, its only key). A later epoch's key is
// never given; it is trusted only because the log's chain of rotation
// statements, starting from a genesis key, names it, and only for its own
// epoch. KeyChain follows that chain.

// ErrSameNameKeys is matched by the error of NewGenesisVerifiers when two
// different keys bear the same name.
var ErrSameNameKeys = errors.New("integrity: two different trusted keys bear the same name")

// NewGenesisVerifiers is NewVerifiers for the keys a user trusts as a log's
// genesis key (epoch 0): it also refuses two different keys with the same
// name. A log has one genesis key; with forward security every epoch's key
// bears the log's name and is learnt from the log's signed rotation
// statements. Listing a later epoch's key as if it were a genesis key would
// let whoever stole that key rewrite the log from epoch 0, so it is
// refused; give only the genesis key. Keys with different names (other
// logs, or a log that started afresh under a new name) may be listed
// together.
func NewGenesisVerifiers(vkeys ...string) (note.Verifiers, error) {
	vs, err := NewVerifiers(vkeys...)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]string)
	for _, vk := range vkeys {
		vk = strings.TrimSpace(vk)
		name, id, _, _ := vkeyParts(vk) // NewVerifiers parsed them
		desc := fmt.Sprintf("%s+%08x", name, id)
		if prev, ok := byName[name]; ok && prev != desc {
			return nil, fmt.Errorf("%w: %s and %s: give only the log's genesis key (the key it was created with); with forward security the later epochs' keys are learnt from the log's own signed rotation statements, and a later epoch's key listed as a trusted key would let a thief of that key rewrite the log from its start", ErrSameNameKeys, prev, desc)
		}
		byName[name] = desc
	}
	return vs, nil
}

// KeyIDs returns "name+id" for each public key that parses (for messages).
func KeyIDs(vkeys ...string) []string {
	var out []string
	for _, vk := range vkeys {
		if name, id, _, err := vkeyParts(strings.TrimSpace(vk)); err == nil {
			out = append(out, fmt.Sprintf("%s+%08x", name, id))
		}
	}
	return out
}

// SignatureKeyIDs returns the "name+id" of every signature line of a signed
// note, without verifying anything (for messages).
func SignatureKeyIDs(msg []byte) []string {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(msg[i+2:]), "\n") {
		line = strings.TrimPrefix(line, "— ")
		name, b64, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(raw) < 4 {
			continue
		}
		out = append(out, fmt.Sprintf("%s+%08x", name, binary.BigEndian.Uint32(raw)))
	}
	return out
}

// KeyChain follows a log's chain of key rotation statements from its
// genesis keys. Epoch 0 is verified by the genesis keys; epoch e+1 by the
// one key that a rotation statement signed by epoch e's key names.
type KeyChain struct {
	keys []note.Verifiers // keys[e] verifies epoch e
	rots []Rotation
}

// NewKeyChain starts a chain at epoch 0 with the genesis keys.
func NewKeyChain(genesis note.Verifiers) *KeyChain {
	return &KeyChain{keys: []note.Verifiers{genesis}}
}

// Epoch returns the latest epoch the chain has reached.
func (c *KeyChain) Epoch() uint64 { return uint64(len(c.keys) - 1) }

// Rotations returns the statements followed so far (rotation i begins
// epoch i+1).
func (c *KeyChain) Rotations() []Rotation { return append([]Rotation(nil), c.rots...) }

// Keys returns the verifiers of epoch e, if the chain has reached it.
func (c *KeyChain) Keys(e uint64) (note.Verifiers, bool) {
	if e >= uint64(len(c.keys)) {
		return nil, false
	}
	return c.keys[e], true
}

// Advance verifies stmt as the rotation from the chain's latest epoch e to
// e+1: it must be signed by epoch e's key and name epoch e+1. The statement's
// Size and Root are not checked here (the caller knows the tree). Errors are
// *CheckpointError values.
func (c *KeyChain) Advance(stmt []byte) (Rotation, error) {
	e := c.Epoch()
	if _, _, err := openNote(stmt, c.keys[e], fmt.Sprintf("key rotation statement to epoch %d", e+1)); err != nil {
		return Rotation{}, err // classified: unknown key, bad signature, unsigned, …
	}
	cur, err := signerOf(c.keys[e], stmt)
	if err != nil {
		return Rotation{}, cpErr(ReasonUnknownKey, "key rotation statement to epoch %d is not signed by the key of epoch %d: %v", e+1, e, err)
	}
	r, err := OpenRotation(stmt, cur)
	if err != nil {
		return Rotation{}, err
	}
	if r.Epoch != e+1 {
		return Rotation{}, cpErr(ReasonMalformed, "key rotation statement names epoch %d where epoch %d begins", r.Epoch, e+1)
	}
	if n := len(c.rots); n > 0 && r.Size <= c.rots[n-1].Size {
		return Rotation{}, cpErr(ReasonMalformed, "key rotation to epoch %d commits to tree size %d, not beyond the previous rotation's %d", r.Epoch, r.Size, c.rots[n-1].Size)
	}
	nv, err := note.NewVerifier(r.NextKey)
	if err != nil {
		return Rotation{}, cpErr(ReasonMalformed, "key rotation statement carries an unusable key: %v", err)
	}
	c.keys = append(c.keys, verifierList{nv})
	c.rots = append(c.rots, r)
	return r, nil
}

// OpenCheckpoint verifies msg with the key of the epoch the checkpoint
// claims, which the chain must have reached, and checks that the claim fits
// the chain: a checkpoint of epoch e covers the rotation statement that
// began epoch e (its tree is larger than that rotation's) and precedes the
// next rotation (its tree is not larger than that one's).
func (c *KeyChain) OpenCheckpoint(msg []byte) (Checkpoint, error) {
	body, err := noteBody(msg)
	if err != nil {
		return Checkpoint{}, cpErr(ReasonMalformed, "checkpoint: %v", err)
	}
	claimed, err := ParseCheckpointBody(body)
	if err != nil {
		return Checkpoint{}, err
	}
	keys, ok := c.Keys(claimed.Epoch)
	if !ok {
		return Checkpoint{}, cpErr(ReasonUnknownEpoch, "checkpoint claims key epoch %d, but the rotation statements at hand reach only epoch %d: the key of epoch %d cannot be established from the genesis key", claimed.Epoch, c.Epoch(), claimed.Epoch)
	}
	cp, err := OpenCheckpoint(msg, keys)
	if err != nil {
		return Checkpoint{}, err
	}
	if e := cp.Epoch; e > 0 && cp.Size <= c.rots[e-1].Size {
		return Checkpoint{}, cpErr(ReasonMalformed, "checkpoint of epoch %d covers %d records, but epoch %d began after record %d", e, cp.Size, e, c.rots[e-1].Size)
	}
	if e := cp.Epoch; e < uint64(len(c.rots)) && cp.Size > c.rots[e].Size {
		return Checkpoint{}, cpErr(ReasonMalformed, "checkpoint of epoch %d covers %d records, but epoch %d ended at tree size %d", e, cp.Size, e, c.rots[e].Size)
	}
	return cp, nil
}

// sortedUnique returns the distinct strings of list, sorted.
func sortedUnique(list []string) []string {
	seen := make(map[string]bool)
	var out []string
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// ParseRotation parses a signed rotation statement's body WITHOUT checking
// any signature (a writer or a prover locating statements in its own log;
// verifiers use KeyChain.Advance or OpenRotation).
func ParseRotation(stmt []byte) (Rotation, error) {
	body, err := noteBody(stmt)
	if err != nil {
		return Rotation{}, err
	}
	return parseRotationBody(body)
}
