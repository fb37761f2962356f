package integrity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb/note"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// Forward security.
//
// A log's signing key evolves through epochs. Each epoch has its own Ed25519
// key pair; all bear the same name (the log's origin) and differ in key ID.
// Epoch 0 is the key the user configured. To move from epoch e to e+1 the
// writer generates a fresh key and appends to the log a rotation statement,
// signed by epoch e's key, that commits to the tree at that moment and names
// epoch e+1's public key; then it destroys epoch e's private key. A verifier
// who trusts only the epoch 0 public key follows the chain of statements.
// Whoever later steals the current key can sign new checkpoints but cannot
// re-sign the past: checkpoints before the last rotation need keys that no
// longer exist, and the rotation statements pin the tree they covered.
// (journald's sealing key, by contrast, also lets its holder forge.)

// rotationTitle is the first line of a key rotation statement.
const rotationTitle = "mtlog-audit key rotation"

// Rotation is a key rotation statement: signed by the key of epoch Epoch-1,
// it commits to the tree of the first Size records (whose root is Root) and
// names NextKey, the public key of epoch Epoch.
type Rotation struct {
	Origin  string // the log's origin, the name of every epoch's key
	Epoch   uint64 // the epoch that begins, at least 1
	Size    uint64 // tree size at the rotation
	Root    Hash   // root of that tree
	NextKey string // public verifier key of epoch Epoch (name+id+base64)
}

// Body returns the statement's note text:
//
//	mtlog-audit key rotation
//	<origin>
//	epoch <Epoch>
//	size <Size>
//	root <base64 Root>
//	key <NextKey>
func (r Rotation) Body() string {
	return rotationTitle + "\n" + r.Origin + "\n" +
		"epoch " + strconv.FormatUint(r.Epoch, 10) + "\n" +
		"size " + strconv.FormatUint(r.Size, 10) + "\n" +
		"root " + r.Root.String() + "\n" +
		"key " + r.NextKey + "\n"
}

// parseRotationBody parses a rotation statement's text strictly.
func parseRotationBody(text string) (Rotation, error) {
	bad := func(format string, args ...any) (Rotation, error) {
		return Rotation{}, cpErr(ReasonMalformed, "key rotation statement: "+format, args...)
	}
	if len(text) > MaxCheckpointSize || !strings.HasSuffix(text, "\n") {
		return bad("does not end in a newline")
	}
	lines := strings.Split(text[:len(text)-1], "\n")
	if len(lines) != 6 || lines[0] != rotationTitle {
		return bad("want 6 lines starting with %q", rotationTitle)
	}
	var r Rotation
	r.Origin = lines[1]
	if !validKeyName(r.Origin) {
		return bad("origin %q is not a key name", r.Origin)
	}
	var err error
	field := func(line, key string) (string, bool) {
		v, ok := strings.CutPrefix(line, key+" ")
		return v, ok
	}
	v, ok := field(lines[2], "epoch")
	if !ok {
		return bad("third line %q is not an epoch line", lines[2])
	}
	if r.Epoch, err = parseDecimal(v); err != nil || r.Epoch == 0 {
		return bad("epoch %q: must be a canonical decimal above 0", v)
	}
	if v, ok = field(lines[3], "size"); !ok {
		return bad("fourth line %q is not a size line", lines[3])
	}
	if r.Size, err = parseDecimal(v); err != nil {
		return bad("size %q: %v", v, err)
	}
	if v, ok = field(lines[4], "root"); !ok {
		return bad("fifth line %q is not a root line", lines[4])
	}
	if r.Root, err = parseRoot(v); err != nil {
		return bad("root %q: %v", v, err)
	}
	if r.NextKey, ok = field(lines[5], "key"); !ok {
		return bad("sixth line %q is not a key line", lines[5])
	}
	name, _, _, err := vkeyParts(r.NextKey)
	if err != nil {
		return bad("next key: %v", err)
	}
	if name != r.Origin {
		return bad("next key is named %q, not the origin %q", name, r.Origin)
	}
	if _, err := note.NewVerifier(r.NextKey); err != nil {
		return bad("next key %q: %v", r.NextKey, err)
	}
	if r.Body() != text {
		return bad("not in canonical form")
	}
	return r, nil
}

