package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/compliance"
)

// sinkConfig is the configuration file of `compliance check`: the options
// of a sink, one key per option (docs/configuration.md).
type sinkConfig struct {
	WAL             string            `json:"wal"`
	SigningKeyFile  string            `json:"signing_key_file"`
	ForwardSecurity string            `json:"forward_security"`
	Keyring         string            `json:"keyring"`
	Encrypt         *[]string         `json:"encrypt"`
	Pseudonymize    []string          `json:"pseudonymize"`
	Mirrors         []string          `json:"mirrors"`
	Shipping        *shippingConfig   `json:"shipping"`
	Retention       string            `json:"retention"`
	FailureMode     string            `json:"failure_mode"`
	LifecycleEvents bool              `json:"lifecycle_events"`
	RequiredFields  *[]string         `json:"required_fields"`
	MissingFields   string            `json:"missing_fields"`
	Waivers         map[string]string `json:"waivers"`
}

type shippingConfig struct {
	Quorum   int      `json:"quorum"`
	Backends []string `json:"backends"`
}

// unmetJSON is one line of `compliance check --json`.
type unmetJSON struct {
	Requirement string `json:"requirement"`
	Clause      string `json:"clause"`
	Problem     string `json:"problem"`
	Fix         string `json:"fix"`
}

// checkJSON is what `compliance check --json` prints.
type checkJSON struct {
	Profile string      `json:"profile"`
	Met     bool        `json:"met"`
	Unmet   []unmetJSON `json:"unmet"`
}

