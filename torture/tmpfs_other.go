//go:build !linux

package torture

import "fmt"

func mountTmpfs(dir string, size int64) error {
	return fmt.Errorf("%w: tmpfs mounts are supported on Linux only", errPrivilege)
}

func unmount(dir string) error { return nil }

func fsSpace(dir string) (total, free int64, err error) {
	return 0, 0, fmt.Errorf("not supported")
}