// nextKeyID returns the key ID of r.NextKey (which parseRotationBody checked).
func (r Rotation) nextKeyID() uint32 {
	_, id, _, _ := vkeyParts(r.NextKey)
	return id
}

// SignRotation signs a rotation statement with current, the key of epoch
// r.Epoch-1, whose name must be r.Origin. It refuses a statement that would
// not parse back (see OpenRotation) or that rotates to current's own key.
func SignRotation(r Rotation, current note.Signer) ([]byte, error) {
	if current == nil {
		return nil, errors.New("integrity: cannot sign key rotation: no current key")
	}
	body := r.Body()
	back, err := parseRotationBody(body)
	if err != nil {
		return nil, fmt.Errorf("integrity: cannot sign key rotation: %w", err)
	}
	if back != r {
		return nil, errors.New("integrity: cannot sign key rotation: its body does not parse back to it")
	}
	if current.Name() != r.Origin {
		return nil, fmt.Errorf("integrity: cannot sign key rotation: the current key is named %q, not the origin %q", current.Name(), r.Origin)
	}
	if r.nextKeyID() == current.KeyHash() {
		return nil, errors.New("integrity: cannot sign key rotation: the next key is the current key")
	}
	return note.Sign(&note.Note{Text: body}, current)
}

// OpenRotation verifies that msg is a rotation statement signed by current,
// the verifier of the epoch before the one it begins, and returns it.
// Signatures by other keys are ignored; a signature that names current's
// key ID but does not verify rejects the statement. The statement must be
// well-formed, its origin and next key must bear current's name, and the
// next key must differ from current. Errors are *CheckpointError values
// matching ErrCheckpoint. The caller checks that Epoch, Size and Root are
// the ones the log expects at that point.
func OpenRotation(msg []byte, current note.Verifier) (Rotation, error) {
	if current == nil {
		return Rotation{}, cpErr(ReasonUnknownKey, "key rotation statement: no current-epoch key to verify it with")
	}
	text, _, err := openNote(msg, note.VerifierList(current), "key rotation statement")
	if err != nil {
		return Rotation{}, err
	}
	r, err := parseRotationBody(text)
	if err != nil {
		return Rotation{}, err
	}
	if r.Origin != current.Name() {
		return Rotation{}, cpErr(ReasonWrongOrigin, "key rotation statement for origin %q is signed by key %q", r.Origin, current.Name())
	}
	if r.nextKeyID() == current.KeyHash() {
		return Rotation{}, cpErr(ReasonMalformed, "key rotation statement rotates to the key that signed it")
	}
	return r, nil
}

// Files of an EpochKeys directory.
const (
	epochKeyFile     = EpochKeyFile     // "epoch <n>\n<signing key>\n"
	epochNextFile    = "epoch.key.next" // the prepared next epoch, same format
	epochKeyTemp     = "epoch.key.tmp"
	epochNextTemp    = "epoch.key.next.tmp"
	maxEpochFileSize = 4 << 10
)

// EpochKeys keeps the private key of the current forward-security epoch in
// a directory, crash-safely, through vfs.
//
// The directory holds epoch.key ("epoch <n>\n<signing key>\n") and, between
// Prepare and Commit, epoch.key.next. Both are created owner-only (0600,
// through vfs.CreatePrivate), and OpenEpochKeys refuses a key file that the
// group or others may read or write (ErrKeyFileMode).
//
// A rotation from epoch e to e+1 is:
//
//	e, cur, _ := keys.Current()
//	next, nextVKey, err := keys.Prepare()     // epoch e+1's key is durable in epoch.key.next
//	stmt, err := SignRotation(Rotation{Origin: origin, Epoch: e + 1, Size: size, Root: root, NextKey: nextVKey}, cur)
//	// append stmt to the log, durably
//	err = keys.Commit()                       // epoch.key now holds e+1; e's key is wiped
//
// A crash anywhere leaves either epoch e or epoch e+1, and OpenEpochKeys
// settles which by asking whether the rotation reached the log. The current
// key is never lost.
//
// Forward security holds only if the epoch 0 key is destroyed too: after
// the first rotation, delete the key file the log was configured with (its
// public key stays the verifiers' trust anchor). Wiping is best effort:
// Commit zeroes this package's copy of the old key and overwrites the old
// epoch.key before releasing it, but copies made by the Go runtime, swap or
// a copy-on-write filesystem are beyond its reach.
type EpochKeys struct {
	fsys vfs.FS
	dir  string

	mu    sync.Mutex
	epoch uint64
	cur   *keySigner
	next  *keySigner // prepared, not yet committed
}

