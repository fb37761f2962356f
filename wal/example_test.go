package wal_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

func ExampleOpen() {
	tmp, err := os.MkdirTemp("", "wal-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "wal")

	// The zero Options are the defaults: 64 MiB segments, acknowledged
	// after fdatasync.
	w, err := wal.Open(vfs.OS(), dir, wal.Options{})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for i, p := range []string{"first", "second"} {
		// Append returns once the record is durable.
		seq, err := w.Append(ctx, wal.RecordEvent, int64(i), []byte(p))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("appended", seq)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}

	// Reopening recovers the log; a Reader reads it without opening it
	// for writing.
	for r, err := range wal.NewReader(vfs.OS(), dir).Records(ctx, 1) {
		if err != nil {
			log.Fatal(err)
		}
		if r.Type == wal.RecordEvent {
			fmt.Printf("%d %s\n", r.Seq, r.Payload)
		}
	}
	// Output:
	// appended 1
	// appended 2
	// 1 first
	// 2 second
}
