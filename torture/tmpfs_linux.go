//go:build linux

package torture

import (
	"errors"
	"fmt"
	"syscall"
)

// mountTmpfs mounts a tmpfs of size bytes on dir. It returns an error
// matching errPrivilege when the process may not mount.
func mountTmpfs(dir string, size int64) error {
	err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size))
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("%w: mount tmpfs on %s: %w", errPrivilege, dir, err)
	}
	return err
}

// unmount unmounts dir, lazily if it is busy.
func unmount(dir string) error {
	err := syscall.Unmount(dir, 0)
	if errors.Is(err, syscall.EBUSY) {
		err = syscall.Unmount(dir, syscall.MNT_DETACH)
	}
	return err
}

// fsSpace returns the total and free bytes of the filesystem holding dir.
func fsSpace(dir string) (total, free int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return int64(st.Blocks) * st.Bsize, int64(st.Bfree) * st.Bsize, nil
}