// ErrEpochKeyMismatch is matched by the error of OpenEpochKeys when the
// epoch key file was made for another genesis key than the one configured
// (another log's file, or another key given), and by the ledger's when the
// file disagrees with the log's checkpoints and rotation statements: a
// restored copy of the log's own file is the fix.
var ErrEpochKeyMismatch = errors.New("audit: the forward-security key file does not match the log")

// OpenEpochKeys opens the epoch keys kept in dir (which must exist).
//
// If dir holds no epoch.key, the log starts at epoch 0 with genesis, which
// is then required and must come from NewSigner or LoadSignerFile (its
// private key is copied into epoch.key). Otherwise genesis may be nil; if
// given, it must bear the same name, and at epoch 0 the same key.
//
// If a prepared rotation (epoch.key.next) is found, isRotationInLog is asked
// whether the log holds the rotation statement naming its public key: if so
// the rotation is committed, if not the prepared key is deleted (the
// statement never reached the log). isRotationInLog may be nil only when no
// rotation is pending.
func OpenEpochKeys(fsys vfs.FS, dir string, genesis note.Signer, isRotationInLog func(nextVKey string) bool) (*EpochKeys, error) {
	k := &EpochKeys{fsys: fsys, dir: dir}
	removed := false
	for _, tmp := range []string{epochKeyTemp, epochNextTemp} {
		err := fsys.Remove(k.path(tmp))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("integrity: epoch keys: remove stale %s: %w", tmp, err)
		}
		removed = removed || err == nil
	}
	if removed {
		if err := fsys.SyncDir(dir); err != nil {
			return nil, fmt.Errorf("integrity: epoch keys: sync %s: %w", dir, err)
		}
	}

	epoch, cur, err := k.readEpochFile(epochKeyFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, nerr := fsys.Stat(k.path(epochNextFile)); nerr == nil {
			return nil, fmt.Errorf("integrity: epoch keys: %s exists without %s; the key directory was damaged", k.path(epochNextFile), k.path(epochKeyFile))
		}
		if genesis == nil {
			return nil, fmt.Errorf("integrity: epoch keys: %s holds no %s and no genesis signing key was given", dir, epochKeyFile)
		}
		g, ok := genesis.(*keySigner)
		if !ok {
			return nil, errors.New("integrity: epoch keys: the genesis signer must come from integrity.NewSigner or LoadSignerFile")
		}
		seed := g.seed()
		if seed == nil {
			return nil, errors.New("integrity: epoch keys: the genesis signing key was wiped")
		}
		cur, err = newKeySigner(g.name, seed)
		clear(seed)
		if err != nil {
			return nil, err
		}
		if err := k.writeEpochFile(epochKeyTemp, epochKeyFile, 0, cur); err != nil {
			cur.wipe()
			return nil, err
		}
		k.cur = cur
		return k, nil
	case err != nil:
		return nil, err
	}
	if genesis != nil && genesis.Name() != cur.name {
		cur.wipe()
		return nil, fmt.Errorf("%w: integrity: epoch keys: %s holds a key for %q, but the configured key is for %q", ErrEpochKeyMismatch, k.path(epochKeyFile), cur.name, genesis.Name())
	}
	if genesis != nil && epoch == 0 && genesis.KeyHash() != cur.id {
		cur.wipe()
		return nil, fmt.Errorf("%w: integrity: epoch keys: %s holds epoch 0 key %s+%08x, but the configured key is %s+%08x", ErrEpochKeyMismatch, k.path(epochKeyFile), cur.name, cur.id, genesis.Name(), genesis.KeyHash())
	}
	k.epoch, k.cur = epoch, cur

	nextEpoch, next, err := k.readEpochFile(epochNextFile)
	if errors.Is(err, fs.ErrNotExist) {
		return k, nil
	}
	if err == nil && (nextEpoch != epoch+1 || next.name != cur.name) {
		next.wipe()
		err = fmt.Errorf("integrity: epoch keys: %s holds epoch %d for %q, after epoch %d for %q", k.path(epochNextFile), nextEpoch, next.name, epoch, cur.name)
	}
	if err == nil && isRotationInLog == nil {
		next.wipe()
		err = fmt.Errorf("integrity: epoch keys: a rotation to epoch %d is pending and there is no way to ask the log whether it holds it", epoch+1)
	}
	if err != nil {
		cur.wipe()
		return nil, err
	}
	if isRotationInLog(next.vkey) {
		k.next = next
		if err := k.commitLocked(); err != nil {
			k.wipeAll()
			return nil, err
		}
		return k, nil
	}
	next.wipe()
	if err := fsys.Remove(k.path(epochNextFile)); err != nil {
		cur.wipe()
		return nil, fmt.Errorf("integrity: epoch keys: remove the rotation that never reached the log: %w", err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		cur.wipe()
		return nil, fmt.Errorf("integrity: epoch keys: sync %s: %w", dir, err)
	}
	return k, nil
}

