package cli

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/willibrandon/mtlog-audit/integrity"
)

// proofResult is what verify-proof proved, as --json prints it.
type proofResult struct {
	File     string `json:"file"`
	Verified bool   `json:"verified"`
	Error    string `json:"error,omitempty"`
	Kind     string `json:"kind,omitempty"` // inclusion or consistency
	// Inclusion: the record's sequence number (index+1), its index in
	// the tree, its leaf hash and the tree size the checkpoint signs.
	Seq      uint64  `json:"seq,omitempty"`
	Index    *uint64 `json:"index,omitempty"`
	LeafHash string  `json:"leaf_hash,omitempty"`
	TreeSize uint64  `json:"tree_size,omitempty"`
	// Consistency: the earlier and the later tree size.
	Size1 uint64 `json:"size1,omitempty"`
	Size2 uint64 `json:"size2,omitempty"`
	// The checkpoint's origin and time, and the key IDs (name+hex) of
	// the given keys whose signature on it verifies.
	Origin         string   `json:"origin,omitempty"`
	CheckpointTime string   `json:"checkpoint_time,omitempty"`
	SignerKeyIDs   []string `json:"signer_key_ids,omitempty"`
	// Epoch is the forward-security key epoch of the checkpoint (0
	// without forward security); its key was reached through the
	// rotation statements the proof carries.
	Epoch uint64 `json:"epoch,omitempty"`
}

// describeProof fills in what a verified proof file proves. It is called
// only after audit.VerifyProof accepted data with vkeys.
func describeProof(res *proofResult, data []byte, vkeys []string) error {
	var head struct {
		Format string `json:"format"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return err
	}
	var cpRaw string
	var rots []integrity.RotationProof
	switch head.Format {
	case integrity.InclusionFormat, integrity.InclusionFormatV2:
		b, err := integrity.ParseInclusionBundle(data)
		if err != nil {
			return err
		}
		idx := b.Index
		res.Kind, res.Seq, res.Index, res.LeafHash, res.TreeSize = "inclusion", b.Index+1, &idx, b.LeafHash.String(), b.Size
		cpRaw, rots = b.Checkpoint, b.Rotations
	case integrity.ConsistencyFormat, integrity.ConsistencyFormatV2:
		b, err := integrity.ParseConsistencyBundle(data)
		if err != nil {
			return err
		}
		res.Kind, res.Size1, res.Size2 = "consistency", b.Size1, b.Size2
		cpRaw, rots = b.Checkpoint2, b.Rotations
	default:
		return fmt.Errorf("unknown proof format %q", head.Format)
	}
	cp, err := parseAny([]byte(cpRaw))
	if err != nil {
		return err
	}
	res.Origin = cp.Origin
	if !cp.Time.IsZero() {
		res.CheckpointTime = cp.Time.UTC().Format(time.RFC3339Nano)
	}
	for _, k := range vkeys {
		v, err := integrity.NewVerifiers(k)
		if err != nil {
			continue
		}
		if _, err := integrity.OpenCheckpoint([]byte(cpRaw), v); err == nil {
			res.SignerKeyIDs = append(res.SignerKeyIDs, vkeyID(k))
		}
	}
	if len(rots) > 0 {
		// A forward-secure log: the checkpoint is signed by the key of
		// its epoch, which the last rotation statement names (VerifyProof
		// followed the chain from the given genesis key to it).
		res.Epoch = cp.Epoch
		if r, err := integrity.ParseRotation([]byte(rots[len(rots)-1].Statement)); err == nil {
			res.SignerKeyIDs = append(res.SignerKeyIDs, vkeyID(r.NextKey))
		}
	}
	return nil
}

// vkeyID returns the name+keyID of a verifier key name+hex+base64.
func vkeyID(vkey string) string {
	parts := strings.SplitN(strings.TrimSpace(vkey), "+", 3)
	if len(parts) < 2 {
		return vkey
	}
	return parts[0] + "+" + parts[1]
}

// noteSigners returns the name+keyID of every signature line of a signed
// note, unverified: who claims to have signed it.
func noteSigners(raw []byte) []string {
	text := string(raw)
	i := strings.Index(text, "\n\n")
	if i < 0 {
		return nil
	}
	var ids []string
	for _, line := range strings.Split(text[i+2:], "\n") {
		rest, ok := strings.CutPrefix(line, "\u2014 ")
		if !ok {
			continue
		}
		name, sig, ok := strings.Cut(rest, " ")
		if !ok {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(sig)
		if err != nil || len(b) < 4 {
			continue
		}
		ids = append(ids, fmt.Sprintf("%s+%08x", name, binary.BigEndian.Uint32(b[:4])))
	}
	return ids
}

// writeProofText prints a verified proof's result for people.
func writeProofText(w io.Writer, res *proofResult) {
	fmt.Fprintf(w, "VERIFIED: %s\n", res.File)
	switch res.Kind {
	case "inclusion":
		fmt.Fprintf(w, "  proved:     record seq %d (proof index %d = seq-1) is in the tree of %d records\n", res.Seq, *res.Index, res.TreeSize)
		fmt.Fprintf(w, "  leaf hash:  %s\n", res.LeafHash)
	case "consistency":
		fmt.Fprintf(w, "  proved:     the tree of %d records is a prefix of the tree of %d records\n", res.Size1, res.Size2)
	}
	fmt.Fprintf(w, "  origin:     %s\n", res.Origin)
	if res.CheckpointTime != "" {
		fmt.Fprintf(w, "  checkpoint: %s\n", res.CheckpointTime)
	}
	fmt.Fprintf(w, "  signed by:  %s", strings.Join(res.SignerKeyIDs, ", "))
	if res.Epoch > 0 {
		fmt.Fprintf(w, " (key epoch %d, reached from the genesis key through the proof's rotation statements)", res.Epoch)
	}
	fmt.Fprintln(w)
}
