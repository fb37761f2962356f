package vfs

import (
	"os"
	"syscall"
)

func preallocateProbe(f *os.File) error {
	return syscall.Fallocate(int(f.Fd()), fallocKeepSize, 0, 4096)
}
