package audit_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/protect"
)

// Sink.RotateKeys and Sink.Shred take effect on the very next event,
// whatever the encryption stage keeps between events: after a rotation the
// subject's next event is under a new key, after a shred under neither of
// the shredded ones, and its stored message names the key it is under.
func TestEncryptKeyChangesTakeEffect(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := audit.New(audit.WithWAL(filepath.Join(root, "log")), audit.WithKeyring(filepath.Join(root, "keys", "k"), nil),
		audit.WithSubjectProperty("UserId"), audit.WithEncryption())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	write := func() {
		t.Helper()
		if _, err := s.Write(ctx, benchEvent()); err != nil {
			t.Fatal(err)
		}
	}
	write()
	write()
	if err := s.RotateKeys(ctx); err != nil {
		t.Fatal(err)
	}
	write()
	res, err := s.Shred(ctx, "u-1001")
	if err != nil {
		t.Fatal(err)
	}
	write()
	var keys, msgs []string
	for ev, err := range audit.Replay(ctx, filepath.Join(root, "log"), time.Time{}, time.Time{}) {
		if err != nil {
			t.Fatal(err)
		}
		blind, _ := protect.Reveal(ctx, ev, nil) // the stored message stays in ev
		if p, ok := blind.Properties["UserId"].(audit.Encrypted); ok {
			keys, msgs = append(keys, p.KeyID), append(msgs, ev.Message)
		}
	}
	if len(keys) != 4 {
		t.Fatalf("%d encrypted events, want 4", len(keys))
	}
	if keys[0] != keys[1] || keys[2] == keys[1] || keys[3] == keys[2] || keys[3] == keys[1] {
		t.Fatalf("keys of the events: %v (rotation after the 2nd, shred of %v after the 3rd)", keys, res.Keys)
	}
	for i, k := range keys {
		if want := "User <encrypted key=" + k + "> performed <encrypted key=" + k + "> on <encrypted key=" + k + ">"; msgs[i] != want {
			t.Fatalf("event %d: message %q, want %q", i, msgs[i], want)
		}
	}
}
