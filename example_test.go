package audit_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// exampleLog writes three events, an hour apart from 2026-01-01 UTC, to a
// new log in dir, and closes it. When signed, the log is signed with a new
// key whose public key it returns.
func exampleLog(dir string, signed bool) (vkey string) {
	opts := []audit.Option{audit.WithWAL(dir)}
	if signed {
		skey, pub, err := integrity.GenerateKey("audit.example.com/payments") // keep skey secret, publish vkey
		if err != nil {
			log.Fatal(err)
		}
		opts, vkey = append(opts, audit.WithSigningKey(skey)), pub
	}
	sink, err := audit.New(opts...)
	if err != nil {
		log.Fatal(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, user := range []string{"alice", "bob", "carol"} {
		ev := &audit.Event{
			Timestamp:       start.Add(time.Duration(i) * time.Hour),
			Level:           audit.LevelInformation,
			MessageTemplate: "User {UserId} signed in",
			Properties:      map[string]any{"UserId": user},
		}
		if _, err := sink.Write(context.Background(), ev); err != nil {
			log.Fatal(err)
		}
	}
	if err := sink.Close(); err != nil {
		log.Fatal(err)
	}
	return vkey
}

// exampleDir returns a new temporary directory and the path of a log
// directory inside it.
func exampleDir() (tmp, dir string) {
	tmp, err := os.MkdirTemp("", "audit-example")
	if err != nil {
		log.Fatal(err)
	}
	return tmp, filepath.Join(tmp, "audit")
}

func ExampleNew() {
	tmp, dir := exampleDir()
	defer os.RemoveAll(tmp)

	sink, err := audit.New(audit.WithWAL(dir))
	if err != nil {
		log.Fatal(err)
	}
	defer sink.Close()
	// Hand sink to mtlog (mtlog.New(mtlog.WithSink(sink))), to an adapter,
	// or call Write directly.
	fmt.Println("open")
	// Output: open
}

func ExampleSink_Write() {
	tmp, dir := exampleDir()
	defer os.RemoveAll(tmp)

	sink, err := audit.New(audit.WithWAL(dir))
	if err != nil {
		log.Fatal(err)
	}
	defer sink.Close()
	receipt, err := sink.Write(context.Background(), &audit.Event{
		Timestamp:       time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC),
		Level:           audit.LevelWarning,
		MessageTemplate: "User {UserId} exported {Count} records",
		Properties:      map[string]any{"UserId": "u-1", "Count": 42},
	})
	if err != nil {
		// Not acknowledged: see Write for whether it may be in the log.
		log.Fatal(err)
	}
	// The event is durable: it has a sequence number and a Merkle leaf hash.
	fmt.Println("acknowledged as event", receipt.Seq)
	// Output: acknowledged as event 1
}

func ExampleReplay() {
	tmp, dir := exampleDir()
	defer os.RemoveAll(tmp)
	exampleLog(dir, false)

	// The events of the first two hours of 2026: [from, to).
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for ev, err := range audit.Replay(context.Background(), dir, from, from.Add(2*time.Hour)) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Timestamp.UTC().Format(time.RFC3339), ev.MessageTemplate, ev.Properties["UserId"])
	}
	// Output:
	// 2026-01-01T00:00:00Z User {UserId} signed in alice
	// 2026-01-01T01:00:00Z User {UserId} signed in bob
}

func ExampleVerify() {
	tmp, dir := exampleDir()
	defer os.RemoveAll(tmp)
	vkey := exampleLog(dir, true)

	// A verifier needs only the public key.
	rep, err := audit.Verify(context.Background(), dir, audit.WithTrustedKeys(vkey))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ok:", rep.OK)
	fmt.Println("events:", rep.Events)
	fmt.Println("records a signed checkpoint covers:", rep.Covered, "of", rep.Records)
	// Output:
	// ok: true
	// events: 3
	// records a signed checkpoint covers: 4 of 4
}

func ExampleProveInclusion() {
	tmp, dir := exampleDir()
	defer os.RemoveAll(tmp)
	exampleLog(dir, true)

	// Prove that event 2 is in the log, against the latest stored signed
	// checkpoint. The marshaled bundle is a file to hand to a third party.
	proof, err := audit.ProveInclusion(context.Background(), vfs.OS(), dir, 2, nil)
	if err != nil {
		log.Fatal(err)
	}
	data, err := proof.Marshal()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("proof file ready:", len(data) > 0)
	// Output: proof file ready: true
}

func ExampleVerifyProof() {
	tmp, dir := exampleDir()
	defer os.RemoveAll(tmp)
	vkey := exampleLog(dir, true)
	proof, err := audit.ProveInclusion(context.Background(), vfs.OS(), dir, 2, nil)
	if err != nil {
		log.Fatal(err)
	}
	data, _ := proof.Marshal()

	// Offline, with only the proof file and the genesis public key.
	if err := audit.VerifyProof(data, vkey); err != nil {
		fmt.Println("rejected:", err)
		return
	}
	fmt.Println("event 2 is in the signed log")
	// Output: event 2 is in the signed log
}

func ExampleReplayFS() {
	// Any vfs.FS: here the in-memory crash simulator, as tests use it.
	fsys := vfs.NewCrashFS()
	sink, err := audit.New(audit.WithFileSystem(fsys), audit.WithWAL("audit"))
	if err != nil {
		log.Fatal(err)
	}
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := sink.Write(context.Background(), &audit.Event{Timestamp: ts, MessageTemplate: "Backup finished"}); err != nil {
		log.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		log.Fatal(err)
	}

	// Zero bounds: every event.
	for ev, err := range audit.ReplayFS(context.Background(), fsys, "audit", time.Time{}, time.Time{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.MessageTemplate)
	}
	// Output: Backup finished
}
