// Command healthcare logs access to patient charts under the HIPAA
// profile: each event says who did what to which chart, from where and
// with what outcome; the diagnosis is encrypted, checkpoints are signed,
// an event missing fields is stored flagged, and the log records its own
// start, configuration and stop. Run it from the repository root:
//
//	go run ./examples/healthcare
//
// Each run starts a new log, keyring and signing key in a temporary
// directory.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/willibrandon/mtlog"
	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
)

func main() {
	root, err := os.MkdirTemp("", "healthcare-example-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcare:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(root)
	if err := run(root, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "healthcare:", err)
		os.Exit(1)
	}
}

func run(root string, w io.Writer) error {
	dir := filepath.Join(root, "audit-wal")
	skey, vkey, err := integrity.GenerateKey("ehr.hospital.example")
	if err != nil {
		return err
	}
	sink, err := audit.New(
		audit.WithWAL(dir),
		audit.WithCompliance("HIPAA"), // 164.312(b): fields, lifecycle, access logging
		audit.WithSigningKey(skey),    // 164.312(c)(1)-(2): tamper evidence
		audit.WithKeyring(filepath.Join(root, "keys", "audit.keyring"), nil),
		audit.WithSubjectProperty("Resource"), // the patient's chart is the data subject
		audit.WithEncryption("Diagnosis"),     // 164.312(a)(2)(iv)
	)
	if err != nil {
		return err
	}
	logger := mtlog.New(mtlog.WithSink(sink))
	logger.Information("{Actor} {Action} chart {Resource} from {Source}: {Outcome}; diagnosis {Diagnosis}",
		"dr-house", "read", "patient-42", "10.1.2.3", "success", "J45.909 asthma")
	logger.Information("{Actor} {Action} chart {Resource} from {Source}: {Outcome}",
		"nurse-joy", "update", "patient-42", "10.1.2.9", "denied")
	logger.Information("{Actor} {Action} chart {Resource}", "batch-job", "export", "patient-7") // no Source, no Outcome
	fmt.Fprintf(w, "Flagged events (missing fields): %d\n", sink.Status().Flagged)

	ctx := context.Background()
	for ev, err := range sink.Replay(ctx, time.Time{}, time.Time{}) {
		if err != nil {
			return err
		}
		switch {
		case ev.Properties[audit.LifecycleProperty] != nil:
			fmt.Fprintf(w, "  [%s] %s\n", ev.Properties[audit.LifecycleProperty], ev.MessageTemplate)
		case ev.Properties[audit.MissingFieldsProperty] != nil:
			fmt.Fprintf(w, "  %s (missing %v)\n", ev.Message, ev.Properties[audit.MissingFieldsProperty])
		default:
			fmt.Fprintf(w, "  %s\n", ev.Message)
		}
	}
	if err := sink.Close(); err != nil {
		return err
	}
	rep, err := audit.Verify(ctx, dir, audit.WithTrustedKeys(vkey))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Verify: ok=%v, %d events\n", rep.OK, rep.Events)
	return nil
}
