package integrity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Code classifies what verification found. The strings are stable: tools
// and dashboards may match on them.
type Code string

// Codes for what a verification can find wrong.
const (
	// CodeRecordCorrupt: a record's bytes fail their checksums or framing
	// (reported by the log reader, passed through by the caller).
	CodeRecordCorrupt Code = "record-corrupt"
	// CodeEventUndecodable: an event record's checksums hold but its
	// payload is not an event encoding this build can decode, so replay
	// and export cannot read it (reported by the caller, which decodes).
	CodeEventUndecodable Code = "event-undecodable"
	// CodeRecordsAltered: the records do not reproduce the root a trusted
	// signed checkpoint commits to: records were deleted, inserted,
	// reordered, edited or rewritten.
	CodeRecordsAltered Code = "records-altered"
	// CodeTruncated: a trusted checkpoint covers more records than the
	// log holds (the log went backwards).
	CodeTruncated Code = "log-truncated"
	// CodeCheckpointSignature: a stored checkpoint has no trusted valid
	// signature (unsigned, stripped, forged, wrong origin, unknown key).
	CodeCheckpointSignature Code = "checkpoint-signature"
	// CodeCheckpointOrder: stored checkpoints are out of order or two
	// checkpoints of the same size disagree.
	CodeCheckpointOrder Code = "checkpoint-order"
	// CodeAnchorMismatch: the log does not reproduce the root of the
	// trusted checkpoint supplied from outside.
	CodeAnchorMismatch Code = "anchor-mismatch"
	// CodeTreeNodeDamaged: a stored tree node differs from the node the
	// records produce, while the records match every signed checkpoint:
	// the proof cache is damaged, the records are not.
	CodeTreeNodeDamaged Code = "tree-node-damaged"
	// CodeKeyRotation: a forward-security key rotation statement is
	// malformed, not signed by the previous epoch's key, or commits to a
	// tree that the log does not reproduce.
	CodeKeyRotation Code = "key-rotation"
	// CodeUntrustedKey: no stored checkpoint carries a signature by a
	// trusted key, and every one carries signatures by other keys: the
	// wrong public key was given, or someone re-signed every checkpoint
	// with their own key. It is never success: if the key given is the
	// log's genesis key, this is tampering.
	CodeUntrustedKey Code = "untrusted-key"
	// CodeRetention: the log's oldest records are missing and no valid
	// retention checkpoint accounts for them (none, unsigned, signed by
	// another key, or not matching the records that remain): records were
	// deleted outside retention, which is tampering.
	CodeRetention Code = "retention-checkpoint"
)

// Problem is the first thing verification found wrong.
type Problem struct {
	Code Code
	// Index is the first leaf index that is not proven good: exact when
	// the evidence allows (see Detail), otherwise the first index after
	// the last checkpoint that verified.
	Index uint64
	// Exact reports whether Index is the precise first bad record (true)
	// or the start of the range [Index, RangeEnd) in which the first bad
	// record lies (false). An empty range (RangeEnd == Index, not Exact)
	// implicates no record: every record is proven good, and the problem
	// lies elsewhere (a stored checkpoint that cannot be parsed).
	Exact    bool
	RangeEnd uint64
	Detail   string
}

// NoRecord reports whether the problem implicates no record (see Exact).
func (p *Problem) NoRecord() bool { return !p.Exact && p.RangeEnd <= p.Index }

// Error formats the problem.
func (p *Problem) Error() string {
	where := fmt.Sprintf("at index %d", p.Index)
	switch {
	case p.NoRecord():
		where = fmt.Sprintf("(no record implicated; the %d records are proven good)", p.Index)
	case !p.Exact:
		where = fmt.Sprintf("in indexes [%d, %d)", p.Index, p.RangeEnd)
	}
	return fmt.Sprintf("integrity: %s %s: %s", p.Code, where, p.Detail)
}

