// Command financial keeps the audit trail of a general ledger under the
// SOX profile: signed checkpoints, events encrypted at rest, a copy
// shipped off the box, 7-year retention, fail-closed writes, and events
// that must say who changed which account and with what outcome. It first
// shows the one error New gives for a configuration that falls short,
// then runs with a complete one. Run it from the repository root:
//
//	go run ./examples/financial
//
// Each run starts a new log, keys and backup directory in a temporary
// directory; a real deployment ships to S3 with Object Lock
// (backends/s3).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/backends/fs"
	"github.com/willibrandon/mtlog-audit/compliance"
	"github.com/willibrandon/mtlog-audit/integrity"
)

func main() {
	root, err := os.MkdirTemp("", "financial-example-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "financial:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(root)
	if err := run(root, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "financial:", err)
		os.Exit(1)
	}
}

func run(root string, w io.Writer) error {
	dir := filepath.Join(root, "audit-wal")
	// A configuration that falls short: New lists every unmet requirement.
	_, err := audit.New(audit.WithWAL(dir), audit.WithCompliance("SOX"), audit.WithFailOpen())
	var unmet *compliance.UnmetError
	if !errors.As(err, &unmet) {
		return fmt.Errorf("a bare SOX configuration was accepted: %v", err)
	}
	fmt.Fprintf(w, "Unmet SOX requirements: %d\n", len(unmet.Unmet))
	for _, u := range unmet.Unmet {
		fmt.Fprintf(w, "  %s: %s\n", u.Requirement, u.Fix)
	}

	skey, vkey, err := integrity.GenerateKey("ledger.bank.example")
	if err != nil {
		return err
	}
	backupDir := filepath.Join(root, "backup")
	if err := os.MkdirAll(backupDir, 0o700); err != nil {
		return err
	}
	backup, err := fs.New(backupDir)
	if err != nil {
		return err
	}
	sink, err := audit.New(
		audit.WithWAL(dir),
		audit.WithCompliance("SOX"),
		audit.WithSigningKey(skey),
		audit.WithKeyring(filepath.Join(root, "keys", "audit.keyring"), nil),
		audit.WithEncryption("Amount"),
		audit.WithShipping(1, backup),
		audit.WithRetention(7*compliance.Year),
	)
	if err != nil {
		return err
	}
	ctx := context.Background()
	post := func(props map[string]any) error {
		_, err := sink.Write(ctx, &audit.Event{MessageTemplate: "{Actor} {Action} {Resource}: {Outcome}", Properties: props})
		return err
	}
	if err := post(map[string]any{"Actor": "cfo", "Action": "journal.post", "Resource": "GL-4000", "Outcome": "approved", "Amount": "125000.00"}); err != nil {
		return err
	}
	err = post(map[string]any{"Actor": "intern", "Action": "journal.post", "Resource": "GL-4000", "Amount": "99.00"})
	fmt.Fprintf(w, "An entry without Outcome: rejected=%v\n  %v\n", errors.Is(err, audit.ErrMissingFields), err)
	if err := sink.Close(); err != nil {
		return err
	}
	rep, err := audit.Verify(ctx, dir, audit.WithTrustedKeys(vkey))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Verify: ok=%v, %d events (start, configuration, the access log's anchors at open and close, the entry, stop)\n", rep.OK, rep.Events)
	return nil
}
