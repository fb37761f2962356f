package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/backends/all"
)

func backendCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backend",
		Short: "Set up and check the object stores a log is shipped to",
		Example: `  mtlog-audit backend init 's3://audit-bucket/host-1?endpoint=http://127.0.0.1:9000'
  mtlog-audit backend init azure://myaccount/audit/host-1
  mtlog-audit backend init gs://audit-copy/host-1 --project my-project
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
	var project string
	cmd := &cobra.Command{
		Use:   "init URL [--mutable] [--project ID] [--json]",
		Short: "Create a backend's bucket, container or directory if missing, and check it",
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
  azure://ACCOUNT/CONTAINER/PREFIX
                     creates the container, or checks an existing one. The
                     key comes from AZURE_STORAGE_KEY or
                     AZURE_STORAGE_CONNECTION_STRING; ?endpoint=URL names
                     Azurite. The Blob service cannot ask for version-level
                     immutability: a new container has it when the account
                     gives it to every container. One created without it is
                     deleted again (unless --mutable): create it with
                     az storage container-rm create --enable-vlw instead.
                     Azurite has no immutability.
  gs://BUCKET/PREFIX creates the bucket with object retention enabled (GCS
                     allows it only at creation) in the project --project
                     or GOOGLE_CLOUD_PROJECT names, or checks an existing
                     one. Credentials: Application Default Credentials;
                     ?endpoint=URL names an emulator (fake-gcs-server), which
                     keeps no retention: use --mutable there.

An existing bucket without Object Lock, or a container or bucket without
immutability, is refused unless --mutable: the copy would then be one that an
administrator of the account can delete or change. A directory is never
immutable by itself and is not refused.

Exit status: 0 the backend is ready; 1 it lacks immutability (without
--mutable); 2 usage or environment error (a URL that does not parse, an
unknown scheme, refused credentials, an unreachable service).`,
		Example: `  export AWS_ACCESS_KEY_ID=minioadmin AWS_SECRET_ACCESS_KEY=minioadmin
  mtlog-audit backend init 's3://audit-bucket/host-1?endpoint=http://127.0.0.1:9000'
  mtlog-audit backend init file:///mnt/audit-copy

  export AZURE_STORAGE_KEY=...   # the account's key, as the portal shows it
  mtlog-audit backend init azure://myaccount/audit/host-1

  mtlog-audit backend init gs://audit-copy/host-1 --project my-project --json
  mtlog-audit backend init 'gs://audit-test/host-1?endpoint=http://127.0.0.1:4443' --mutable`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := initBackend(cmd.Context(), args[0], project, !mutable)
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
	cmd.Flags().StringVar(&project, "project", "", "the Google Cloud project a new gs:// bucket is created in (default: $GOOGLE_CLOUD_PROJECT)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON on stdout")
	return cmd
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// initBackend creates the store of rawURL when it is missing
// (backends/all.Init), opens the backend and checks it.
func initBackend(ctx context.Context, rawURL, project string, immutable bool) (backendInitJSON, error) {
	b, created, err := all.Init(ctx, rawURL, all.InitOptions{Immutable: immutable, Project: project})
	if errors.Is(err, backends.ErrUnsupported) {
		// A store created without immutability, or one that cannot have it.
		return backendInitJSON{}, failErr(err)
	}
	if err != nil {
		return backendInitJSON{}, usageErr("%w", err)
	}
	defer b.Close()
	caps := b.Capabilities()
	res := backendInitJSON{Backend: b.Name(), Created: created, Immutable: caps.Retention, LegalHold: caps.LegalHold, ServerChecksum: caps.ServerChecksum}
	if scheme, _, _ := strings.Cut(rawURL, ":"); immutable && !caps.Retention && scheme != "file" {
		return res, failErr(fmt.Errorf("%s: %w", b.Name(), noImmutability(scheme)))
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
		why = "the container has no version-level immutability support, which cannot be turned on for an existing container: use a new one created with it (az storage container-rm create --enable-vlw, or an account that has it), or pass --mutable (Azurite has none)"
	case "gs":
		why = "the bucket has no object retention, which GCS enables only when a bucket is created: use a new bucket (init creates it with object retention), or pass --mutable (fake-gcs-server has none)"
	default:
		why = "the store keeps no immutable objects; pass --mutable to use it anyway"
	}
	return fmt.Errorf("%w: %s", backends.ErrUnsupported, why)
}
