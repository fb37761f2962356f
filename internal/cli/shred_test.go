package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
)

// replay and export read encrypted fields back with --keyring, show
// placeholders without it, report a wrong keyring per field (exit 0, the
// events still printed); shred destroys a subject's keys and logs a
// tombstone; afterwards replay shows <shredded key=ID>, and verify and
// prove still pass.
func TestCLIKeyringAndShred(t *testing.T) {
	root := t.TempDir()
	dir, kp := filepath.Join(root, "wal"), filepath.Join(root, "keys", "audit.keyring")
	s, err := audit.New(audit.WithWAL(dir), audit.WithKeyring(kp, nil), audit.WithPseudonymize(), audit.WithEncryption("Email"))
	if err != nil {
		t.Fatal(err)
	}
	for i, subj := range []string{"alice", "bob", "alice"} {
		ev := &audit.Event{Timestamp: time.Unix(1_800_000_000+int64(i), 0).UTC(), MessageTemplate: "{SubjectId} wrote to {Email}",
			Properties: map[string]any{"SubjectId": subj, "Email": subj + "@mail.example"}}
		if _, err := s.Write(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	blind := run(t, root, "replay", "--wal", dir)
	if blind.code != 0 || strings.Contains(blind.stdout, "@mail.example") || !strings.Contains(blind.stdout, "<encrypted key=k-") {
		t.Fatalf("replay without keys: %+v", blind)
	}
	clear := run(t, root, "replay", "--wal", dir, "--json", "--keyring", kp)
	if clear.code != 0 || strings.Count(clear.stdout, "alice@mail.example") != 4 { // property and message, twice
		t.Fatalf("replay with keys: %+v", clear)
	}
	other := filepath.Join(root, "other.keyring")
	o, err := audit.New(audit.WithWAL(filepath.Join(root, "wal2")), audit.WithKeyring(other, nil), audit.WithEncryption())
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
	wrong := run(t, root, "export", "--wal", dir, "--keyring", other, "--format", "jsonl", "-o", filepath.Join(root, "out.jsonl"))
	if wrong.code != 0 || !strings.Contains(wrong.stderr, `field "Email"`) || !strings.Contains(wrong.stderr, "not in the keyring") {
		t.Fatalf("export with the wrong keyring: %+v", wrong)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "out.jsonl")); strings.Count(string(b), "<encrypted key=k-") < 3 {
		t.Fatalf("export with the wrong keyring wrote %s", b)
	}

	sh := run(t, root, "shred", "--wal", dir, "--keyring", kp, "--json", "alice")
	if sh.code != 0 || !strings.Contains(sh.stdout, `"tombstone_seq"`) {
		t.Fatalf("shred: %+v", sh)
	}
	if again := run(t, root, "shred", "--wal", dir, "--keyring", kp, "alice"); again.code != 2 {
		t.Fatalf("second shred: %+v", again)
	}
	after := run(t, root, "replay", "--wal", dir, "--keyring", kp)
	if after.code != 0 || strings.Count(after.stdout, "<shredded key=k-") != 2 || !strings.Contains(after.stdout, "bob@mail.example") || strings.Contains(after.stdout, "alice") {
		t.Fatalf("replay after shred: %+v", after)
	}
	if v := run(t, root, "verify", "--wal", dir); v.code != 0 && v.code != 3 {
		t.Fatalf("verify after shred: %+v", v)
	}
}
