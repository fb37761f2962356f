package replica

import (
	"errors"
	"fmt"
	"strings"
)

// ErrDiverged is matched when copies of the log each hold records that
// verify but differ (the same sequence number with different contents,
// or records one copy has and the repaired log would not): they were
// written by different histories (say, a copy run on its own for a
// while), and no repair may choose between them silently. Reconcile
// refuses, and changes nothing.
var ErrDiverged = errors.New("audit: copies of the log hold different records")

// Op says what a repair did to one file of one copy.
type Op string

// What a repair can do to a file.
const (
	// Added: the copy lacked the file; it was copied in.
	Added Op = "added"
	// Replaced: the copy's file was damaged or out of date; it was
	// replaced, atomically, by the verified version.
	Replaced Op = "replaced"
	// Removed: the file is not part of the verified log (for
	// instance a segment that a crash created in one copy only, holding no
	// record the repaired log lacks); it was removed.
	Removed Op = "removed"
)

// Action is one change made to one copy.
type Action struct {
	// Dir is the copy that was changed.
	Dir string `json:"dir"`
	// File is the file's name in that directory.
	File string `json:"file"`
	// Op is what was done.
	Op Op `json:"op"`
	// From says where the new contents came from: a copy's directory, or,
	// when the verified version was pieced together from several copies
	// (each damaged somewhere else), the byte ranges and their copies.
	// Empty for Removed.
	From string `json:"from,omitempty"`
	// Bytes is the size of the new file (0 for Removed).
	Bytes int64 `json:"bytes"`
	// Reason says why.
	Reason string `json:"reason,omitempty"`
}

// String describes the action in one line.
func (a Action) String() string {
	s := fmt.Sprintf("%s: %s %s", a.Dir, a.Op, a.File)
	if a.From != "" {
		s += fmt.Sprintf(" (%d bytes from %s)", a.Bytes, a.From)
	}
	if a.Reason != "" {
		s += ": " + a.Reason
	}
	return s
}

// CopyState is what a repair found in one copy before changing anything.
type CopyState struct {
	// Dir is the copy's directory; the first copy is the primary.
	Dir string `json:"dir"`
	// Empty is set when the copy held no segment (a new mirror, or one
	// whose files were lost).
	Empty bool `json:"empty"`
	// Verified is set when the copy verified on its own: checksums,
	// sequence, segment chain, hash chain and Merkle tree, and signed
	// checkpoints when a key is known. A copy whose only problem is a
	// damaged tree-node file (derived data, rebuilt from the records) counts
	// as verified, with Problem set.
	Verified bool `json:"verified"`
	// LastSeq is the last sequence number that verified in this copy
	// (records a torn tail left unfinished are not counted).
	LastSeq uint64 `json:"last_seq"`
	// Problem says why the copy did not verify ("" when it did).
	Problem string `json:"problem,omitempty"`
}

// Report says what a repair found and did (audit.RepairReport). New with
// WithRedundancy makes one when it changes a copy (see Sink.RepairReport);
// RepairFromMirror always returns one.
type Report struct {
	// Copies describes each copy as found, the primary first.
	Copies []CopyState `json:"copies"`
	// Actions lists the changes, by copy and file name. Empty when the
	// copies already held the same verified log.
	Actions []Action `json:"actions"`
	// LastSeq is the last sequence number of the repaired log.
	LastSeq uint64 `json:"last_seq"`
	// Keyless is set when the repair had no trusted key (Options.Keyless).
	// The copies' records were then compared with the roots of the stored
	// checkpoints, which needs no key (their signatures cannot be checked
	// without one), and a copy whose records do not reproduce them was not
	// taken.
	Keyless bool `json:"keyless"`
	// RootsChecked is, for a keyless repair, how many stored checkpoints'
	// roots the repaired log reproduces, and RootsSize the largest tree
	// size among them: records after it were compared with nothing signed.
	RootsChecked int    `json:"roots_checked"`
	RootsSize    uint64 `json:"roots_size"`
	// Unchecked says, for a keyless repair, why the repaired log's records
	// could not be checked against any stored root ("" when they were).
	Unchecked string `json:"unchecked"`
	// Dropped lists the records that a copy held but the repaired log
	// leaves out, as never acknowledged: only with Options.Quorum of 2 or
	// more, for a record that no copy holds in a batch that verifies and
	// that the primary verifies without. Any other
	// record that a copy holds and the repaired log would lack makes the
	// repair fail with ErrDiverged.
	Dropped []Dropped `json:"dropped,omitempty"`
}

// Repaired reports whether any copy was changed.
func (r *Report) Repaired() bool { return r != nil && (len(r.Actions) > 0 || len(r.Dropped) > 0) }

// String describes the report in a few lines.
func (r *Report) String() string {
	if r == nil {
		return "no repair"
	}
	var b strings.Builder
	for _, c := range r.Copies {
		switch {
		case c.Empty:
			fmt.Fprintf(&b, "copy %s: empty\n", c.Dir)
		case c.Verified && c.Problem == "":
			fmt.Fprintf(&b, "copy %s: verified through sequence %d\n", c.Dir, c.LastSeq)
		case c.Verified:
			fmt.Fprintf(&b, "copy %s: records verified through sequence %d; %s\n", c.Dir, c.LastSeq, c.Problem)
		default:
			fmt.Fprintf(&b, "copy %s: does not verify: %s\n", c.Dir, c.Problem)
		}
	}
	switch {
	case !r.Keyless:
	case r.Unchecked != "":
		fmt.Fprintf(&b, "NOT VERIFIED against the log's checkpoints (no key): %s\n", r.Unchecked)
	default:
		fmt.Fprintf(&b, "no key: signatures not checked, but the records reproduce the roots of %d stored checkpoint(s), up to tree size %d\n", r.RootsChecked, r.RootsSize)
	}
	if len(r.Actions) == 0 {
		fmt.Fprintf(&b, "nothing to repair; the log ends at sequence %d\n", r.LastSeq)
	}
	for _, a := range r.Actions {
		fmt.Fprintf(&b, "%s\n", a)
	}
	for _, d := range r.Dropped {
		fmt.Fprintf(&b, "%s\n", d)
	}
	return b.String()
}

// Changes lists the first n actions on one line, and how many more
// there are, then the records dropped (the first of them in full).
func (r *Report) Changes(n int) string {
	var b strings.Builder
	for i, a := range r.Actions {
		if i == n {
			fmt.Fprintf(&b, "; and %d more", len(r.Actions)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(a.String())
	}
	if len(r.Dropped) > 0 {
		fmt.Fprintf(&b, "; %d record(s) left out as never acknowledged, the first %s", len(r.Dropped), r.Dropped[0])
	}
	return b.String()
}
