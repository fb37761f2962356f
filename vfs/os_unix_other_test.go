//go:build unix && !linux

package vfs

import (
	"errors"
	"os"
)

func preallocateProbe(*os.File) error { return errors.ErrUnsupported }
