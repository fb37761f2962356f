package vfs

import (
	"os"
	"syscall"
)

// datasync calls fdatasync(2) on f.
func datasync(f *os.File) error {
	return control(f, func(fd int) error {
		return ignoringEINTR(func() error { return syscall.Fdatasync(fd) })
	})
}
