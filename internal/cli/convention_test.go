package cli

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// noResult lists the commands that print no result of their own, and so
// have no --json, with the reason. A new command that prints a result needs
// --json; one that does not must be added here, with its reason.
var noResult = map[string]string{
	"mtlog-audit export":                "writes only the --output file",
	"mtlog-audit prove inclusion":       "its output is itself a JSON document (the proof)",
	"mtlog-audit prove consistency":     "its output is itself a JSON document (the proof)",
	"mtlog-audit completion bash":       "prints a shell script",
	"mtlog-audit completion zsh":        "prints a shell script",
	"mtlog-audit completion fish":       "prints a shell script",
	"mtlog-audit completion powershell": "prints a shell script",
	"mtlog-audit help":                  "prints help",
}

var (
	// A flag whose usage says it names a file that is written.
	writesFile = regexp.MustCompile(`(?i)\b(to|into) this file\b|\bthe file to write\b|\bwrite .*\bto (a|this) file\b`)
	// A flag whose usage says it chooses a format.
	choosesFormat = regexp.MustCompile(`(?i)^(output )?format\b|\bthe format of\b|\b(text|html) or json\b|\bjsonl, csv\b`)
	// Flag names that must not name an output file or a format.
	badFileName   = regexp.MustCompile(`^(file|out|outfile|output-file|json-file|report|dest|to-file)$`)
	badFormatName = regexp.MustCompile(`format|^fmt$`)
)

// conventionProblems walks every command under root and returns each
// breach of the convention the README's CLI section documents.
func conventionProblems(root *cobra.Command) []string {
	var probs []string
	bad := func(c *cobra.Command, format string, a ...any) {
		probs = append(probs, c.CommandPath()+": "+fmt.Sprintf(format, a...))
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		defer func() {
			for _, sub := range c.Commands() {
				walk(sub)
			}
		}()
		if c.Hidden {
			return // cobra's __complete
		}
		if c.Example == "" {
			bad(c, "no Example")
		}
		group := c.HasSubCommands()
		if _, exempt := noResult[c.CommandPath()]; !group && !exempt {
			if f := c.Flags().Lookup("json"); f == nil {
				bad(c, "prints a result but has no --json switch (or add it to noResult with the reason)")
			}
		}
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			deprecated := len(f.Annotations[deprecatedKey]) > 0
			switch {
			case f.Name == "json" && f.Value.Type() != "bool":
				bad(c, "--json is a %s flag; it must be a boolean switch", f.Value.Type())
			case f.Name == "output" && f.Shorthand != "o":
				bad(c, "--output has no -o shorthand")
			case f.Name == "output" && choosesFormat.MatchString(f.Usage) && !strings.Contains(f.Usage, "file"):
				bad(c, "--output chooses a format; formats are --format (and JSON on stdout is --json)")
			case deprecated:
				if !f.Hidden {
					bad(c, "--%s is deprecated but not hidden", f.Name)
				}
			case badFileName.MatchString(f.Name) || (f.Name != "output" && writesFile.MatchString(f.Usage)):
				bad(c, "--%s names an output file; output files are -o/--output", f.Name)
			case f.Name != "format" && (badFormatName.MatchString(f.Name) || choosesFormat.MatchString(f.Usage)):
				bad(c, "--%s chooses a format; formats are --format", f.Name)
			case f.Shorthand == "o" && f.Name != "output":
				bad(c, "-o is the shorthand of --%s; it is reserved for --output", f.Name)
			}
			for _, name := range enumFlags {
				if f.Name == name && !deprecated {
					if _, ok := c.GetFlagCompletionFunc(name); !ok {
						bad(c, "--%s takes one of a fixed set of values but the shell cannot complete them (registerCompletions)", name)
					}
				}
			}
		})
	}
	walk(root)
	return probs
}

// allCommands lists the path (without the program name) of every command
// under root, groups included, hidden ones not.
func allCommands(root *cobra.Command) [][]string {
	var out [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		if c.Hidden {
			return
		}
		out = append(out, path)
		for _, sub := range c.Commands() {
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	walk(root, nil)
	return out
}

// TestConventions walks every command and subcommand (a new one is covered
// without changing this test) and checks the convention: a boolean --json
// on every command that prints a result, output files with -o/--output,
// formats with --format, completion of enumerated flag values, an Example
// everywhere.
func TestConventions(t *testing.T) {
	root := newRoot(&env{})
	for _, p := range conventionProblems(root) {
		t.Error(p)
	}
	// The test must see every command; a sanity check that it walks them.
	if n := len(allCommands(root)); n < 20 {
		t.Errorf("walked %d commands; want them all", n)
	}
}

// TestConventionsCatchBreaches adds commands that break each rule and
// checks that the walk reports every one: the test above cannot pass
// vacuously.
func TestConventionsCatchBreaches(t *testing.T) {
	root := newRoot(&env{})
	var s string
	var b bool
	noJSON := &cobra.Command{Use: "nojson", Example: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	noExample := &cobra.Command{Use: "noexample", RunE: func(*cobra.Command, []string) error { return nil }}
	noExample.Flags().BoolVar(&b, "json", false, "")
	jsonFile := &cobra.Command{Use: "jsonfile", Example: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	jsonFile.Flags().StringVar(&s, "json", "", "write JSON to this file")
	fileFlag := &cobra.Command{Use: "fileflag", Example: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	fileFlag.Flags().BoolVar(&b, "json", false, "")
	fileFlag.Flags().StringVar(&s, "file", "", "write to this file")
	noShort := &cobra.Command{Use: "noshort", Example: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	noShort.Flags().BoolVar(&b, "json", false, "")
	noShort.Flags().StringVar(&s, "output", "", "write to this file")
	fmtFlag := &cobra.Command{Use: "fmtflag", Example: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	fmtFlag.Flags().BoolVar(&b, "json", false, "")
	fmtFlag.Flags().StringVar(&s, "output-format", "", "text or json")
	noComplete := &cobra.Command{Use: "nocomplete", Example: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	noComplete.Flags().BoolVar(&b, "json", false, "")
	noComplete.Flags().StringVar(&s, "mode", "", "fast or slow")
	root.AddCommand(noJSON, noExample, jsonFile, fileFlag, noShort, fmtFlag, noComplete)
	got := strings.Join(conventionProblems(root), "\n")
	for _, want := range []string{
		"nojson: prints a result but has no --json",
		"noexample: no Example",
		"jsonfile: --json is a string flag",
		"fileflag: --file names an output file",
		"noshort: --output has no -o",
		"fmtflag: --output-format chooses a format",
		"nocomplete: --mode takes one of a fixed set",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the walk missed %q; it reported:\n%s", want, got)
		}
	}
}

// TestUnknownFlagIsUsageError runs every command with an unknown flag: exit
// status 2 and a hint to run --help.
func TestUnknownFlagIsUsageError(t *testing.T) {
	for _, path := range allCommands(newRoot(&env{})) {
		args := append(append([]string(nil), path...), "--no-such-flag")
		var out, errb bytes.Buffer
		code := Run(context.Background(), args, strings.NewReader(""), &out, &errb)
		if code != ExitUsage || !strings.Contains(errb.String(), "--help") {
			t.Errorf("%v: exit %d, want %d with a hint to run --help; stderr: %s", args, code, ExitUsage, errb.String())
		}
	}
}
