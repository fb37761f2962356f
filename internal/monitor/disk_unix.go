//go:build unix

package monitor

import "syscall"

// diskFree returns the free space of the filesystem that holds dir, as an
// unprivileged writer sees it (blocks available, not blocks free).
func diskFree(dir string) (*DiskInfo, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return nil, err
	}
	bs := uint64(st.Bsize)
	d := &DiskInfo{FreeBytes: uint64(st.Bavail) * bs, TotalBytes: uint64(st.Blocks) * bs}
	if d.TotalBytes > 0 {
		d.FreeRatio = float64(d.FreeBytes) / float64(d.TotalBytes)
	}
	return d, nil
}
