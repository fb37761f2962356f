// Command replication writes audit events to a local log that is shipped to
// a backend (cloud.WithURL, audit.WithShipping), and returns once it holds every
// event: the program of the README's MinIO quick start. Run it from the
// repository root:
//
//	go run ./examples/replication --wal ./audit-wal --key audit.key --ship 's3://audit/host-1?endpoint=http://127.0.0.1:9000'
//
// --ship (or MTLOG_AUDIT_SHIP) is a backend URL of any driver
// (cloud.WithURL): file:///abs/path, s3://, azure://, gs://. The
// credentials come from the driver's usual environment (AWS_ACCESS_KEY_ID
// and AWS_SECRET_ACCESS_KEY for S3 and MinIO).
//
// A segment is shipped once it is sealed (an acknowledgement never waits for
// the network). Close seals the last one, signs the final checkpoint and
// ships what the backend lacks, waiting at most --timeout
// (audit.WithShippingCloseTimeout); the program then reads ShippingHealth
// to say whether the backend holds every event.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/cloud"
)

func main() {
	dir := flag.String("wal", "audit-wal", "directory of the audit log")
	ship := flag.String("ship", os.Getenv("MTLOG_AUDIT_SHIP"), "backend URL to ship to (default: $MTLOG_AUDIT_SHIP)")
	key := flag.String("key", "", "private signing key file (mtlog-audit keys generate): the shipped checkpoints are signed with it")
	events := flag.Int("events", 100, "how many events to write")
	timeout := flag.Duration("timeout", 2*time.Minute, "how long to wait for the backend to hold everything")
	flag.Parse()
	if *ship == "" || *key == "" || *events < 0 {
		fmt.Fprintln(os.Stderr, "replication: give --ship URL (or MTLOG_AUDIT_SHIP), --key FILE and --events N ≥ 0")
		flag.Usage()
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, *dir, *ship, *key, *events, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "replication:", err)
		os.Exit(1)
	}
}

// open opens the log with shipping to the backend of rawURL; the sink opens
// the backend (cloud.WithURL) and closes it with itself.
func open(dir, rawURL, key string, timeout time.Duration) (*audit.Sink, error) {
	return audit.New(
		audit.WithWAL(dir),
		audit.WithSigningKeyFile(key),
		cloud.WithURL(rawURL),                // quorum 1 of 1 backend
		audit.WithSegmentMaxAge(time.Minute), // at most a minute of events not yet eligible to ship
		audit.WithShippingCloseTimeout(timeout),
	)
}

func run(ctx context.Context, dir, rawURL, key string, n int, timeout time.Duration) error {
	sink, err := open(dir, rawURL, key, timeout)
	if err != nil {
		return err
	}
	for i := range n {
		ev := &audit.Event{
			MessageTemplate: "User {UserId} read record {RecordId}",
			Properties:      map[string]any{"UserId": "u-1001", "RecordId": i},
		}
		if _, err := sink.Write(ctx, ev); err != nil {
			sink.Close()
			return fmt.Errorf("write event %d: %w", i, err)
		}
	}
	last := sink.LastSeq()
	// Close seals the last segment, signs the final checkpoint and ships
	// what the backend lacks; a shortfall is in the health, not the error.
	if err := sink.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	h, _ := sink.ShippingHealth()
	for _, b := range h.Backends {
		if b.Err != nil {
			return fmt.Errorf("the backend does not hold every event yet (the next run ships the rest): %s: %w", b.Name, b.Err)
		}
	}
	fmt.Printf("wrote %d events (log %s, last record %d); %s holds them all\n", n, dir, last, rawURL)
	return nil
}
