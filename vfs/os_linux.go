package vfs

import (
	"os"
	"syscall"
)

// fallocKeepSize is FALLOC_FL_KEEP_SIZE from <linux/falloc.h>, which package
// syscall does not define.
const fallocKeepSize = 0x1

// datasync calls fdatasync(2) on f.
func datasync(f *os.File) error {
	return control(f, func(fd int) error {
		return ignoringEINTR(func() error { return syscall.Fdatasync(fd) })
	})
}

// preallocate calls fallocate(2) with FALLOC_FL_KEEP_SIZE on f, treating
// "not supported" as success since preallocation is only a hint.
func preallocate(f *os.File, off, n int64) error {
	err := control(f, func(fd int) error {
		return ignoringEINTR(func() error { return syscall.Fallocate(fd, fallocKeepSize, off, n) })
	})
	if err == syscall.EOPNOTSUPP || err == syscall.ENOSYS {
		return nil
	}
	return err
}
