package cli

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/willibrandon/mtlog-audit/internal/export"
	"github.com/willibrandon/mtlog-audit/torture"
)

// enumFlags are the flags whose values are a fixed set, and so are
// completed by the shell. The convention test checks that every flag of
// one of these names has a completion function.
var enumFlags = []string{"format", "mode", "sync", "scenarios", "profile", "progress"}

// flagValues lists the values of the flag name of the command c (by its
// path, for flags whose values differ between commands); nil if the flag
// takes no fixed set there.
func flagValues(c *cobra.Command, name string) []string {
	switch name {
	case "format":
		if c.Name() == "torture" {
			return tortureFormats
		}
		return export.Formats()
	case "mode":
		return []string{"safe", "aggressive"}
	case "sync":
		return []string{"durable", "interval"}
	case "scenarios":
		return torture.Names()
	case "progress":
		return []string{"auto", "always", "never"}
	}
	return nil
}

// registerCompletions makes the shell complete the values of every enum
// flag of c and its subcommands (cobra's RegisterFlagCompletionFunc).
func registerCompletions(c *cobra.Command) {
	for _, name := range enumFlags {
		if c.LocalNonPersistentFlags().Lookup(name) == nil && c.PersistentFlags().Lookup(name) == nil {
			continue
		}
		values := flagValues(c, name)
		if values == nil {
			continue
		}
		fn := cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp)
		if name == "scenarios" {
			fn = completeList(values)
		}
		// The error is for a flag that does not exist or is registered
		// twice; neither can happen here.
		_ = c.RegisterFlagCompletionFunc(name, fn)
	}
	for _, sub := range c.Commands() {
		registerCompletions(sub)
	}
}

// completeList completes a comma-separated list: the values not yet given,
// after what was typed up to the last comma.
func completeList(values []string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		prefix := ""
		given := map[string]bool{}
		if i := strings.LastIndex(toComplete, ","); i >= 0 {
			prefix = toComplete[:i+1]
			for _, v := range strings.Split(toComplete[:i], ",") {
				given[v] = true
			}
		}
		var out []cobra.Completion
		for _, v := range values {
			if !given[v] {
				out = append(out, prefix+v)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
}
