package cli

import (
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// lockHolder reports whether a process holds the lock of the log in dir
// (the lock a running sink keeps on dir/LOCK), and who, as the LOCK file
// names it. It never creates the LOCK file and never blocks: it asks
// vfs.LockHeld, which probes without disturbing the holder.
func lockHolder(dir string) (held bool, owner string, err error) {
	name := filepath.Join(dir, wal.LockName)
	held, _, err = vfs.LockHeld(vfs.OS(), name)
	if err != nil || !held {
		return false, "", err
	}
	f, err := os.Open(name)
	if err == nil {
		data, _ := io.ReadAll(io.LimitReader(f, 256))
		f.Close()
		owner = strings.TrimSpace(string(data))
	}
	if owner == "" {
		owner = "an unknown process"
	}
	return true, owner, nil
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