func complianceCheckCmd(e *env) *cobra.Command {
	var profile, file string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check --profile NAME --config FILE",
		Short: "List every requirement of a profile that a sink configuration does not meet",
		Long: `check reads a sink's configuration file (JSON, one key per option of the
library: docs/configuration.md) and prints every requirement of the
profile that it does not meet, with the clause it comes from and the
option that meets it: the same list audit.New gives for
audit.WithCompliance. It opens no log and no backend; it reads the signing
key file to check it.

Profiles: ` + strings.Join(compliance.Names(), ", ") + `.

Exit status: 0 the configuration meets the profile; 1 requirements are
unmet; 2 usage error (unknown profile, unreadable or invalid file).`,
		Example: `  mtlog-audit compliance check --profile PCI-DSS --config /etc/myapp/audit.json
  mtlog-audit compliance check --profile HIPAA --config audit.json --json | jq .unmet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "profile", "config"); err != nil {
				return err
			}
			p, err := compliance.Lookup(profile)
			if err != nil {
				return usageErr("--profile: %w", err)
			}
			sc, err := readSinkConfig(file)
			if err != nil {
				return usageErr("--config %s: %w", file, err)
			}
			opts, err := sc.options(p.Name)
			if err != nil {
				return usageErr("--config %s: %w", file, err)
			}
			err = audit.CheckConfig(opts...)
			var ue *compliance.UnmetError
			if err != nil && !errors.As(err, &ue) {
				return usageErr("--config %s: %w", file, err)
			}
			out := checkJSON{Profile: p.Name, Met: ue == nil, Unmet: []unmetJSON{}}
			if ue != nil {
				for _, u := range ue.Unmet {
					out.Unmet = append(out.Unmet, unmetJSON{Requirement: string(u.Requirement), Clause: u.Clause, Problem: u.Problem, Fix: u.Fix})
				}
			}
			if asJSON {
				if err := writeJSON(e.stdout, out); err != nil {
					return err
				}
			} else {
				printCheck(e.stdout, file, out)
			}
			if !out.Met {
				return failErr(errors.New(""))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&profile, "profile", "", "the profile: "+strings.Join(compliance.Names(), ", "))
	f.StringVar(&file, "config", "", "the sink's configuration file (JSON; docs/configuration.md)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	_ = cmd.RegisterFlagCompletionFunc("profile", cobra.FixedCompletions(compliance.Names(), cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func printCheck(w io.Writer, file string, out checkJSON) {
	if out.Met {
		fmt.Fprintf(w, "%s meets %s\n", file, out.Profile)
		return
	}
	fmt.Fprintf(w, "%s does not meet %s: %d unmet\n", file, out.Profile, len(out.Unmet))
	for _, u := range out.Unmet {
		fmt.Fprintf(w, "  - %s (%s): %s\n    fix: %s\n", u.Requirement, u.Clause, u.Problem, u.Fix)
	}
}

// readSinkConfig reads and strictly decodes the file at path.
func readSinkConfig(path string) (*sinkConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var sc sinkConfig
	if err := dec.Decode(&sc); err != nil {
		return nil, fmt.Errorf("not a sink configuration (docs/configuration.md): %w", err)
	}
	return &sc, nil
}

// declared is a shipping backend named by its URL and never opened: the
// check counts it and reads its name only.
type declared struct {
	backends.Backend
	url string
}

func (d declared) Name() string { return d.url }

// options returns the options sc describes, with WithCompliance(profile).
func (sc *sinkConfig) options(profile string) ([]audit.Option, error) {
	var opts []audit.Option
	var errs []error
	if sc.WAL != "" {
		opts = append(opts, audit.WithWAL(sc.WAL))
	}
	if sc.SigningKeyFile != "" {
		opts = append(opts, audit.WithSigningKeyFile(sc.SigningKeyFile))
	}
	if sc.ForwardSecurity != "" {
		d, err := time.ParseDuration(sc.ForwardSecurity)
		if err != nil {
			errs = append(errs, fmt.Errorf("forward_security %q: use a Go duration, such as 24h", sc.ForwardSecurity))
		}
		opts = append(opts, audit.WithForwardSecurity(d))
	}
	if sc.Keyring != "" {
		opts = append(opts, audit.WithKeyring(sc.Keyring, nil))
	}
	if sc.Encrypt != nil {
		opts = append(opts, audit.WithEncryption(*sc.Encrypt...))
	}
	if sc.Pseudonymize != nil {
		opts = append(opts, audit.WithPseudonymize(sc.Pseudonymize...))
	}
	if len(sc.Mirrors) > 0 {
		opts = append(opts, audit.WithRedundancy(sc.Mirrors...))
	}
	if sh := sc.Shipping; sh != nil {
		bs := make([]backends.Backend, len(sh.Backends))
		for i, u := range sh.Backends {
			if p, err := url.Parse(u); err != nil || !slices.Contains([]string{"file", "s3", "azure", "gs"}, p.Scheme) {
				errs = append(errs, fmt.Errorf("shipping.backends[%d] %q: use a URL of file://, s3://, azure:// or gs://", i, u))
			}
			bs[i] = declared{url: u}
		}
		opts = append(opts, audit.WithShipping(sh.Quorum, bs...))
	}
	if sc.Retention != "" {
		d, err := compliance.ParsePeriod(sc.Retention)
		if err != nil {
			errs = append(errs, fmt.Errorf("retention: %w", err))
		}
		opts = append(opts, audit.WithRetention(d))
	}
	switch sc.FailureMode {
	case "", "fail-closed":
	case "fail-open":
		opts = append(opts, audit.WithFailOpen())
	case "panic":
		opts = append(opts, audit.WithPanicOnFailure())
	default:
		errs = append(errs, fmt.Errorf("failure_mode %q: use fail-closed, fail-open or panic", sc.FailureMode))
	}
	if sc.LifecycleEvents {
		opts = append(opts, audit.WithLifecycleEvents())
	}
	var copts []compliance.Option
	if sc.RequiredFields != nil {
		copts = append(copts, compliance.RequireFields(*sc.RequiredFields...))
	}
	switch sc.MissingFields {
	case "":
	case "reject":
		copts = append(copts, compliance.OnMissingFields(compliance.Reject))
	case "flag":
		copts = append(copts, compliance.OnMissingFields(compliance.Flag))
	default:
		errs = append(errs, fmt.Errorf("missing_fields %q: use reject or flag", sc.MissingFields))
	}
	for _, r := range slices.Sorted(maps.Keys(sc.Waivers)) {
		copts = append(copts, compliance.Waive(compliance.Requirement(r), sc.Waivers[r]))
	}
	opts = append(opts, audit.WithCompliance(profile, copts...))
	return opts, errors.Join(errs...)
}
