package audit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/protect"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
	"github.com/willibrandon/mtlog/core"
)

// gdprEvent is an event of subject: its e-mail, name and a nested record,
// all personal data.
func gdprEvent(subject string, i int) *audit.Event {
	return &audit.Event{
		Timestamp:       time.Unix(1_800_000_000+int64(i), 0).UTC(),
		Level:           audit.LevelInformation,
		MessageTemplate: "User {SubjectId} ({Email}) exported {Count} records",
		Properties: map[string]any{
			"SubjectId": subject, "Email": subject + "@mail.example", "Name": "Name of " + subject,
			"Count": i, "Record": map[string]any{"phone": "+33-" + subject + "-555"},
		},
	}
}

// secretsOf are the values of subject's events that must not survive a
// shred, in clear or as an unkeyed SHA-256.
func secretsOf(subject string) [][]byte {
	var out [][]byte
	for _, v := range []string{subject, subject + "@mail.example", "Name of " + subject, "+33-" + subject + "-555"} {
		sum := sha256.Sum256([]byte(v))
		out = append(out, []byte(v), sum[:], []byte(hex.EncodeToString(sum[:])), []byte(base64.StdEncoding.EncodeToString(sum[:])), []byte(base64.RawURLEncoding.EncodeToString(sum[:])))
	}
	return out
}

// scanFiles fails the test if a file under any of roots holds one of
// needles, as its bytes or, for a log directory, in the payload of a record
// (the WAL whitens payloads on disk: docs/wal-format.md, so a raw scan alone
// would never find a value).
func scanFiles(t *testing.T, needles [][]byte, roots ...string) {
	t.Helper()
	for _, root := range roots {
		if _, err := os.Stat(filepath.Join(root, "00000000000000000001.wal")); err != nil {
			continue
		}
		for rec, err := range wal.NewReader(vfs.OS(), root).Records(context.Background(), 0) {
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range needles {
				if bytes.Contains(rec.Payload, n) {
					t.Errorf("%s: record %d holds %q", root, rec.Seq, n)
				}
			}
		}
	}
	files := 0
	for _, root := range roots {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			files++
			for _, n := range needles {
				if i := bytes.Index(b, n); i >= 0 {
					t.Errorf("%s holds %q at offset %d", p, n, i)
				}
			}
			return nil
		})
	}
	if files == 0 {
		t.Fatal("no file scanned")
	}
}

// The GDPR path end to end: pseudonyms and encryption on, a mirror and a
// signing key; Shred of one subject leaves Verify passing and every proof
// checking, the subject's fields read as Shredded (Replay goes on), the
// other subject's fields read in clear, and a byte scan of every file of
// the log, its mirror and the keyring finds neither the subject's values
// nor their SHA-256.
func TestShredEndToEnd(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	dir, mirror, keyring := filepath.Join(root, "log"), filepath.Join(root, "mirror"), filepath.Join(root, "keys", "audit.keyring")
	os.MkdirAll(mirror, 0o755)
	sk, vk, err := integrity.GenerateKey("audit.example/gdpr")
	if err != nil {
		t.Fatal(err)
	}
	opts := []audit.Option{audit.WithWAL(dir), audit.WithRedundancy(mirror), audit.WithSigningKey(sk), audit.WithCheckpoints(4, time.Hour, time.Hour),
		audit.WithKeyring(keyring, nil), audit.WithPseudonymize("Email"), audit.WithEncryption()}
	s, err := audit.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		for _, subj := range []string{"alice", "bob"} {
			if _, err := s.Write(ctx, gdprEvent(subj, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	res, err := s.Shred(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Keys) != 2 || res.Tombstone.Seq == 0 {
		t.Fatalf("Shred: %+v", res)
	}
	if _, err := s.Shred(ctx, "alice"); !errors.Is(err, protect.ErrNoSubject) {
		t.Fatalf("second Shred: %v", err)
	}
	var alice, bob, tomb int
	for ev, err := range s.Replay(ctx, time.Time{}, time.Time{}) {
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case ev.MessageTemplate != gdprEvent("", 0).MessageTemplate:
			tomb++
			if fmt.Sprint(ev.Properties[audit.ShredKeysProperty]) != fmt.Sprint(res.Keys) || strings.Contains(ev.Message, "alice") {
				t.Fatalf("tombstone %+v", ev)
			}
		case ev.Properties["Name"] == "Name of bob":
			bob++
		default:
			if _, ok := ev.Properties["Name"].(audit.Shredded); !ok {
				t.Fatalf("alice's Name reads %#v", ev.Properties["Name"])
			}
			alice++
		}
	}
	if alice != 10 || bob != 10 || tomb != 1 {
		t.Fatalf("replay: alice %d, bob %d, tombstones %d", alice, bob, tomb)
	}
	last := s.LastSeq()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, mirror} {
		rep, err := audit.Verify(ctx, d, audit.WithTrustedKeys(vk))
		if err != nil || !rep.OK {
			t.Fatalf("Verify %s after the shred: %v %+v", d, err, rep)
		}
	}
	for seq := uint64(1); seq <= last; seq++ {
		b, err := audit.ProveInclusion(ctx, vfs.OS(), dir, seq, nil)
		if err != nil {
			continue // a record after the last checkpoint has no proof yet
		}
		data, _ := b.Marshal()
		if err := audit.VerifyProof(data, vk); err != nil {
			t.Fatalf("inclusion of %d: %v", seq, err)
		}
	}
	scanFiles(t, secretsOf("alice"), dir, mirror, filepath.Dir(keyring))
	// bob's data is still there (encrypted): the keyring names him.
	if b, _ := os.ReadFile(keyring); !bytes.Contains(b, []byte("bob")) {
		t.Fatal("bob's keys are gone")
	}
	// Read back offline, without keys: placeholders, no error.
	for ev, err := range audit.RevealEvents(ctx, audit.Replay(ctx, dir, time.Time{}, time.Time{}), nil) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.MessageTemplate == gdprEvent("", 0).MessageTemplate {
			if p, ok := ev.Properties["Name"].(audit.Encrypted); !ok || !strings.HasPrefix(fmt.Sprint(p), "<encrypted key=k-") {
				t.Fatalf("without keys Name reads %#v", ev.Properties["Name"])
			}
		}
	}
}

