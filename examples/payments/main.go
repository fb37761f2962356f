// Command payments shows the card-data protection of mtlog-audit (PCI DSS
// 3.3.1 and 3.5.1): card numbers in any field are replaced by keyed tokens
// before the event is written, sensitive authentication data (CVV, PIN,
// track data) is removed, and a password is masked. It logs three events
// through mtlog, closes the log, and prints what the log holds. Run it from
// the repository root:
//
//	go run ./examples/payments
//
// Each run appends to ./payments-audit by default.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/willibrandon/mtlog"
	audit "github.com/willibrandon/mtlog-audit"
)

func main() {
	dir := flag.String("dir", "payments-audit", "directory of the audit log")
	flag.Parse()
	if err := run(*dir, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "payments:", err)
		os.Exit(1)
	}
}

func run(dir string, out io.Writer) error {
	// The token key: 32 random bytes kept out of the log, such as in a
	// secrets manager. Here it is made afresh, so tokens differ between
	// runs; with one key, one card number always gets the same token.
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	sink, err := audit.New(
		audit.WithWAL(dir),
		audit.WithCardTokens("pan-2026", key),
		audit.WithMaskSensitive("password"),
	)
	if err != nil {
		return err
	}
	logger := mtlog.New(mtlog.WithSink(sink))

	logger.Information("Charged {Amount} EUR to card {Card} (cvv {CVV})", 129.95, "4111 1111 1111 1111", "737")
	logger.Warning("Refund for {Order} to {@Payment}", "o-77", map[string]any{
		"pan": "5500-0000-0000-0004", "Expiry": "12/29", "PINBlock": "0412AC89ABCDEF67",
	})
	logger.Information("User {User} changed password to {Password}", "u-1001", "correct horse")

	if err := sink.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	fmt.Fprintln(out, "What the audit log holds:")
	for ev, err := range audit.Replay(context.Background(), dir, time.Time{}, time.Time{}) {
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		fmt.Fprintf(out, "  [%s] %s\n", ev.Level, ev.Message)
		for _, k := range []string{"Card", "Payment", "Password", "RemovedSensitiveData"} {
			if v, ok := ev.Properties[k]; ok {
				fmt.Fprintf(out, "      %s: %v\n", k, v)
			}
		}
	}
	return nil
}
