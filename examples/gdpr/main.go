// Command gdpr logs personal data through an mtlog logger with
// pseudonyms and field encryption, reads it back, crypto-shreds one data
// subject, and shows that the log still verifies while that subject's
// fields are gone. Run it from the repository root:
//
//	go run ./examples/gdpr
//
// The keyring is kept apart from the log (the Sink refuses one inside the
// log directory). Each run starts a new log and keyring in a temporary
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
)

func main() {
	root, err := os.MkdirTemp("", "gdpr-example-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "gdpr:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(root)
	if err := run(filepath.Join(root, "audit-wal"), filepath.Join(root, "keys", "audit.keyring"), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gdpr:", err)
		os.Exit(1)
	}
}

func run(dir, keyring string, w io.Writer) error {
	sink, err := audit.New(
		audit.WithWAL(dir),
		audit.WithKeyring(keyring, nil),          // per-subject keys, outside the log
		audit.WithSubjectProperty("SubjectId"),   // the data subject of each event
		audit.WithPseudonymize("SubjectId"),      // stable pseudonyms: events still correlate
		audit.WithEncryption("Email", "Address"), // AES-256-GCM under the subject's key
	)
	if err != nil {
		return err
	}
	logger := mtlog.New(mtlog.WithSink(sink))
	logger.Information("User {SubjectId} changed e-mail to {Email}", "alice", "alice@mail.example")
	logger.Information("User {SubjectId} moved to {Address}", "alice", "1 Rue de la Paix, Paris")
	logger.Information("User {SubjectId} changed e-mail to {Email}", "bob", "bob@mail.example")

	ctx := context.Background()
	show := func(title string) error {
		fmt.Fprintln(w, title)
		for ev, err := range sink.Replay(ctx, time.Time{}, time.Time{}) {
			if err != nil {
				return err
			}
			fmt.Fprintln(w, " ", ev.Message)
		}
		return nil
	}
	if err := show("With the keys:"); err != nil {
		return err
	}
	res, err := sink.Shred(ctx, "alice")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Shredded alice: %d keys destroyed, tombstone at sequence number %d\n", len(res.Keys), res.Tombstone.Seq)
	if err := show("After the shred:"); err != nil {
		return err
	}
	if err := sink.Close(); err != nil {
		return err
	}
	rep, err := audit.Verify(ctx, dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Verify: ok=%v, %d events\n", rep.OK, rep.Events)
	return nil
}
