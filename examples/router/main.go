// Command router shows selective auditing with mtlog alone (no adapter):
// a RouterSink sends events that carry an Audit property, or whose level is
// Error or above, to the durable audit sink, and everything to the console.
//
//	go run ./examples/router
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/willibrandon/mtlog"
	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog/core"
	"github.com/willibrandon/mtlog/sinks"
)

func main() {
	dir := flag.String("dir", "audit-wal-router", "directory of the audit log")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "router:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	auditSink, err := audit.New(audit.WithWAL(dir))
	if err != nil {
		return err
	}
	auditRoute := sinks.NewRoute("audit").
		When(func(ev *core.LogEvent) bool {
			_, tagged := ev.Properties["Audit"]
			return tagged || ev.Level >= core.ErrorLevel
		}).
		To(auditSink)
	console := sinks.NewRoute("console").When(func(*core.LogEvent) bool { return true }).To(sinks.NewConsoleSink())
	router := sinks.NewRouterSink(sinks.AllMatch, auditRoute, console)
	logger := mtlog.New(mtlog.WithSink(router))

	logger.Information("Cache warmed in {Ms} ms", 12)                                           // console only
	logger.ForContext("Audit", true).Information("User {UserId} viewed record {Id}", "u-1", 42) // audited
	logger.Error("Payment {Id} failed: {Error}", "pay-9", errors.New("declined"))               // audited (level)

	if err := router.Close(); err != nil { // closes the audit sink too
		return err
	}
	fmt.Println("\nIn the audit log:")
	for ev, err := range audit.Replay(context.Background(), dir, time.Time{}, time.Time{}) {
		if err != nil {
			return err
		}
		fmt.Printf("  [%s] %s\n", ev.Level, ev.Message)
	}
	return nil
}