// Report is the outcome of a verification.
type Report struct {
	Records     uint64 // records checked
	Checkpoints int    // stored checkpoints whose signature and root verified
	// Covered is the largest tree size a verified signed checkpoint (or
	// the anchor) commits to; records at indexes ≥ Covered are an
	// uncovered tail: intact as far as checksums go, but not yet committed
	// to by any signature.
	Covered uint64
	// Latest is the newest verified checkpoint (nil if none).
	Latest *Checkpoint
	// Epoch is the forward-security key epoch at the end of the log.
	Epoch uint64
	// NodesChecked counts stored tree nodes compared with the records.
	NodesChecked uint64
	// Pruned is how many records were deleted under retention (Prune): the
	// verification started after them.
	Pruned uint64
	// Problem is the first failure, nil when everything verified.
	Problem *Problem
}

// UncoveredTail returns how many records no verified checkpoint covers.
func (r *Report) UncoveredTail() uint64 {
	if r.Records > r.Covered {
		return r.Records - r.Covered
	}
	return 0
}

// VerifyOptions configure a Verifier.
type VerifyOptions struct {
	// Trusted verifies checkpoints (the log's public key; with forward
	// security, the genesis key of epoch 0). Required for any checkpoint
	// to count.
	Trusted note.Verifiers
	// Checkpoints are the stored signed checkpoints, oldest first, as
	// ReadCheckpointLog returns the entries of the checkpoint log (an
	// entry that cannot be parsed is located by its byte offset there).
	Checkpoints [][]byte
	// Anchor is a signed checkpoint obtained from outside the log (for
	// instance given to an auditor earlier). Optional.
	Anchor []byte
	// Nodes is the stored tree (used to localise a mismatch exactly).
	Nodes NodeReader
	// NodeStream, when set, yields the stored tree's node hashes in file
	// (post-)order; each is compared with the node the records produce.
	// Reading the file sequentially keeps verification streaming fast.
	NodeStream io.Reader
	// NodesLeaves is how many leaves Nodes holds (nodes beyond it are not
	// compared).
	NodesLeaves uint64
	// RotationType is the record type that carries key rotation
	// statements (0: none).
	RotationType uint8
}

type pendingCP struct {
	cp  Checkpoint
	raw []byte
}

// Verifier recomputes the chain and the tree from a stream of records and
// checks them against signed checkpoints. Memory does not grow with the
// number of records (it holds the tree's right edge and the checkpoints).
type Verifier struct {
	opts     VerifyOptions
	b        *Builder
	cps      []pendingCP // parsed bodies, sorted by size, signatures not yet checked
	next     int         // next checkpoint to check
	anchor   *Checkpoint
	epoch    uint64
	verifier note.Verifiers // the current epoch's
	lastGood uint64         // size of the last verified checkpoint
	lastCP   *Checkpoint
	rep      Report
	// first leaf whose stored hash differs from the recomputed one
	leafDiff    bool
	leafDiffIdx uint64
	nodeDiff    bool
	nodeDiffAt  string
	nodeDiffEnd uint64 // leaves [0, nodeDiffEnd) are covered by the first differing node
	durable     uint64 // see SetNodesDurable
	hasDurable  bool
	storedOK    bool // stored nodes reproduce every checked checkpoint so far

	// anchorRaw is set while the anchor's signature is still to be
	// checked: an anchor of epoch e > 0 is verified with epoch e's key,
	// which the log's rotation statements establish as the stream reaches
	// them (see verify_trust.go).
	anchorRaw []byte
	epochKeys []note.Verifiers // epochKeys[e] verifies epoch e
	// unreadable describes the first stored checkpoint that cannot be
	// parsed ("" if none); it is skipped and reported at the end.
	unreadable string
}

