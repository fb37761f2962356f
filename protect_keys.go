package audit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/protect"
)

// Shredded is the value a field encrypted by WithEncryption reads as after
// its subject was shredded (Sink.Shred): Replay returns it, and goes on.
type Shredded = protect.Shredded

// Encrypted is the value a field encrypted by WithEncryption reads as
// without its key, shown as "<encrypted key=ID>".
type Encrypted = protect.Encrypted

// keyConfig is what the key options set; New opens the keyring and builds
// the stages from it. It is shared by pointer with the stages (keyStage).
type keyConfig struct {
	path     string
	provider protect.KeyProvider
	kr       *protect.Keyring // opened by New; nil without WithKeyring
	subject  string
	pseudo   *[]string // WithPseudonymize's fields; nil: off
	enc      *[]string // WithEncryption's fields (empty: all); nil: off
	stPseudo *protect.Pseudonymizer
	stEnc    *protect.Encryptor
}

// keyConf returns c's key configuration, creating it.
func (c *config) keyConf() *keyConfig {
	if c.keys == nil {
		c.keys = &keyConfig{}
	}
	return c.keys
}

// keyStage runs the pseudonym or the encryption stage that New built.
type keyStage struct {
	k     *keyConfig
	pseud bool
}

// Protect implements protect.Stage.
func (s keyStage) Protect(ctx context.Context, ev *event.Event) (*event.Event, error) {
	if s.pseud {
		return s.k.stPseudo.Protect(ctx, ev)
	}
	return s.k.stEnc.Protect(ctx, ev)
}

// AppendEncode implements protect.Encoder.
func (s keyStage) AppendEncode(ctx context.Context, dst []byte, ev *event.Event) ([]byte, error) {
	if !s.pseud {
		return s.k.stEnc.AppendEncode(ctx, dst, ev)
	}
	out, err := s.k.stPseudo.Protect(ctx, ev)
	if err != nil {
		return dst, err
	}
	return event.AppendEncode(dst, out)
}

// WithKeyring keeps the per-subject keys of WithPseudonymize and
// WithEncryption in the keyring file at path (created, owner-only, if
// missing), whose data keys are wrapped by provider: nil keeps a local
// key-encryption key in the file itself, protect.NewVaultTransit keeps it
// in HashiCorp Vault. The file is on the WithFileSystem filesystem. New
// refuses a keyring inside the log directory or a WithRedundancy mirror
// (the keys must not travel with the ciphertext they open), and one that
// is damaged or that group or others may read (the error names the file
// and the problem). docs/protection.md describes the file and who should
// hold which key.
func WithKeyring(path string, provider protect.KeyProvider) Option {
	return func(c *config) {
		if path == "" {
			c.optionError("WithKeyring(\"\"): the path is empty; pass a file outside the log directory, such as /etc/myapp/audit.keyring")
			return
		}
		k := c.keyConf()
		k.path, k.provider = path, provider
	}
}

// WithSubjectProperty names the property that holds an event's data
// subject (default "SubjectId"): its value selects the subject's keys, and
// Sink.Shred(subject) destroys them. An event without it uses the keys of
// the "" subject, which are never shredded on their own.
func WithSubjectProperty(name string) Option {
	return func(c *config) {
		if name == "" {
			c.optionError("WithSubjectProperty(\"\"): pass a property name, or omit the option for %q", protect.DefaultSubjectProperty)
			return
		}
		c.keyConf().subject = name
	}
}

// WithPseudonymize replaces the named properties (case-insensitively, at
// the top level), and the subject property (WithSubjectProperty), by their
// pseudonyms: "pseu:<key ID>:<HMAC-SHA256 of the value under the subject's
// pseudonym key>". A subject's value always gets the same pseudonym while
// its key exists, so events correlate; after Sink.Shred nobody can link it
// back. It needs WithKeyring.
func WithPseudonymize(fields ...string) Option {
	return func(c *config) {
		k := c.keyConf()
		f := append([]string{}, fields...)
		if k.pseudo != nil {
			f = append(*k.pseudo, f...)
		}
		k.pseudo = &f
		c.stages[stagePseudonym] = keyStage{k: k, pseud: true}
	}
}

