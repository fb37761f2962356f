package protect

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// The keyring file (docs/protection.md, "Keys"): one header line
//
//	mtlog-audit keyring 1 sha256=<hex of the SHA-256 of the body>
//
// then the body, a JSON keyringState. The checksum tells a damaged file
// from a valid one before any key is used. The file is only ever replaced
// whole: written to PATH.tmp, fsynced, renamed over PATH, and the
// directory fsynced, so that after a crash PATH is the old file or the new
// one, never a mix.
const (
	keyringFormat = "mtlog-audit keyring 1"
	maxKeyring    = 256 << 20 // a keyring larger than this is refused as damaged
)

// keyringState is the body of the keyring file.
type keyringState struct {
	Format     string          `json:"format"`
	Provider   string          `json:"provider,omitempty"`  // "" for the local key-encryption key
	LocalKEK   []localKEK      `json:"local_kek,omitempty"` // the local KEK's versions, oldest first
	Generation int             `json:"generation"`          // raised by Rotate
	Subjects   []subjectRecord `json:"subjects"`
	Shredded   []shredRecord   `json:"shredded,omitempty"`
}

// localKEK is one version of the local key-encryption key.
type localKEK struct {
	Version int    `json:"version"`
	Key     []byte `json:"key"`
}

// subjectRecord is one subject's keys. The "" subject holds the keys of
// events that name no subject.
type subjectRecord struct {
	Subject   string      `json:"subject"`
	Pseudonym keyRecord   `json:"pseudonym"`
	Data      []keyRecord `json:"data"` // oldest first
}

// keyRecord is one wrapped key.
type keyRecord struct {
	ID      string `json:"id"`
	Gen     int    `json:"gen"`
	Wrapped string `json:"wrapped"`
}

// shredRecord is one shred: the IDs of the keys destroyed, and whether its
// tombstone event is known to be in the log.
type shredRecord struct {
	Keys   []string `json:"keys"`
	Logged bool     `json:"logged"`
}

// clone returns a deep copy of the parts a change modifies.
func (s keyringState) clone() keyringState {
	c := s
	c.LocalKEK = slices.Clone(s.LocalKEK)
	c.Subjects = make([]subjectRecord, len(s.Subjects))
	for i, sr := range s.Subjects {
		sr.Data = slices.Clone(sr.Data)
		c.Subjects[i] = sr
	}
	c.Shredded = make([]shredRecord, len(s.Shredded))
	for i, sh := range s.Shredded {
		sh.Keys = slices.Clone(sh.Keys)
		c.Shredded[i] = sh
	}
	return c
}

// subjectIndex returns the index of name in s.Subjects, or -1.
func (s *keyringState) subjectIndex(name string) int {
	for i := range s.Subjects {
		if s.Subjects[i].Subject == name {
			return i
		}
	}
	return -1
}

// check reports what is wrong with a decoded state.
func (s *keyringState) check() error {
	if s.Format != keyringFormat {
		return fmt.Errorf("format %q, want %q", s.Format, keyringFormat)
	}
	if s.Provider == "" && len(s.LocalKEK) == 0 {
		return errors.New("no provider and no local key-encryption key")
	}
	seen := map[string]bool{}
	for _, sr := range s.Subjects {
		for _, r := range append([]keyRecord{sr.Pseudonym}, sr.Data...) {
			if !validKeyID(r.ID) || seen[r.ID] {
				return fmt.Errorf("subject entry with a malformed or repeated key ID %q", r.ID)
			}
			seen[r.ID] = true
		}
		if len(sr.Data) == 0 {
			return errors.New("a subject entry without a data key")
		}
	}
	return nil
}

// readKeyringFile reads and checks the keyring file at path.
func readKeyringFile(fsys vfs.FS, path string) (keyringState, error) {
	var st keyringState
	fi, err := fsys.Stat(path)
	if err != nil {
		return st, fmt.Errorf("protect: keyring %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return st, fmt.Errorf("%w: %s is not a regular file", ErrKeyring, path)
	}
	if why, fix := vfs.OwnerOnly(fsys, path, fi); why != "" {
		return st, fmt.Errorf("%w: %s has %s, which lets group or others access the keys; run: %s", ErrKeyring, path, why, fix)
	}
	if fi.Size() > maxKeyring {
		return st, fmt.Errorf("%w: %s is %d bytes, above the limit of %d: it is damaged or not a keyring", ErrKeyring, path, fi.Size(), maxKeyring)
	}
	f, err := fsys.Open(path)
	if err != nil {
		return st, fmt.Errorf("protect: keyring %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.NewSectionReader(f, 0, fi.Size()))
	if err != nil {
		return st, fmt.Errorf("protect: keyring %s: %w", path, err)
	}
	damaged := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s is damaged (%s); restore it from a backup: without it the encrypted fields cannot be read", ErrKeyring, path, fmt.Sprintf(format, args...))
	}
	head, body, ok := bytes.Cut(data, []byte("\n"))
	want := []byte(keyringFormat + " sha256=")
	if !ok || !bytes.HasPrefix(head, want) {
		return st, damaged("the first line is not %q", keyringFormat+" sha256=…")
	}
	sum := sha256.Sum256(body)
	if got := string(head[len(want):]); got != hex.EncodeToString(sum[:]) {
		return st, damaged("the checksum does not match its contents")
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, damaged("%v", err)
	}
	if err := st.check(); err != nil {
		return st, damaged("%v", err)
	}
	return st, nil
}

// writeKeyringFile replaces the file at path with st, durably: a
// temporary file, fsync, rename, fsync of the directory.
func writeKeyringFile(fsys vfs.FS, path string, st *keyringState) error {
	body, err := json.Marshal(st)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	data := make([]byte, 0, len(body)+128)
	data = append(data, keyringFormat+" sha256="+hex.EncodeToString(sum[:])+"\n"...)
	data = append(data, body...)
	if err := vfs.ReplaceFile(fsys, path, path+".tmp", data, true); err != nil {
		return fmt.Errorf("protect: write keyring %s: %w", path, err)
	}
	return nil
}