func (k *EpochKeys) path(name string) string { return filepath.Join(k.dir, name) }

// ErrKeyFileMode is matched by the error of OpenEpochKeys when a key file
// may be read or written by users other than its owner.
var ErrKeyFileMode = errors.New("integrity: a private key file is accessible to other users")

// readEpochFile reads and parses "epoch <n>\n<signing key>\n". It refuses
// a file whose mode lets the group or others read or write it.
func (k *EpochKeys) readEpochFile(name string) (uint64, *keySigner, error) {
	p := k.path(name)
	if fi, err := k.fsys.Stat(p); err == nil {
		if why, fix := vfs.OwnerOnly(k.fsys, p, fi); why != "" {
			return 0, nil, fmt.Errorf("%w: %s has %s, so users other than its owner may read the log's current signing key; run '%s' (and of every mirror's copy), and treat the key as possibly stolen if others could read it", ErrKeyFileMode, p, why, fix)
		}
	}
	f, err := k.fsys.Open(p)
	if err != nil {
		return 0, nil, fmt.Errorf("integrity: epoch keys: %w", err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return 0, nil, fmt.Errorf("integrity: epoch keys: %s: %w", p, err)
	}
	if size > maxEpochFileSize {
		return 0, nil, fmt.Errorf("integrity: epoch keys: %s is not an epoch key file (%d bytes)", p, size)
	}
	b := make([]byte, size)
	defer clear(b)
	if err := readFull(f, b, 0); err != nil {
		return 0, nil, fmt.Errorf("integrity: epoch keys: %s: %w", p, err)
	}
	line, rest, ok1 := bytes.Cut(b, []byte("\n"))
	num, ok2 := bytes.CutPrefix(line, []byte("epoch "))
	skey, tail, ok3 := bytes.Cut(rest, []byte("\n"))
	if !ok1 || !ok2 || !ok3 || len(tail) != 0 {
		return 0, nil, fmt.Errorf("integrity: epoch keys: %s is damaged (want \"epoch <n>\" and a signing key, one per line)", p)
	}
	epoch, err := parseDecimal(string(num))
	if err != nil {
		return 0, nil, fmt.Errorf("integrity: epoch keys: %s is damaged: epoch %q: %v", p, num, err)
	}
	s, err := parseSignerKey(skey)
	if err != nil {
		return 0, nil, fmt.Errorf("%w (in %s)", err, p)
	}
	return epoch, s, nil
}

// writeEpochFile durably writes epoch and s's key to name, through temp
// (vfs.ReplaceFile).
func (k *EpochKeys) writeEpochFile(temp, name string, epoch uint64, s *keySigner) error {
	skey, err := s.encodeSignerKey()
	if err != nil {
		return err
	}
	data := fmt.Appendf(nil, "epoch %d\n", epoch)
	data = append(data, skey...)
	data = append(data, '\n')
	clear(skey)
	defer clear(data)

	// Owner only: it is a private key.
	if err := vfs.ReplaceFile(k.fsys, k.path(name), k.path(temp), data, true); err != nil {
		return fmt.Errorf("integrity: epoch keys: write %s: %w", k.path(name), err)
	}
	return nil
}

// Current returns the current epoch, its signer and its public key. The
// signer stops signing (its key is wiped) once a later epoch is committed.
func (k *EpochKeys) Current() (epoch uint64, signer note.Signer, vkey string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cur == nil {
		return k.epoch, nil, ""
	}
	return k.epoch, k.cur, k.cur.vkey
}

// Prepare generates the key of the next epoch and makes it durable in
// epoch.key.next. The caller then appends a rotation statement naming
// nextVKey, signed by the current key, to its log durably, and calls
// Commit. Only one rotation may be pending.
func (k *EpochKeys) Prepare() (next note.Signer, nextVKey string, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cur == nil {
		return nil, "", errors.New("integrity: epoch keys are closed")
	}
	if k.next != nil {
		return nil, "", fmt.Errorf("integrity: a rotation to epoch %d is already prepared; commit or abort it first", k.epoch+1)
	}
	var nk *keySigner
	for nk == nil || nk.id == k.cur.id {
		if nk != nil {
			nk.wipe()
		}
		seed := make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, "", fmt.Errorf("integrity: generate epoch key: %w", err)
		}
		nk, err = newKeySigner(k.cur.name, seed)
		clear(seed)
		if err != nil {
			return nil, "", err
		}
	}
	_ = k.fsys.Remove(k.path(epochNextTemp))
	if err := k.writeEpochFile(epochNextTemp, epochNextFile, k.epoch+1, nk); err != nil {
		nk.wipe()
		return nil, "", err
	}
	k.next = nk
	return nk, nk.vkey, nil
}