// WithEncryption encrypts the named properties (case-insensitively, at
// the top level; each value whole), or every property when none is named,
// with AES-256-GCM under the subject's data key; the subject property is
// encrypted too unless WithPseudonymize made it a pseudonym. The encrypted
// fields of an event are stored in its protect.EnvelopeProperty, in their
// properties' place, and a message whose template names an encrypted
// property is rendered again with "<encrypted key=ID>" in its place.
// Sink.Replay decrypts; RevealEvents without the keyring gives each field
// as Encrypted (Replay alone returns events as stored). It needs
// WithKeyring.
func WithEncryption(fields ...string) Option {
	return func(c *config) {
		k := c.keyConf()
		f := append([]string{}, fields...)
		switch {
		case k.enc != nil && (len(*k.enc) == 0 || len(f) == 0):
			f = nil // one of the calls asked for every property
		case k.enc != nil:
			f = append(*k.enc, f...)
		}
		k.enc = &f
		c.stages[stageEncrypt] = keyStage{k: k}
	}
}

// openKeys opens the keyring and builds the key stages; nil if none is
// configured. It runs before the log is opened.
func (c *config) openKeys() error {
	k := c.keys
	if k == nil {
		return nil
	}
	if k.path == "" {
		if k.pseudo != nil || k.enc != nil {
			return fmt.Errorf("audit: %w: WithPseudonymize and WithEncryption need WithKeyring(path, provider) for their keys", ErrInvalidOption)
		}
		return nil
	}
	if err := keyringOutside(k.path, c.dir, c.mirrors); err != nil {
		return err
	}
	kr, err := protect.OpenKeyring(k.path, protect.KeyringOptions{FS: c.fs, Provider: k.provider})
	if err != nil {
		return fmt.Errorf("audit: WithKeyring: %w", err)
	}
	k.kr = kr
	opts := protect.KeyOptions{Keyring: kr, SubjectProperty: k.subject}
	if k.pseudo != nil {
		k.stPseudo, _ = protect.NewPseudonymizer(opts, *k.pseudo...)
	}
	if k.enc != nil {
		k.stEnc, _ = protect.NewEncryptor(opts, *k.enc...)
	}
	return nil
}

// ErrKeyringInLog is matched by the error of New when the WithKeyring file
// lies inside the log directory or one of its mirrors.
var ErrKeyringInLog = errors.New("the keyring is inside the log directory")

// keyringOutside refuses a keyring path inside dir or a mirror.
func keyringOutside(path, dir string, mirrors []string) error {
	p := absClean(path)
	for _, d := range append([]string{dir}, mirrors...) {
		rel, err := filepath.Rel(absClean(d), p)
		if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return fmt.Errorf("audit: %w: WithKeyring(%s) is inside %s; keep the keys apart from the log they open (and from its mirrors and backups)", ErrKeyringInLog, path, d)
		}
	}
	return nil
}

// absClean returns p absolute, with symbolic links resolved where they
// exist.
func absClean(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		p = a
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	if r, err := filepath.EvalSymlinks(filepath.Dir(p)); err == nil {
		return filepath.Join(r, filepath.Base(p))
	}
	return filepath.Clean(p)
}

// Keyring returns the keyring of WithKeyring, nil without it. It stays
// open until Close.
func (s *Sink) Keyring() *protect.Keyring {
	if s.cfg.keys == nil {
		return nil
	}
	return s.cfg.keys.kr
}

// closeKeys closes the keyring, if any.
func (c *config) closeKeys() error {
	if c.keys == nil || c.keys.kr == nil {
		return nil
	}
	return c.keys.kr.Close()
}
