package cli

import "github.com/spf13/cobra"

// complianceCmd is the parent of the compliance subcommands. (The report
// helper's minimal version: at merge the profiles helper's, which also
// adds 'check', replaces it.)
func complianceCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "compliance",
		Short:   "Compliance reports of a log for an assessor",
		Example: `  mtlog-audit compliance report --wal ./audit-wal --key audit.pub --profile PCI-DSS --period 2026-Q1 -o report.html`,
	}
	cmd.AddCommand(complianceReportCmd(e))
	return cmd
}
