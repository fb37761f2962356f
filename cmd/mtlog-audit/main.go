// Command mtlog-audit verifies, reads, exports, recovers and proves
// mtlog-audit logs. Run "mtlog-audit --help" for the commands.
package main

import (
	"os"

	"github.com/willibrandon/mtlog-audit/internal/cli"
)

func main() { os.Exit(cli.Main()) }
