//go:build !unix

package cli_test

import (
	"testing"
	"time"
)

// cpuTime returns 0 where the process's CPU time is not read (the
// benchmark's cpu-s/op is then 0).
func cpuTime(testing.TB) time.Duration { return 0 }
