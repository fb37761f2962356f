//go:build !linux

package benchref

import "os"

// datasync falls back to a full sync where fdatasync is unavailable, as the
// log does (vfs: on Darwin, Sync is F_FULLFSYNC).
func datasync(f *os.File) error { return f.Sync() }