// Commit makes the prepared epoch current, once its rotation statement is
// durably in the log: it renames epoch.key.next over epoch.key, syncs the
// directory, wipes the old epoch's private key from memory (its signer
// refuses to sign from then on) and overwrites the old file's contents.
func (k *EpochKeys) Commit() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.next == nil {
		return errors.New("integrity: no key rotation is prepared")
	}
	return k.commitLocked()
}

func (k *EpochKeys) commitLocked() error {
	// Keep a handle on the old file so that its contents can be
	// overwritten once the new key is durable in its place.
	old, oerr := k.fsys.OpenReadWrite(k.path(epochKeyFile))
	if err := k.fsys.Rename(k.path(epochNextFile), k.path(epochKeyFile)); err != nil {
		if oerr == nil {
			old.Close()
		}
		return fmt.Errorf("integrity: commit key rotation to epoch %d: %w", k.epoch+1, err)
	}
	prev := k.cur
	k.cur, k.next = k.next, nil
	k.epoch++
	prev.wipe()
	if err := k.fsys.SyncDir(k.dir); err != nil {
		if oerr == nil {
			old.Close()
		}
		return fmt.Errorf("integrity: commit key rotation to epoch %d: sync %s: %w", k.epoch, k.dir, err)
	}
	if oerr == nil {
		// Best effort: the rotation is committed whatever happens here.
		if size, err := old.Size(); err == nil && size > 0 && size <= maxEpochFileSize {
			if _, err := old.WriteAt(make([]byte, size), 0); err == nil {
				_ = old.Datasync()
			}
		}
		old.Close()
	}
	return nil
}

// Abort discards a prepared rotation whose statement certainly did not
// reach the log (it was never written). Calling it after the statement
// reached the log would lose the next epoch's key. When the append failed
// in a write or a sync, the statement may be durable after all: do not
// Abort then; reopen with OpenEpochKeys, which asks the log.
func (k *EpochKeys) Abort() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.next == nil {
		return nil
	}
	k.next.wipe()
	k.next = nil
	if err := k.fsys.Remove(k.path(epochNextFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("integrity: abort key rotation: %w", err)
	}
	if err := k.fsys.SyncDir(k.dir); err != nil {
		return fmt.Errorf("integrity: abort key rotation: sync %s: %w", k.dir, err)
	}
	return nil
}

// Close wipes the keys held in memory. The signers it handed out stop
// signing. The keys on disk are untouched.
func (k *EpochKeys) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.wipeAll()
	return nil
}

func (k *EpochKeys) wipeAll() {
	if k.cur != nil {
		k.cur.wipe()
		k.cur = nil
	}
	if k.next != nil {
		k.next.wipe()
		k.next = nil
	}
}
