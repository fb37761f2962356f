package monitor

import "golang.org/x/sys/windows"

// diskFree returns the free space of the volume that holds dir, as the
// calling user sees it (GetDiskFreeSpaceEx: bytes available to the
// caller, which quotas may make less than the volume's free bytes).
func diskFree(dir string) (*DiskInfo, error) {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return nil, err
	}
	var avail, total, free uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &total, &free); err != nil {
		return nil, err
	}
	d := &DiskInfo{FreeBytes: avail, TotalBytes: total}
	if d.TotalBytes > 0 {
		d.FreeRatio = float64(d.FreeBytes) / float64(d.TotalBytes)
	}
	return d, nil
}
