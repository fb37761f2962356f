// Command basic logs audit events through an mtlog logger into a local
// write-ahead log, closes it, reopens it read-only, verifies it and prints a
// summary and where the data is. Run it from the repository root:
//
//	go run ./examples/basic
//
// Each run appends to the same log (./audit-wal by default), so running it
// twice shows the log surviving a restart.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/willibrandon/mtlog"
	audit "github.com/willibrandon/mtlog-audit"
)

func main() {
	dir := flag.String("dir", "audit-wal", "directory of the audit log")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "basic:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	sink, err := audit.New(audit.WithWAL(dir))
	if err != nil {
		return err
	}
	logger := mtlog.New(mtlog.WithSink(sink))

	// Every call below returns only after its event is durable on disk.
	logger.Information("User {UserId} signed in from {IP}", "u-1001", "203.0.113.7")
	logger.Information("User {UserId} granted role {Role} to {Target}", "u-1001", "billing-admin", "u-2002")
	logger.Warning("User {UserId} exported {Count} patient records", "u-2002", 250)
	logger.Error("Payment {PaymentId} for {Amount} failed: {Error}", "pay-77", 129.95, errors.New("card declined"))
	logger.Information("User {UserId} signed out", "u-1001")

	if err := sink.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}

	// Reopen read-only: verify every checksum, the sequence and the chain
	// between segments, and that every event decodes.
	ctx := context.Background()
	rep, err := audit.Verify(ctx, dir)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}

	fmt.Println("Last events in the log:")
	var recent []*audit.Event
	for ev, err := range audit.Replay(ctx, dir, time.Time{}, time.Time{}) {
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		recent = append(recent, ev)
		if len(recent) > 5 {
			recent = recent[1:]
		}
	}
	for _, ev := range recent {
		fmt.Printf("  %s [%s] %s\n", ev.Timestamp.Format(time.RFC3339), ev.Level, ev.Message)
	}
	abs, _ := filepath.Abs(dir)
	fmt.Printf("\nVerified: %d events (%d records, sequence %d–%d) in %d segment(s), %d bytes: OK\n",
		rep.Events, rep.Records, rep.FirstSeq, rep.LastSeq, rep.Segments, rep.Bytes)
	fmt.Printf("Data is in %s\n", abs)
	return nil
}