// NewVerifier prepares a verification.
func NewVerifier(opts VerifyOptions) (*Verifier, error) {
	v := &Verifier{opts: opts, b: NewBuilder(), verifier: opts.Trusted, storedOK: true}
	var off int64 // the entry's byte offset in the checkpoint log
	for i, raw := range opts.Checkpoints {
		at := off
		off += cpFrameHeader + int64(len(raw))
		body, err := noteBody(raw)
		var cp Checkpoint
		if err == nil {
			cp, err = ParseCheckpointBody(body)
		}
		if err != nil {
			// Its size is unknown, so it implicates no record: skip it,
			// verify the records against the others, and report it at
			// the end (Finish).
			if v.unreadable == "" {
				v.unreadable = fmt.Sprintf("stored checkpoint %d of %d (the entry at byte offset %d of the checkpoints file) cannot be parsed: %v", i+1, len(opts.Checkpoints), at, err)
			}
			continue
		}
		if n := len(v.cps); n > 0 && cp.Size < v.cps[n-1].cp.Size {
			v.rep.Problem = &Problem{Code: CodeCheckpointOrder, Index: cp.Size, Exact: true, Detail: fmt.Sprintf("stored checkpoint %d has size %d after one of size %d: the log never signs a smaller tree after a larger one", i, cp.Size, v.cps[n-1].cp.Size)}
			return v, nil
		}
		v.cps = append(v.cps, pendingCP{cp, raw})
	}
	v.epochKeys = []note.Verifiers{opts.Trusted}
	if opts.Anchor != nil {
		if err := v.setAnchor(opts.Anchor); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(v.cps, func(i, j int) bool { return v.cps[i].cp.Size < v.cps[j].cp.Size })
	if opts.NodeStream != nil {
		v.b.OnNode(v.compareNode)
	}
	v.checkDue() // checkpoints of size 0
	return v, nil
}

// noteBody returns the text of a signed note (everything before the blank
// line that precedes the signatures).
func noteBody(msg []byte) (string, error) {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 {
		return "", fmt.Errorf("%w: not a signed note (no signature block)", ErrCheckpoint)
	}
	return string(msg[:i+1]), nil
}

func (v *Verifier) compareNode(level uint, index uint64, h Hash) {
	v.rep.NodesChecked++
	if lo, _ := nodeCoverage(level, index); lo+(1<<level) > v.opts.NodesLeaves {
		return
	}
	var stored Hash
	_, err := io.ReadFull(v.opts.NodeStream, stored[:])
	if err == nil && stored == h {
		return
	}
	if level == 0 && !v.leafDiff {
		v.leafDiff, v.leafDiffIdx = true, index
	}
	if !v.nodeDiff {
		v.nodeDiff = true
		_, v.nodeDiffEnd = nodeCoverage(level, index)
		v.nodeDiffAt = fmt.Sprintf("stored tree node (level %d, index %d) differs from the node the records produce", level, index)
		if err != nil {
			v.nodeDiffAt = fmt.Sprintf("stored tree node (level %d, index %d) cannot be read: %v", level, index, err)
		}
	}
}

func nodeCoverage(level uint, index uint64) (uint64, uint64) {
	return index << level, (index + 1) << level
}

// SetNodesDurable tells the verifier that the writer had made the stored
// nodes of the first n leaves durable, and that later stored nodes may be
// what a crash left of unsynced writes (torn, zero-filled or stale: the
// writer recomputes them from the records when it opens the log). Finish
// then reports a stored node that differs from the records only when the
// node covers leaves below n. Nodes are stored in post-order, so the first
// differing node decides. Without a call, every compared node counts.
func (v *Verifier) SetNodesDurable(n uint64) { v.durable, v.hasDurable = n, true }

// Fail records p as the verification's problem, unless one was found
// before (callers that check something the records cannot, such as the
// retention checkpoint).
func (v *Verifier) Fail(p *Problem) {
	if v.rep.Problem == nil {
		v.rep.Problem = p
	}
}

// Failed returns the first problem found so far (nil if none).
func (v *Verifier) Failed() *Problem { return v.rep.Problem }

// Add feeds the next record (in index order, from 0). It returns the first
// problem, after which further records are ignored.
func (v *Verifier) Add(index uint64, time int64, typ uint8, payload []byte) *Problem {
	if v.rep.Problem != nil {
		return v.rep.Problem
	}
	if index > v.b.Size() && v.rep.Records == 0 {
		v.rep.Problem = &Problem{Code: CodeRetention, Index: v.b.Size(), RangeEnd: index,
			Detail: fmt.Sprintf("the log starts at record index %d, but no valid retention checkpoint accounts for the %d records before it: they were deleted outside retention", index, index-v.b.Size())}
		return v.rep.Problem
	}
	if index != v.b.Size() {
		v.rep.Problem = &Problem{Code: CodeRecordCorrupt, Index: v.b.Size(), Exact: true, Detail: fmt.Sprintf("record index %d arrived where %d was expected", index, v.b.Size())}
		return v.rep.Problem
	}
	if typ == v.opts.RotationType && v.opts.RotationType != 0 {
		if p := v.rotation(index, payload); p != nil {
			v.rep.Problem = p
			return p
		}
	}
	v.b.Append(time, typ, PayloadHash(payload))
	v.rep.Records++
	return v.checkDue()
}

// rotation checks a key rotation statement found at index and, if it is
// valid, makes its key the one that must sign checkpoints covering it.
func (v *Verifier) rotation(index uint64, payload []byte) *Problem {
	bad := func(format string, args ...any) *Problem {
		return &Problem{Code: CodeKeyRotation, Index: index, Exact: true, Detail: fmt.Sprintf(format, args...)}
	}
	cur, err := signerOf(v.verifier, payload)
	if err != nil {
		return bad("rotation to epoch %d is not signed by a trusted key of epoch %d: %v", v.epoch+1, v.epoch, err)
	}
	rot, err := OpenRotation(payload, cur)
	if err != nil {
		return bad("rotation to epoch %d is not signed by the key of epoch %d: %v", v.epoch+1, v.epoch, err)
	}
	if rot.Epoch != v.epoch+1 {
		return bad("rotation statement names epoch %d, expected %d", rot.Epoch, v.epoch+1)
	}
	if v.lastCP == nil || rot.Size != v.lastCP.Size || rot.Root != v.lastCP.Root || rot.Origin != v.lastCP.Origin {
		return bad("rotation statement commits to tree size %d, which is not the last verified checkpoint before it", rot.Size)
	}
	nv, err := note.NewVerifier(rot.NextKey)
	if err != nil {
		return bad("rotation statement carries an unusable key: %v", err)
	}
	v.epoch = rot.Epoch
	v.verifier = verifierList{nv}
	v.epochKeys = append(v.epochKeys, v.verifier)
	return nil
}

// verifierList is a note.Verifiers over an explicit list.
type verifierList []note.Verifier

func (l verifierList) Verifier(name string, hash uint32) (note.Verifier, error) {
	for _, v := range l {
		if v.Name() == name && v.KeyHash() == hash {
			return v, nil
		}
	}
	return nil, &note.UnknownVerifierError{Name: name, KeyHash: hash}
}

// signerOf finds, among vs, the key whose signature on msg verifies.
func signerOf(vs note.Verifiers, msg []byte) (note.Verifier, error) {
	n, err := note.Open(msg, vs)
	if err != nil {
		return nil, err
	}
	if len(n.Sigs) == 0 {
		return nil, errors.New("unsigned")
	}
	return vs.Verifier(n.Sigs[0].Name, n.Sigs[0].Hash)
}

// checkDue checks every stored checkpoint whose size the tree has reached.
func (v *Verifier) checkDue() *Problem {
	size := v.b.Size()
	for v.next < len(v.cps) && v.cps[v.next].cp.Size <= size {
		pc := v.cps[v.next]
		if pc.cp.Size < size {
			// Only possible for checkpoints before the first record
			// was added when resuming; sizes are checked as reached.
			break
		}
		v.next++
		cp, err := OpenCheckpoint(pc.raw, v.verifier)
		if err != nil {
			if p := v.untrusted(err); p != nil {
				v.rep.Problem = p
				return p
			}
			v.rep.Problem = &Problem{Code: CodeCheckpointSignature, Index: pc.cp.Size, Exact: true,
				Detail: fmt.Sprintf("checkpoint for tree size %d (key epoch %d): %v", pc.cp.Size, v.epoch, err)}
			return v.rep.Problem
		}
		if cp.Epoch != v.epoch {
			v.rep.Problem = &Problem{Code: CodeCheckpointSignature, Index: cp.Size, Exact: true,
				Detail: fmt.Sprintf("checkpoint for tree size %d claims key epoch %d, but epoch %d is active at that size", cp.Size, cp.Epoch, v.epoch)}
			return v.rep.Problem
		}
		if root := v.b.Root(); root != cp.Root {
			v.rep.Problem = v.altered(cp, "the records do not reproduce the root signed in the checkpoint")
			return v.rep.Problem
		}
		if v.lastCP != nil && v.lastCP.Size == cp.Size && v.lastCP.Root != cp.Root {
			v.rep.Problem = &Problem{Code: CodeCheckpointOrder, Index: cp.Size, Exact: true, Detail: "two signed checkpoints of the same size disagree"}
			return v.rep.Problem
		}
		c := cp
		v.lastCP = &c
		v.lastGood = cp.Size
		v.rep.Checkpoints++
		v.rep.Covered = max(v.rep.Covered, cp.Size)
		v.rep.Latest = &c
	}
	if v.anchor != nil && v.anchor.Size == size {
		if p := v.checkAnchorSignature(); p != nil {
			v.rep.Problem = p
			return p
		}
		if v.b.Root() != v.anchor.Root {
			v.rep.Problem = v.altered(*v.anchor, "the records do not reproduce the root of the trusted anchor checkpoint")
			v.rep.Problem.Code = CodeAnchorMismatch
			return v.rep.Problem
		}
		v.rep.Covered = max(v.rep.Covered, size)
	}
	return nil
}

// altered localises a root mismatch: exactly, when the stored tree is
// authentic for this checkpoint (it reproduces the signed root) and its
// leaves first differ from the recomputed ones at some index; otherwise to
// the range after the last checkpoint that verified.
func (v *Verifier) altered(cp Checkpoint, why string) *Problem {
	p := &Problem{Code: CodeRecordsAltered, Index: v.lastGood, RangeEnd: cp.Size, Detail: why}
	if v.opts.Nodes != nil && v.leafDiff && v.opts.NodesLeaves >= cp.Size {
		if r, err := storedRoot(v.opts.Nodes, cp.Size); err == nil && r == cp.Root && v.leafDiffIdx < cp.Size {
			p.Index, p.Exact = v.leafDiffIdx, true
			p.Detail = why + fmt.Sprintf("; the stored tree still matches the signature and its leaf %d differs from the record now at that index", v.leafDiffIdx)
			return p
		}
	}
	if cp.Size == v.lastGood+1 {
		p.Exact = true
	}
	p.Detail += fmt.Sprintf("; the last checkpoint that verified covers %d records, so the first altered record lies in [%d, %d)", v.lastGood, v.lastGood, cp.Size)
	return p
}

// storedRoot computes the root of the first size leaves from stored nodes.
func storedRoot(nodes NodeReader, size uint64) (Hash, error) {
	if s, ok := nodes.(interface{ RootAt(uint64) (Hash, error) }); ok {
		return s.RootAt(size)
	}
	return Hash{}, fmt.Errorf("stored tree cannot compute roots")
}

// Finish completes the verification of a log of logSize records (the
// caller's count, which may exceed what was added when the stream was cut
// by damage) and returns the report.
func (v *Verifier) Finish() *Report {
	rep := v.rep
	rep.Epoch = v.epoch
	if rep.Problem != nil {
		if v.unreadable != "" {
			p := *rep.Problem
			p.Detail += "; also, " + v.unreadable
			rep.Problem = &p
		}
		return &rep
	}
	size := v.b.Size()
	defer func() {
		if rep.Problem == nil && v.unreadable != "" {
			// The records up to Covered are proven by the checkpoints
			// that verified; a bad record, if any, lies after them.
			rep.Problem = &Problem{Code: CodeCheckpointSignature, Index: rep.Covered, RangeEnd: size,
				Detail: v.unreadable + fmt.Sprintf("; it was skipped, and the other checkpoints prove the first %d of the %d records", rep.Covered, size)}
		} else if rep.Problem != nil && v.unreadable != "" {
			rep.Problem.Detail += "; also, " + v.unreadable
		}
	}()
	if v.next < len(v.cps) {
		cp := v.cps[v.next].cp
		rep.Problem = &Problem{Code: CodeTruncated, Index: size, Exact: true,
			Detail: fmt.Sprintf("a signed checkpoint covers %d records but the log holds %d: records were removed from the end", cp.Size, size)}
		return &rep
	}
	if v.anchor != nil && v.anchor.Size > size {
		rep.Problem = &Problem{Code: CodeAnchorMismatch, Index: size, Exact: true,
			Detail: fmt.Sprintf("the trusted anchor covers %d records but the log holds %d: the log was truncated or an older copy restored", v.anchor.Size, size) + v.anchorBeyondLog()}
		return &rep
	}
	if v.nodeDiff && (!v.hasDurable || v.nodeDiffEnd <= v.durable) {
		rep.Problem = &Problem{Code: CodeTreeNodeDamaged, Index: v.leafDiffIdx, Exact: v.leafDiff,
			Detail: v.nodeDiffAt + "; every signed checkpoint matches the records, so the records are intact: rebuild the tree (reopen the log after removing tree.nodes)"}
		if !v.leafDiff {
			rep.Problem.Index = 0
			rep.Problem.RangeEnd = size
		}
	}
	return &rep
}

// ParseRotationKey returns the next-epoch public key named by a key rotation
// statement, without checking its signature (the writer uses it on open to
// learn which rotations reached the log; verifiers use OpenRotation).
func ParseRotationKey(stmt []byte) (string, error) {
	body, err := noteBody(stmt)
	if err != nil {
		return "", err
	}
	lines := strings.Split(body, "\n")
	if len(lines) < 2 || lines[0] != rotationHeader {
		return "", fmt.Errorf("%w: not a key rotation statement", ErrCheckpoint)
	}
	for _, ln := range lines[1:] {
		if k, ok := strings.CutPrefix(ln, "key "); ok {
			return k, nil
		}
	}
	return "", fmt.Errorf("%w: key rotation statement names no key", ErrCheckpoint)
}

const rotationHeader = rotationTitle

// PublicKeyOf returns the verifier key (name+hash+base64) that matches a
// signed-note Ed25519 private key (PRIVATE+KEY+name+hash+base64).
func PublicKeyOf(skey string) (string, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(skey), "PRIVATE+KEY+")
	if !ok {
		return "", fmt.Errorf("%w: not a signing key (a signing key starts with PRIVATE+KEY+)", ErrCheckpoint)
	}
	parts := strings.SplitN(rest, "+", 3) // the base64 key may itself hold '+'
	if len(parts) != 3 {
		return "", fmt.Errorf("%w: malformed signing key", ErrCheckpoint)
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", fmt.Errorf("%w: malformed Ed25519 signing key", ErrCheckpoint)
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[0], pub)
}

