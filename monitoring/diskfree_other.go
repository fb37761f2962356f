//go:build !(linux || darwin || freebsd || netbsd || openbsd || windows)

package monitoring

import (
	"errors"
	"fmt"
)

// DiskFree returns the ratio of the space available to unprivileged users
// to the size of the filesystem holding path. It is not implemented on this
// platform: the error matches errors.ErrUnsupported.
func DiskFree(path string) (float64, error) {
	return 0, fmt.Errorf("monitoring: free space of %s: %w", path, errors.ErrUnsupported)
}