// New refuses a keyring inside the log directory or a mirror, and a
// keyring file that others may read, naming the file.
func TestKeyringLocationAndMode(t *testing.T) {
	root := t.TempDir()
	dir, mirror := filepath.Join(root, "log"), filepath.Join(root, "mirror")
	os.MkdirAll(mirror, 0o755)
	for _, kp := range []string{filepath.Join(dir, "k"), filepath.Join(mirror, "sub", "k"), dir} {
		_, err := audit.New(audit.WithWAL(dir), audit.WithRedundancy(mirror), audit.WithKeyring(kp, nil), audit.WithEncryption())
		if !errors.Is(err, audit.ErrKeyringInLog) {
			t.Fatalf("keyring %s: %v", kp, err)
		}
	}
	if _, err := audit.New(audit.WithWAL(dir), audit.WithEncryption()); !errors.Is(err, audit.ErrInvalidOption) {
		t.Fatalf("WithEncryption without a keyring: %v", err)
	}
	kp := filepath.Join(root, "k")
	s, err := audit.New(audit.WithWAL(dir), audit.WithKeyring(kp, nil), audit.WithEncryption())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	os.Chmod(kp, 0o640)
	_, err = audit.New(audit.WithWAL(dir), audit.WithKeyring(kp, nil), audit.WithEncryption())
	if !errors.Is(err, protect.ErrKeyring) || !strings.Contains(err.Error(), kp) {
		t.Fatalf("keyring mode 0640: %v", err)
	}
}

// unavailableProvider is a KeyProvider that cannot be reached.
type unavailableProvider struct{}

func (unavailableProvider) Name() string { return "unreachable" }
func (unavailableProvider) WrapKey(context.Context, string, []byte) (string, error) {
	return "", fmt.Errorf("%w: connection refused", protect.ErrUnavailable)
}
func (unavailableProvider) UnwrapKey(context.Context, string, string) ([]byte, error) {
	return nil, fmt.Errorf("%w: connection refused", protect.ErrUnavailable)
}

// A key provider that is unavailable at write time follows the failure
// policy (a transient error: not ErrUnwritable), and the event is never
// written in clear.
func TestEncryptProviderUnavailable(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "log")
	var handled []error
	s, err := audit.New(audit.WithWAL(dir), audit.WithKeyring(filepath.Join(root, "k"), unavailableProvider{}), audit.WithEncryption(), audit.WithFailOpen(),
		audit.WithFailureHandler(func(_ *core.LogEvent, err error) { handled = append(handled, err) }))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Write(context.Background(), gdprEvent("alice", 1))
	if !errors.Is(err, protect.ErrUnavailable) || errors.Is(err, audit.ErrUnwritable) {
		t.Fatalf("Write: %v", err)
	}
	if err := s.EmitEvent(context.Background(), gdprEvent("alice", 2)); !errors.Is(err, protect.ErrUnavailable) || len(handled) != 1 {
		t.Fatalf("EmitEvent under WithFailOpen: %v (handler saw %v)", err, handled)
	}
	s.Close()
	scanFiles(t, secretsOf("alice")[:1], dir)
}

// The key stages run on every entry point: Write (above), mtlog's Emit
// and EmitEvent (which the slog, logr, zerolog and zap adapters call).
func TestKeyStagesOnEveryEntryPoint(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "log")
	s, err := audit.New(audit.WithWAL(dir), audit.WithKeyring(filepath.Join(root, "k"), nil), audit.WithPseudonymize(), audit.WithEncryption("Email"))
	if err != nil {
		t.Fatal(err)
	}
	s.Emit(&core.LogEvent{Timestamp: time.Unix(1_800_000_000, 0), MessageTemplate: "{SubjectId} {Email}", Properties: map[string]any{"SubjectId": "carol", "Email": "carol@mail.example"}})
	if err := s.EmitEvent(context.Background(), gdprEvent("carol", 1)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for ev, err := range s.Replay(context.Background(), time.Time{}, time.Time{}) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Properties["Email"] != "carol@mail.example" || strings.Contains(ev.Message, "carol ") {
			t.Fatalf("%+v", ev)
		}
		n++
	}
	s.Close()
	if n != 2 {
		t.Fatalf("%d events", n)
	}
	scanFiles(t, [][]byte{[]byte("carol@mail.example")}, dir)
	for ev, err := range audit.Replay(context.Background(), dir, time.Time{}, time.Time{}) {
		if err != nil || !strings.HasPrefix(ev.Properties["SubjectId"].(string), "pseu:k-") {
			t.Fatalf("stored subject %v (%v)", ev.Properties["SubjectId"], err)
		}
	}
}
