package integrity

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// RetentionFile is the signed retention checkpoint of a log whose oldest
// records were deleted under its retention policy (docs/retention.md). It
// is written, durably, before the first segment is removed, and replaced
// (never appended to) by each later deletion: each one covers the whole
// pruned prefix.
const RetentionFile = "retention.checkpoint"

// retentionTemp is the retention checkpoint being replaced; a leftover (a
// crash while it was written) is removed and ignored.
const retentionTemp = "retention.checkpoint.tmp"

// retentionTitle is the first line of a retention checkpoint's body. It
// differs from every C2SP checkpoint's (whose second line is a number), so
// a signature over one kind of note can never be taken for the other.
const retentionTitle = "mtlog-audit retention checkpoint v1"

// RetentionHold is a legal hold that was in force when a retention
// checkpoint was signed. Its set and clear events may lie in the pruned
// prefix, so the checkpoint carries it on.
type RetentionHold struct {
	ID     string
	Reason string
	Set    time.Time // when it was placed
	// From and To bound the event times the hold covers (zero: open).
	From, To time.Time
}

// RetentionCheckpoint commits, with the log's key, to the records that were
// deleted under retention: the first Size records (indexes [0, Size)) whose
// RFC 6962 tree has the root Root and the compact range Edge (the roots of
// its perfect subtrees, left to right, as Builder.Edge returns them), and
// whose last leaf hash is Head (the chain link the first retained record
// holds). With them a verifier resumes the tree and the chain at Size
// without the deleted records, and every proof about retained records
// still verifies against the log's checkpoints.
//
// Its body is the title line "mtlog-audit retention checkpoint v1", then
// one line each: "origin <origin>", "size <n>", "root <base64>",
// "head <base64>", "time <RFC 3339>", "policy <text>", one "edge <base64>"
// line per hash of Edge, and one "hold <id> <set> <from> <to> <base64
// reason>" line per hold (times in Unix nanoseconds, 0 for an open bound).
type RetentionCheckpoint struct {
	Origin string
	Size   uint64
	Root   Hash
	Head   Hash
	Edge   []Hash
	Time   time.Time // when the deletion was decided
	Policy string    // the retention policy applied, such as "retention 8760h0m0s"
	Holds  []RetentionHold
}

// ErrRetention is matched by every error about a retention checkpoint that
// does not parse or does not match the log.
var ErrRetention = errors.New("integrity: bad retention checkpoint")

// Body returns the note text of c.
func (c *RetentionCheckpoint) Body() string {
	var b strings.Builder
	b.WriteString(retentionTitle + "\n")
	fmt.Fprintf(&b, "origin %s\nsize %d\nroot %s\nhead %s\n", c.Origin, c.Size, b64(c.Root), b64(c.Head))
	fmt.Fprintf(&b, "time %s\npolicy %s\n", c.Time.UTC().Format(time.RFC3339Nano), c.Policy)
	for _, h := range c.Edge {
		fmt.Fprintf(&b, "edge %s\n", b64(h))
	}
	for _, h := range c.Holds {
		fmt.Fprintf(&b, "hold %s %d %d %d %s\n", h.ID, unixOrZero(h.Set), unixOrZero(h.From), unixOrZero(h.To), base64.StdEncoding.EncodeToString([]byte(h.Reason)))
	}
	return b.String()
}

