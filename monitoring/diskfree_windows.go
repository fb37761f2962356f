package monitoring

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// DiskFree returns the ratio of the space available to the calling user
// to the size of the volume holding path (GetDiskFreeSpaceEx), from 0 to 1.
func DiskFree(path string) (float64, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return 0, fmt.Errorf("monitoring: free space of %s: %w", path, err)
	}
	var avail, total, free uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &total, &free); err != nil {
		return 0, fmt.Errorf("monitoring: GetDiskFreeSpaceEx %s: %w", path, err)
	}
	if total == 0 {
		return 0, fmt.Errorf("monitoring: GetDiskFreeSpaceEx %s: the volume reports no size", path)
	}
	return float64(avail) / float64(total), nil
}
