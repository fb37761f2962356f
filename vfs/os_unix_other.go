//go:build unix && !linux

package vfs

import "os"

// datasync falls back to a full sync (which on Darwin is F_FULLFSYNC)
// where fdatasync is unavailable.
func datasync(f *os.File) error { return f.Sync() }

// preallocate is a no-op where fallocate is unavailable; it is a hint.
func preallocate(*os.File, int64, int64) error { return nil }