func b64(h Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func timeOrZero(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// check reports what makes c unsignable or inconsistent: the edge must be
// the compact range of Size leaves and reproduce Root, and every text field
// must fit on its line.
func (c *RetentionCheckpoint) check() error {
	if c.Size == 0 || c.Size > maxTreeSize {
		return fmt.Errorf("%w: size %d: a retention checkpoint covers 1 to 2^63-1 records", ErrRetention, c.Size)
	}
	if want := bits.OnesCount64(c.Size); len(c.Edge) != want {
		return fmt.Errorf("%w: %d edge hashes for size %d, want %d", ErrRetention, len(c.Edge), c.Size, want)
	}
	if rootOfEdge(c.Edge) != c.Root {
		return fmt.Errorf("%w: its compact range does not reproduce its root", ErrRetention)
	}
	for _, s := range []string{c.Origin, c.Policy} {
		if !oneLine(s) {
			return fmt.Errorf("%w: origin and policy must be one line of printable UTF-8", ErrRetention)
		}
	}
	for _, h := range c.Holds {
		if h.ID == "" || strings.ContainsAny(h.ID, " ") || !oneLine(h.ID) {
			return fmt.Errorf("%w: hold ID %q must be a non-empty word", ErrRetention, h.ID)
		}
	}
	return nil
}

func oneLine(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, isControl)
}

// ParseRetentionBody parses the body of a retention checkpoint.
func ParseRetentionBody(text string) (RetentionCheckpoint, error) {
	var c RetentionCheckpoint
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 7 || lines[0] != retentionTitle {
		return c, fmt.Errorf("%w: not a retention checkpoint (its first line must be %q)", ErrRetention, retentionTitle)
	}
	field := func(i int, name string) (string, error) {
		v, ok := strings.CutPrefix(lines[i], name+" ")
		if !ok {
			return "", fmt.Errorf("%w: line %d must start with %q", ErrRetention, i+1, name)
		}
		return v, nil
	}
	var err error
	var v string
	if c.Origin, err = field(1, "origin"); err != nil {
		return c, err
	}
	if v, err = field(2, "size"); err != nil {
		return c, err
	}
	if c.Size, err = parseDecimal(v); err != nil {
		return c, fmt.Errorf("%w: size: %v", ErrRetention, err)
	}
	for i, dst := range []*Hash{&c.Root, &c.Head} {
		if v, err = field(3+i, []string{"root", "head"}[i]); err != nil {
			return c, err
		}
		if *dst, err = parseRoot(v); err != nil {
			return c, fmt.Errorf("%w: %v", ErrRetention, err)
		}
	}
	if v, err = field(5, "time"); err != nil {
		return c, err
	}
	if c.Time, err = time.Parse(time.RFC3339Nano, v); err != nil {
		return c, fmt.Errorf("%w: time: %v", ErrRetention, err)
	}
	if c.Policy, err = field(6, "policy"); err != nil {
		return c, err
	}
	for i, ln := range lines[7:] {
		switch {
		case strings.HasPrefix(ln, "edge "):
			h, err := parseRoot(strings.TrimPrefix(ln, "edge "))
			if err != nil {
				return c, fmt.Errorf("%w: line %d: %v", ErrRetention, i+8, err)
			}
			c.Edge = append(c.Edge, h)
		case strings.HasPrefix(ln, "hold "):
			h, err := parseHold(strings.TrimPrefix(ln, "hold "))
			if err != nil {
				return c, fmt.Errorf("%w: line %d: %v", ErrRetention, i+8, err)
			}
			c.Holds = append(c.Holds, h)
		default:
			return c, fmt.Errorf("%w: line %d is neither an edge nor a hold", ErrRetention, i+8)
		}
	}
	if err := c.check(); err != nil {
		return c, err
	}
	return c, nil
}

func parseHold(s string) (RetentionHold, error) {
	f := strings.Split(s, " ")
	if len(f) != 5 {
		return RetentionHold{}, errors.New("a hold line has an ID, three times and a reason")
	}
	var ns [3]int64
	for i := range ns {
		n, err := strconv.ParseInt(f[1+i], 10, 64)
		if err != nil {
			return RetentionHold{}, fmt.Errorf("hold time %q: %v", f[1+i], err)
		}
		ns[i] = n
	}
	reason, err := base64.StdEncoding.DecodeString(f[4])
	if err != nil {
		return RetentionHold{}, fmt.Errorf("hold reason: %v", err)
	}
	return RetentionHold{ID: f[0], Reason: string(reason), Set: timeOrZero(ns[0]), From: timeOrZero(ns[1]), To: timeOrZero(ns[2])}, nil
}

// SignRetention signs c with signer, which must be named c.Origin (the
// log's key).
func SignRetention(c RetentionCheckpoint, signer note.Signer) ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("integrity: cannot sign retention checkpoint: %w", err)
	}
	if signer == nil || signer.Name() != c.Origin {
		return nil, fmt.Errorf("integrity: cannot sign retention checkpoint: the signer is not named after its origin %q", c.Origin)
	}
	return note.Sign(&note.Note{Text: c.Body()}, signer)
}

// OpenRetention verifies a signed retention checkpoint with the log's
// trusted keys, as OpenCheckpoint does a checkpoint: an unsigned, stripped
// or forged one, or one signed by another key, is refused with an error
// matching ErrCheckpoint.
func OpenRetention(msg []byte, trusted note.Verifiers) (RetentionCheckpoint, error) {
	text, names, err := openNote(msg, trusted, "retention checkpoint")
	if err != nil {
		return RetentionCheckpoint{}, err
	}
	c, err := ParseRetentionBody(text)
	if err != nil {
		return RetentionCheckpoint{}, err
	}
	if !containsString(names, c.Origin) {
		return RetentionCheckpoint{}, cpErr(ReasonWrongOrigin, "retention checkpoint origin %q is not the name of the trusted key that signed it (%s)", c.Origin, strings.Join(names, ", "))
	}
	return c, nil
}

// ParseStoredRetention parses a signed retention checkpoint without
// checking its signature (for readers without the public key).
func ParseStoredRetention(msg []byte) (RetentionCheckpoint, error) {
	body, err := noteBody(msg)
	if err != nil {
		return RetentionCheckpoint{}, fmt.Errorf("%w: %v", ErrRetention, err)
	}
	return ParseRetentionBody(body)
}

// ReadRetention reads the retention checkpoint of the log in dir. ok is
// false when the log has none (nothing was ever deleted).
func ReadRetention(fsys vfs.FS, dir string) (raw []byte, ok bool, err error) {
	raw, err = vfs.ReadFile(fsys, filepath.Join(dir, RetentionFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("integrity: read %s: %w", RetentionFile, err)
	case len(raw) > MaxCheckpointSize:
		return nil, false, fmt.Errorf("%w: %s is larger than %d bytes", ErrRetention, RetentionFile, MaxCheckpointSize)
	}
	return raw, true, nil
}

// WriteRetention replaces the retention checkpoint of the log in dir
// atomically and durably: a temporary file, fsynced, renamed over the old
// one, and the directory fsynced. After it returns, a crash leaves the new
// checkpoint; before, the old one (or none).
func WriteRetention(fsys vfs.FS, dir string, signed []byte) error {
	if err := vfs.ReplaceFile(fsys, filepath.Join(dir, RetentionFile), filepath.Join(dir, retentionTemp), signed, false); err != nil {
		return fmt.Errorf("integrity: write retention checkpoint: %w", err)
	}
	return nil
}

// RootOfEdge returns the root of the tree whose compact range is edge (the
// perfect subtree roots, left to right, as Builder.Edge returns them).
func RootOfEdge(edge []Hash) Hash { return rootOfEdge(edge) }