// Prune starts the verification after the first rc.Size records, which
// were deleted under retention: the tree and the chain resume from the
// retention checkpoint's compact range and head. It must be called before
// the first Add, with a checkpoint whose signature the caller checked
// (OpenRetention). Stored checkpoints of smaller trees are checked by
// their signature only (the records they cover are gone); one of exactly
// rc.Size records must have rc's root. The stored tree nodes of the pruned
// prefix are skipped, not compared.
func (v *Verifier) Prune(rc RetentionCheckpoint) *Problem {
	if v.rep.Problem != nil {
		return v.rep.Problem
	}
	b, err := ResumeBuilder(rc.Size, rc.Head, rc.Edge)
	if err == nil && rootOfEdge(rc.Edge) != rc.Root {
		err = errors.New("its compact range does not reproduce its root")
	}
	if err != nil || v.b.Size() != 0 {
		v.rep.Problem = &Problem{Code: CodeRetention, Index: 0, RangeEnd: rc.Size, Detail: fmt.Sprintf("retention checkpoint for %d records cannot start the verification: %v", rc.Size, err)}
		return v.rep.Problem
	}
	b.OnNode(v.b.visit)
	v.b = b
	for v.next < len(v.cps) && v.cps[v.next].cp.Size < rc.Size {
		pc := v.cps[v.next]
		v.next++
		if _, err := OpenCheckpoint(pc.raw, v.verifier); err != nil {
			if p := v.untrusted(err); p != nil {
				v.rep.Problem = p
				return p
			}
			v.rep.Problem = &Problem{Code: CodeCheckpointSignature, Index: pc.cp.Size, Exact: true,
				Detail: fmt.Sprintf("checkpoint for tree size %d (before the retention deletion): %v", pc.cp.Size, err)}
			return v.rep.Problem
		}
		v.rep.Checkpoints++
	}
	if v.opts.NodeStream != nil {
		n := int64(treeNodes(min(rc.Size, v.opts.NodesLeaves))) * hashSize
		if _, err := io.CopyN(io.Discard, v.opts.NodeStream, n); err != nil {
			v.opts.NodeStream = nil
			v.b.OnNode(nil)
		}
	}
	v.lastGood, v.rep.Covered, v.rep.Pruned = rc.Size, rc.Size, rc.Size
	return v.checkDue()
}
