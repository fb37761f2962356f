//go:build linux || darwin || freebsd || netbsd || openbsd

package monitoring

import (
	"fmt"
	"syscall"
)

// DiskFree returns the ratio of the space available to unprivileged users
// to the size of the filesystem holding path (statfs), from 0 to 1.
func DiskFree(path string) (float64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("monitoring: statfs %s: %w", path, err)
	}
	if st.Blocks == 0 {
		return 0, fmt.Errorf("monitoring: statfs %s: the filesystem reports no blocks", path)
	}
	return float64(st.Bavail) / float64(st.Blocks), nil
}
