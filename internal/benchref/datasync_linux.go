package benchref

import (
	"os"
	"syscall"
)

// datasync makes f's data durable with fdatasync, as the log does on Linux.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
