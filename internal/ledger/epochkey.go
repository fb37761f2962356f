package ledger

import (
	"fmt"
	"path/filepath"

	"github.com/willibrandon/mtlog-audit/integrity"
	"golang.org/x/mod/sumdb/note"
)

// ErrEpochKeyMismatch is matched by the error of New when the log's
// forward-security key file (epoch.key) disagrees with the log: its epoch or
// its key is not the one the log's newest rotation statement (or last
// signed checkpoint, or the genesis key) establishes. Signing with it would
// produce checkpoints the log's own verifiers reject. It is
// integrity.ErrEpochKeyMismatch, which OpenEpochKeys's errors match when
// the file was made for another genesis key.
var ErrEpochKeyMismatch = integrity.ErrEpochKeyMismatch

// checkEpochKey checks the epoch key file that OpenEpochKeys loaded against
// the log, before anything is signed with it:
//
//   - if a rotation statement follows the last signed checkpoint, it must
//     name that checkpoint (its epoch, size and root), and the key file
//     must hold the statement's epoch and the key it names;
//   - otherwise, if there is a signed checkpoint, the key file must hold
//     its epoch and a key whose signature on it verifies;
//   - otherwise the log has never rotated: the key file must hold epoch 0
//     and, when the genesis key is configured, that key.
//
// A bit flipped in the epoch number or the key is thus refused on open.
func (l *Ledger) checkEpochKey(genesis note.Signer, last *integrity.Checkpoint) error {
	epoch, signer, vkey := l.epochs.Current()
	file := filepath.Join(l.dir, integrity.EpochKeyFile)
	mismatch := func(format string, args ...any) error {
		l.epochs.Close()
		return fmt.Errorf("%w: %w: %s holds key epoch %d (key %s+%08x), but %s; either the key file is damaged or belongs to another log (restore it from a mirror or backup), or the last stored checkpoint was not signed by this log (keep the directory as evidence and run audit.Verify with the genesis public key); nothing was signed or changed",
			ErrIntegrity, ErrEpochKeyMismatch, file, epoch, signer.Name(), signer.KeyHash(), fmt.Sprintf(format, args...))
	}
	var rot *integrity.Rotation
	if l.lastRotation != nil {
		if r, err := integrity.ParseRotation(l.lastRotation); err == nil {
			rot = &r
		}
	}
	switch {
	case rot != nil && (last == nil || rot.Epoch > last.Epoch):
		// A rotation after the last checkpoint: the writer stopped
		// between the statement and the next epoch's first checkpoint.
		// The statement commits to the checkpoint it follows (signed
		// just before it), so that checkpoint must be the last one
		// stored: a stored checkpoint that the statement does not name
		// is not taken on its word. (The statement itself is in the
		// tail that authenticateTail checks.)
		if last != nil && (rot.Epoch != last.Epoch+1 || rot.Size != last.Size || rot.Root != last.Root) {
			return mismatch("the log's newest rotation statement (to epoch %d) follows the checkpoint of tree size %d in epoch %d, not the last stored checkpoint (tree size %d, epoch %d)", rot.Epoch, rot.Size, rot.Epoch-1, last.Size, last.Epoch)
		}
		if epoch != rot.Epoch || vkey != rot.NextKey {
			return mismatch("the log's newest rotation statement begins epoch %d with key %s", rot.Epoch, rot.NextKey)
		}
	case last != nil:
		if epoch != last.Epoch {
			return mismatch("the last signed checkpoint is of epoch %d", last.Epoch)
		}
		raw, _ := l.cps.Last()
		trusted, err := integrity.NewVerifiers(vkey)
		if err == nil {
			_, err = integrity.OpenCheckpoint(raw, trusted)
		}
		if err != nil {
			return mismatch("the last signed checkpoint (epoch %d) does not verify with that key: %v", last.Epoch, err)
		}
	default:
		if epoch != 0 {
			return mismatch("the log holds no signed checkpoint and no rotation, so it is at epoch 0")
		}
		if genesis != nil && genesis.KeyHash() != signer.KeyHash() {
			return mismatch("the configured signing key is %s+%08x", genesis.Name(), genesis.KeyHash())
		}
	}
	return nil
}
