//go:build unix && !linux

package vfs

import "os"

// datasync falls back to a full sync (which on Darwin is F_FULLFSYNC)
// where fdatasync is unavailable.
func datasync(f *os.File) error { return f.Sync() }
