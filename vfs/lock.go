package vfs

import (
	"fmt"
	"strings"
)

// lockedError is the error Lock returns when owner holds the lock on name.
func lockedError(name, owner string) error {
	owner = strings.TrimSpace(owner)
	if owner == "" {
		owner = "an unknown owner"
	}
	return fmt.Errorf("%w: %s is held by %s", ErrLocked, name, owner)
}
