package cli

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/willibrandon/mtlog-audit/wal"
)

// lockHolder reports whether a process holds the lock of the log in dir
// (the flock a running sink keeps on dir/LOCK), and who, as the LOCK file
// names it. It never creates the LOCK file: it opens it read-only and tries
// a shared lock, which conflicts with the sink's exclusive one, and
// releases it at once.
func lockHolder(dir string) (held bool, owner string, err error) {
	f, err := os.Open(filepath.Join(dir, wal.LockName))
	if errors.Is(err, fs.ErrNotExist) {
		return false, "", nil
	}
	if err != nil {
		return false, "", err
	}
	defer f.Close()
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	switch {
	case errors.Is(err, syscall.EWOULDBLOCK):
		data, _ := io.ReadAll(io.LimitReader(f, 256))
		owner = strings.TrimSpace(string(data))
		if owner == "" {
			owner = "an unknown process"
		}
		return true, owner, nil
	case err != nil:
		return false, "", &fs.PathError{Op: "flock", Path: f.Name(), Err: err}
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false, "", nil
}

// checkNotLive refuses a log that a running sink has open: what looks like
// a torn tail there is the space the sink wrote ahead, and recovering a
// live log is not what the user wants.
func checkNotLive(dir string) error {
	held, owner, err := lockHolder(dir)
	if err != nil {
		return usageErr("cannot check whether %s is in use: %w", dir, err)
	}
	if held {
		return usageErr("%s is live: it is open in a running sink (%s holds %s); recover is for a damaged log that nothing writes: stop the process first, or use 'mtlog-audit verify' or 'replay', which read a live log safely", dir, owner, filepath.Join(dir, wal.LockName))
	}
	return nil
}
