package cli

import "github.com/spf13/cobra"

// complianceCmd is the parent of the compliance commands: check (a
// configuration against a profile) and report (for an assessor).
func complianceCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "compliance",
		Short: "Check a configuration against a compliance profile, or report on a log",
		Long: `compliance works with the compliance profiles of mtlog-audit: HIPAA,
PCI-DSS, SOX, GDPR and NIST-800-53-HIGH (docs/compliance/README.md).
check tells whether a sink's configuration meets a profile; report writes
the evidence of a log for a period, control by control.`,
		Example: `  mtlog-audit compliance check --profile PCI-DSS --config audit.json
  mtlog-audit compliance report --profile SOX --period 2026-Q1 -o report.html`,
	}
	cmd.AddCommand(complianceCheckCmd(e), complianceReportCmd(e))
	return cmd
}
