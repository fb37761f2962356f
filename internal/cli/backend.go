package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"

	"github.com/spf13/cobra"
	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/backends/s3"
)

func backendCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backend",
		Short: "Set up and check the object stores a log is shipped to",
		Example: `  mtlog-audit backend init 's3://audit-bucket/host-1?endpoint=http://127.0.0.1:9000'
  mtlog-audit backend init file:///mnt/audit-copy`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(backendInitCmd(e))
	return cmd
}

// backendInitJSON is the JSON form of backend init's result.
type backendInitJSON struct {
	Backend        string `json:"backend"`
	Created        bool   `json:"created"`
	Immutable      bool   `json:"immutable"`
	LegalHold      bool   `json:"legal_hold"`
	ServerChecksum bool   `json:"server_checksum"`
}

func backendInitCmd(e *env) *cobra.Command {
	var mutable, asJSON bool
	cmd := &cobra.Command{
		Use:   "init URL [--mutable] [--json]",
		Short: "Create a backend's bucket or directory where the driver can, and check it",
		Long: `init prepares the store a log is shipped to (audit.WithShipping) and checks
that it is usable, so that a first run does not find a missing bucket.

  file:///ABS/PATH   creates the directory (mode 0700) if it is missing. A
                     directory keeps no immutability of its own.
  s3://BUCKET/PREFIX creates the bucket with Object Lock enabled (which also
                     turns versioning on; S3 allows it only at creation), or,
                     if it exists, checks that it has Object Lock. Credentials
                     come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a
                     profile or a role; ?endpoint=URL names MinIO or another
                     S3-compatible service.
  azure://, gs://    check that the container or bucket exists and report
                     whether it has immutability; create them with the
                     service's own tools (az storage container create,
                     gcloud storage buckets create).

An existing bucket without Object Lock, or a container or bucket without
immutability, is refused unless --mutable: the copy would then be one that an
administrator of the account can delete or change. A directory is never
immutable by itself and is not refused.

Exit status: 0 the backend is ready; 1 it exists but lacks immutability
(without --mutable); 2 usage or environment error (a URL that does not parse,
an unknown scheme, refused credentials, an unreachable service).`,
		Example: `  export AWS_ACCESS_KEY_ID=minioadmin AWS_SECRET_ACCESS_KEY=minioadmin
  mtlog-audit backend init 's3://audit-bucket/host-1?endpoint=http://127.0.0.1:9000'
  mtlog-audit backend init file:///mnt/audit-copy
  mtlog-audit backend init gs://audit-copy/host-1 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := initBackend(cmd.Context(), args[0], !mutable)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, res)
			}
			state := "exists"
			if res.Created {
				state = "created"
			}
			fmt.Fprintf(e.stdout, "%s: %s; immutable objects (retention): %s, legal hold: %s, checksums checked by the service: %s\n",
				res.Backend, state, yesNo(res.Immutable), yesNo(res.LegalHold), yesNo(res.ServerChecksum))
			return nil
		},
	}
	cmd.Flags().BoolVar(&mutable, "mutable", false, "accept, or create, a store without immutability (Object Lock, immutability policy, retention)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON on stdout")
	return cmd
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// initBackend creates what the driver of rawURL can create (a directory, an
// S3 bucket with Object Lock), opens the backend and checks it.
func initBackend(ctx context.Context, rawURL string, immutable bool) (backendInitJSON, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// openBackend gives the error that lists the URL forms.
		_, err := openBackend(ctx, rawURL)
		return backendInitJSON{}, err
	}
	created := false
	switch u.Scheme {
	case "file":
		if u.Path != "" {
			if _, err := os.Stat(u.Path); errors.Is(err, os.ErrNotExist) {
				if err := os.MkdirAll(u.Path, 0o700); err != nil {
					return backendInitJSON{}, usageErr("%s: create the directory: %w", rawURL, err)
				}
				created = true
			}
		}
	case "s3":
		cfg, err := s3.ParseURL(rawURL)
		if err != nil {
			return backendInitJSON{}, usageErr("%w", err)
		}
		cfg.RequireObjectLock = false // checked below, with its own message
		// Only a missing bucket is created; any other answer of the probe
		// (refused credentials, a wrong endpoint) is reported by Open.
		if b, err := s3.New(ctx, cfg); err == nil {
			b.Close()
		} else if errors.Is(err, s3.ErrNoBucket) {
			if err := s3.CreateBucket(ctx, cfg, immutable); err != nil {
				return backendInitJSON{}, usageErr("%w", err)
			}
			created = true
		}
	}
	b, err := openBackend(ctx, rawURL)
	if err != nil {
		return backendInitJSON{}, err
	}
	defer b.Close()
	caps := b.Capabilities()
	res := backendInitJSON{Backend: b.Name(), Created: created, Immutable: caps.Retention, LegalHold: caps.LegalHold, ServerChecksum: caps.ServerChecksum}
	if immutable && !caps.Retention && u.Scheme != "file" {
		return res, failErr(fmt.Errorf("%s: %w", b.Name(), noImmutability(u.Scheme)))
	}
	return res, nil
}

// noImmutability says, per scheme, why a store keeps no immutable objects
// and what to do.
func noImmutability(scheme string) error {
	var why string
	switch scheme {
	case "s3":
		why = "the bucket exists without Object Lock, which S3 enables only when a bucket is created: use a new bucket (init creates it with Object Lock), or pass --mutable"
	case "azure":
		why = "the container has no version-level immutability support: create one with it enabled, or pass --mutable (Azurite has none)"
	case "gs":
		why = "the bucket has no object retention: create one with --enable-per-object-retention, or pass --mutable (fake-gcs-server has none)"
	default:
		why = "the store keeps no immutable objects; pass --mutable to use it anyway"
	}
	return fmt.Errorf("%w: %s", backends.ErrUnsupported, why)
}
