package cloud_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/backends/azure"
	"github.com/willibrandon/mtlog-audit/backends/fs"
	"github.com/willibrandon/mtlog-audit/backends/gcs"
	"github.com/willibrandon/mtlog-audit/backends/s3"
	"github.com/willibrandon/mtlog-audit/backends/s3/s3test"
	"github.com/willibrandon/mtlog-audit/cloud"
	"github.com/willibrandon/mtlog-audit/internal/testservers"
)

func write(t *testing.T, s *audit.Sink, n int) {
	t.Helper()
	for i := range n {
		if _, err := s.Write(context.Background(), &audit.Event{MessageTemplate: "event {N}", Properties: map[string]any{"N": i, "Pad": strings.Repeat("p", 200)}}); err != nil {
			t.Fatal(err)
		}
	}
}

func fsDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "remote")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A shorthand, a URL and a backend of the caller's form one set: every
// backend holds every sealed segment, and the quorum is the largest one
// given, or WithShippingQuorum's.
func TestShorthandsCombine(t *testing.T) {
	bucket := s3test.NewBucket(t, true)
	bucket.Prefix = "host-1"
	urlDir, ownDir := fsDir(t), fsDir(t)
	own, err := fs.New(ownDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		extra  []audit.Option
		quorum int
	}{
		{"largest given", nil, 1},
		{"WithShippingQuorum", []audit.Option{audit.WithShippingQuorum(3)}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := append([]audit.Option{
				audit.WithWAL(dir, audit.WithSegmentSize(8<<10)),
				cloud.WithS3(bucket),
				cloud.WithURL("file://" + urlDir),
				audit.WithShipping(1, own),
			}, tc.extra...)
			s, err := audit.New(opts...)
			if err != nil {
				t.Fatal(err)
			}
			write(t, s, 100)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := s.WaitShipped(ctx); err != nil {
				t.Fatal(err)
			}
			h, _ := s.ShippingHealth()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if h.Quorum != tc.quorum || len(h.Backends) != 3 {
				t.Fatalf("quorum %d of %d backends, want %d of 3", h.Quorum, len(h.Backends), tc.quorum)
			}
			want := []string{"s3://" + bucket.Bucket + "/host-1", "file://" + urlDir, "file://" + ownDir}
			for i, b := range h.Backends {
				if b.Name != want[i] {
					t.Errorf("backend %d is %s, want %s", i, b.Name, want[i])
				}
			}
			if tc.quorum == 3 {
				for _, b := range h.Backends {
					if b.Held.Segment == 0 {
						t.Errorf("%s holds nothing after WaitShipped with quorum 3", b.Name)
					}
				}
			}
		})
	}
	// The backend of the caller's is still open after Close.
	if _, err := own.List(context.Background(), ""); err != nil {
		t.Fatalf("the caller's backend after Close: %v", err)
	}
}

// A quorum the set cannot meet, or one without a backend, is refused at
// New; so are two backends of one name across calls.
func TestShorthandQuorumBadInput(t *testing.T) {
	a, b := fsDir(t), fsDir(t)
	own, err := fs.New(a)
	if err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string][]audit.Option{
		"quorum 3 of 2":      {cloud.WithURL("file://" + a), cloud.WithURL("file://" + b), audit.WithShippingQuorum(3)},
		"quorum 0":           {cloud.WithURL("file://" + a), audit.WithShippingQuorum(0)},
		"quorum, no backend": {audit.WithShippingQuorum(1)},
		"same name":          {cloud.WithURL("file://" + a), audit.WithShipping(1, own)},
	} {
		_, err := audit.New(append([]audit.Option{audit.WithWAL(t.TempDir())}, opts...)...)
		if !errors.Is(err, audit.ErrInvalidOption) {
			t.Errorf("%s: New = %v, want ErrInvalidOption", name, err)
		}
	}
}

// A configuration or store a driver refuses fails New with an error that
// names the shorthand and the backend and matches audit.ErrShipping and the
// driver's error.
func TestShorthandBadConfig(t *testing.T) {
	srv := s3test.Server(t)
	locked := s3test.NewBucket(t, false)
	locked.RequireObjectLock = true
	wrongKey := s3test.NewBucket(t, true)
	wrongKey.SecretAccessKey = "wrong"
	missing := srv
	missing.Bucket = "mtlog-no-such-bucket"
	azEnv := testservers.Require(t, "MTLOG_AUDIT_AZURITE_BLOB_ENDPOINT", "MTLOG_AUDIT_AZURITE_ACCOUNT", "MTLOG_AUDIT_AZURITE_KEY")
	gcsEndpoint := testservers.Require(t, "MTLOG_AUDIT_FAKEGCS_ENDPOINT")[0]
	for _, tc := range []struct {
		name   string
		opt    audit.Option
		target error // besides audit.ErrShipping; nil: none
		says   []string
	}{
		{"s3 empty bucket", cloud.WithS3(s3.Config{}), s3.ErrConfig, []string{"cloud.WithS3(s3://)", "bucket name is empty"}},
		{"s3 missing bucket", cloud.WithS3(missing), s3.ErrNoBucket, []string{"s3://mtlog-no-such-bucket", "does not exist"}},
		{"s3 wrong key", cloud.WithS3(wrongKey), s3.ErrAccess, []string{"s3://" + wrongKey.Bucket, "credentials"}},
		{"s3 no object lock", cloud.WithS3(locked), s3.ErrNoObjectLock, []string{"s3://" + locked.Bucket, "Object Lock"}},
		{"azure bad container", cloud.WithAzure(azure.Config{Account: azEnv[1], Key: azEnv[2], Endpoint: azEnv[0], Container: "No_Such"}), nil,
			[]string{"cloud.WithAzure(azure://" + azEnv[1] + "/No_Such)", "container name"}},
		{"azure missing container", cloud.WithAzure(azure.Config{Account: azEnv[1], Key: azEnv[2], Endpoint: azEnv[0], Container: "mtlog-no-such-container"}), nil,
			[]string{"azure://" + azEnv[1] + "/mtlog-no-such-container", "does not exist"}},
		{"gcs bad bucket", cloud.WithGCS(gcs.Config{Bucket: "X", Endpoint: gcsEndpoint}), nil, []string{"cloud.WithGCS(gs://X)", "bucket name"}},
		{"gcs missing bucket", cloud.WithGCS(gcs.Config{Bucket: "mtlog-no-such-bucket", Endpoint: gcsEndpoint}), nil,
			[]string{"gs://mtlog-no-such-bucket", "does not exist"}},
		{"url", cloud.WithURL("ftp://host/x"), nil, []string{"cloud.WithURL", "ftp://host/x", "unknown scheme"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := audit.New(audit.WithWAL(dir), tc.opt)
			if !errors.Is(err, audit.ErrShipping) || (tc.target != nil && !errors.Is(err, tc.target)) {
				t.Fatalf("New = %v, want an error matching audit.ErrShipping and %v", err, tc.target)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("the error %q does not say %q", err, s)
				}
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("New failed but created %d files in the log's directory", len(entries))
			}
		})
	}
}
