// Command mtlog-audit verifies, reads, exports, recovers and proves
// mtlog-audit logs, and runs the torture suite. Run "mtlog-audit --help" for
// the commands.
package main

import (
	"os"

	"github.com/willibrandon/mtlog-audit/internal/cli"
	"github.com/willibrandon/mtlog-audit/torture"
)

func main() {
	// The torture suite's SIGKILL scenario runs this binary as its child:
	// in a child this runs the child's work and never returns.
	torture.MaybeChild()
	os.Exit(cli.Main())
}
