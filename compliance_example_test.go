package audit_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/backends/fs"
	"github.com/willibrandon/mtlog-audit/compliance"
	"github.com/willibrandon/mtlog-audit/integrity"
)

// exampleKeyFile writes a new signing key to dir/audit.key (owner-only) and
// returns its path; in production, `mtlog-audit keys generate` makes it.
func exampleKeyFile(dir string) string {
	skey, _, err := integrity.GenerateKey("audit.example.com")
	if err != nil {
		log.Fatal(err)
	}
	p := filepath.Join(dir, "audit.key")
	if err := os.WriteFile(p, []byte(skey+"\n"), 0o600); err != nil {
		log.Fatal(err)
	}
	return p
}

// exampleBackup is a shipping backend in dir/backup, standing in for a
// bucket.
func exampleBackup(dir string) *fs.Backend {
	p := filepath.Join(dir, "backup")
	if err := os.MkdirAll(p, 0o700); err != nil {
		log.Fatal(err)
	}
	b, err := fs.New(p)
	if err != nil {
		log.Fatal(err)
	}
	return b
}

// The HIPAA profile: the seed's `audit.WithCompliance("HIPAA")` with an S3
// copy. The profile checks that the events are encrypted and the
// checkpoints signed; with no key, New would list both as unmet.
func ExampleWithCompliance_hipaa() {
	dir, _ := os.MkdirTemp("", "hipaa-")
	defer os.RemoveAll(dir)
	backup := exampleBackup(dir) // s3://hipaa-audit-logs with backends/s3
	sink, err := audit.New(
		audit.WithWAL(filepath.Join(dir, "audit-wal")),
		audit.WithCompliance("HIPAA"), // encryption, signing, 6-year minimum retention
		audit.WithSigningKeyFile(exampleKeyFile(dir)),
		audit.WithKeyring(filepath.Join(dir, "keys", "audit.keyring"), nil),
		audit.WithEncryption("Diagnosis"),
		audit.WithShipping(1, backup),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer sink.Close()
	_, err = sink.Write(context.Background(), &audit.Event{
		MessageTemplate: "{Actor} {Action} chart {Resource}: {Outcome}",
		Properties:      map[string]any{"Actor": "dr-7", "Action": "read", "Resource": "patient-42", "Outcome": "success", "Source": "10.1.2.3", "Diagnosis": "J45"},
	})
	fmt.Println(err)
	// Output: <nil>
}

// The PCI-DSS profile rejects an event without the six fields of PCI DSS
// 10.2.2 (the time is the event's): here the origin is missing.
func ExampleWithCompliance_pciDSS() {
	dir, _ := os.MkdirTemp("", "pci-")
	defer os.RemoveAll(dir)
	backup := exampleBackup(dir)
	sink, err := audit.New(
		audit.WithWAL(filepath.Join(dir, "audit-wal")),
		audit.WithCompliance("PCI-DSS"),
		audit.WithSigningKeyFile(exampleKeyFile(dir)),
		audit.WithKeyring(filepath.Join(dir, "keys", "audit.keyring"), nil),
		audit.WithEncryption("CardHolder"),
		audit.WithCardTruncation(), // PAN first six and last four (3.5.1)
		audit.WithShipping(1, backup),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer sink.Close()
	_, err = sink.Write(context.Background(), &audit.Event{
		MessageTemplate: "Refund {Action}",
		Properties:      map[string]any{"Actor": "u-1", "Action": "refund", "Outcome": "success", "Resource": "order-7"},
	})
	fmt.Println(errors.Is(err, audit.ErrMissingFields))
	// Output: true
}

// The SOX profile requires a signing key (the seed passed it as
// compliance.WithSigning(key); here it is the sink's own option) and
// refuses WithFailOpen: New lists every unmet requirement in one error.
func ExampleWithCompliance_sox() {
	dir, _ := os.MkdirTemp("", "sox-")
	defer os.RemoveAll(dir)
	_, err := audit.New(
		audit.WithWAL(filepath.Join(dir, "audit-wal")),
		audit.WithCompliance("SOX", compliance.Waive(compliance.ReqOffBox, "copied nightly by the backup system")),
		audit.WithKeyring(filepath.Join(dir, "keys", "audit.keyring"), nil),
		audit.WithEncryption(),
		audit.WithFailOpen(),
	)
	var unmet *compliance.UnmetError
	if errors.As(err, &unmet) {
		for _, u := range unmet.Unmet {
			fmt.Println(u.Requirement, "->", u.Fix)
		}
	}
	// Output:
	// signing -> pass WithSigningKeyFile(path) (generate a key with `mtlog-audit keys generate`)
	// fail-closed -> remove WithFailOpen (Emit then blocks until the event is durable)
}
