package protect

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// A Keyring holds the per-subject keys of field encryption and
// pseudonymisation: for each data subject, a pseudonym key and one or more
// data keys (one per rotation), each under a random key ID and stored
// wrapped by a KeyProvider's key-encryption key in one file. The file's
// format and its crash safety are in docs/protection.md ("Keys").
//
// A Keyring is safe for concurrent use. Keys are created when a subject is
// first seen, and the file is durable (fsync of the file and its
// directory) before a key is used, so that no event is written under a key
// a crash could lose. Only one Keyring may have a file open at a time (a
// lock file next to it, PATH.lock, says who holds it).
type Keyring struct {
	fsys vfs.FS
	path string
	prov KeyProvider
	lock io.Closer // nil when read-only

	readOnly bool

	wmu sync.Mutex // serialises changes of the file (held across the write)

	mu       sync.RWMutex
	state    keyringState         // what the file holds (replaced whole on change)
	subjects map[string]*subject  // by subject
	byID     map[string]*keyEntry // every live key, by ID
	shredded map[string]bool      // IDs of shredded keys
	closed   bool

	// ver moves on, under mu, with every change of the fields above (and
	// of a subject's entries): a subjectKey of another ver is stale.
	ver  atomic.Uint64
	last atomic.Pointer[subjectKey] // see dataKey
}

// subjectKey is a subject's current data key as dataKey last found it,
// while the keyring's ver was ver.
type subjectKey struct {
	ver     uint64
	subject string
	id      string
	aead    cipher.AEAD
}

// subject is one data subject's keys.
type subject struct {
	name   string
	pseudo *keyEntry
	data   []*keyEntry // oldest first; the last is current
}

// keyEntry is one key; its unwrapped form is cached once used.
type keyEntry struct {
	rec  keyRecord
	subj *subject

	once sync.Once
	key  []byte
	aead cipher.AEAD
	err  error
}

// KeyringOptions configures OpenKeyring. The zero value is a keyring on
// the operating system's filesystem whose key-encryption key is kept in
// the keyring file itself.
type KeyringOptions struct {
	// FS is the filesystem (nil: the operating system's).
	FS vfs.FS
	// Provider wraps the data keys (nil: a local key-encryption key kept
	// in the file, with its versions). With a remote provider, such as
	// NewVaultTransit, the file holds only wrapped keys.
	Provider KeyProvider
	// ReadOnly opens an existing file to read fields back, without the
	// lock, so that a reader (the CLI's replay and export) may open it
	// while a Sink writes. A read-only keyring makes no keys: it sees the
	// keys as they were when it was opened.
	ReadOnly bool
}

// OpenKeyring opens the keyring file at path, creating it (owner-only,
// 0600) if it does not exist. It fails, with an error matching ErrKeyring
// that names the file and the problem, when the file is damaged, when group
// or others may access it, or when it was made with another provider.
func OpenKeyring(path string, opts KeyringOptions) (*Keyring, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: the path is empty; pass a file outside the log directory, such as /etc/myapp/audit.keyring", ErrKeyring)
	}
	fsys := opts.FS
	if fsys == nil {
		fsys = vfs.OS()
	}
	k := &Keyring{fsys: fsys, path: filepath.Clean(path), prov: opts.Provider, readOnly: opts.ReadOnly}
	if opts.ReadOnly {
		st, err := readKeyringFile(fsys, k.path)
		if err != nil {
			return nil, err
		}
		if err := k.use(st); err != nil {
			return nil, err
		}
		return k, nil
	}
	if err := vfs.MkdirAllDurable(fsys, filepath.Dir(k.path), 0o700); err != nil {
		return nil, fmt.Errorf("protect: keyring %s: %w", k.path, err)
	}
	lock, err := fsys.Lock(k.path+".lock", "mtlog-audit keyring")
	if err != nil {
		return nil, fmt.Errorf("protect: keyring %s: %w", k.path, err)
	}
	k.lock = lock
	if err := k.load(); err != nil {
		lock.Close()
		return nil, err
	}
	return k, nil
}

// load reads the file, or creates it.
func (k *Keyring) load() error {
	st, err := readKeyringFile(k.fsys, k.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		st = keyringState{Format: keyringFormat, Generation: 1}
		if k.prov == nil {
			kek := make([]byte, 32)
			if _, err := rand.Read(kek); err != nil {
				return err
			}
			st.LocalKEK = []localKEK{{Version: 1, Key: kek}}
		} else {
			st.Provider = k.prov.Name()
		}
		if err := writeKeyringFile(k.fsys, k.path, &st); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	return k.use(st)
}

// use checks st against the provider and installs it.
func (k *Keyring) use(st keyringState) error {
	switch {
	case k.prov == nil && st.Provider != "":
		return fmt.Errorf("%w: %s: its keys are wrapped by %s; open it with that provider (KeyringOptions.Provider)", ErrKeyring, k.path, st.Provider)
	case k.prov != nil && st.Provider != k.prov.Name():
		made := st.Provider
		if made == "" {
			made = "the local key-encryption key in the file"
		}
		return fmt.Errorf("%w: %s: its keys are wrapped by %s, not %s", ErrKeyring, k.path, made, k.prov.Name())
	}
	if k.prov == nil {
		k.prov = &localProvider{keys: st.LocalKEK}
	}
	k.install(st)
	return nil
}

// install makes st the current state and rebuilds the indexes, keeping the
// unwrapped keys already cached. The caller holds mu (or is load).
func (k *Keyring) install(st keyringState) {
	old := k.byID
	k.state = st
	k.subjects = make(map[string]*subject, len(st.Subjects))
	k.byID = make(map[string]*keyEntry, 2*len(st.Subjects))
	k.shredded = make(map[string]bool)
	entry := func(r keyRecord, s *subject) *keyEntry {
		if e, ok := old[r.ID]; ok && e.rec == r {
			e.subj = s
			k.byID[r.ID] = e
			return e
		}
		e := &keyEntry{rec: r, subj: s}
		k.byID[r.ID] = e
		return e
	}
	for _, sr := range st.Subjects {
		s := &subject{name: sr.Subject}
		s.pseudo = entry(sr.Pseudonym, s)
		for _, r := range sr.Data {
			s.data = append(s.data, entry(r, s))
		}
		k.subjects[sr.Subject] = s
	}
	for _, sh := range st.Shredded {
		for _, id := range sh.Keys {
			k.shredded[id] = true
		}
	}
	k.ver.Add(1)
	k.last.Store(nil) // no key of the old state lingers in it
}

// Path returns the keyring file's path.
func (k *Keyring) Path() string { return k.path }

// Close releases the keyring's lock and forgets the unwrapped keys.
func (k *Keyring) Close() error {
	k.wmu.Lock()
	defer k.wmu.Unlock()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	k.ver.Add(1)
	k.last.Store(nil)
	for _, e := range k.byID {
		clear(e.key)
	}
	k.byID, k.subjects = nil, nil
	if k.lock == nil {
		return nil
	}
	return k.lock.Close()
}

// errClosed is returned after Close, errReadOnly by a change of a
// read-only keyring.
var (
	errClosed   = errors.New("protect: the keyring is closed")
	errReadOnly = errors.New("protect: the keyring is open read-only (KeyringOptions.ReadOnly)")
)

// unwrap returns e's key and AEAD, unwrapping it on first use. A failure
// of an unavailable provider is not cached.
func (k *Keyring) unwrap(ctx context.Context, e *keyEntry) ([]byte, cipher.AEAD, error) {
	e.once.Do(func() {
		key, err := k.prov.UnwrapKey(ctx, e.rec.ID, e.rec.Wrapped)
		if err == nil && len(key) != 32 {
			err = fmt.Errorf("unwrapped key is %d bytes, want 32", len(key))
		}
		if err != nil {
			e.err = fmt.Errorf("protect: unwrap key %s of keyring %s: %w", e.rec.ID, k.path, err)
			return
		}
		e.key = key
		e.aead, e.err = newGCM(key)
	})
	if e.err != nil && errors.Is(e.err, ErrUnavailable) {
		err := e.err
		k.mu.Lock()
		if k.byID[e.rec.ID] == e { // retry with a fresh entry next time
			fresh := &keyEntry{rec: e.rec, subj: e.subj}
			k.byID[e.rec.ID] = fresh
			replaceEntry(e.subj, e, fresh)
			k.ver.Add(1)
		}
		k.mu.Unlock()
		return nil, nil, err
	}
	return e.key, e.aead, e.err
}

// replaceEntry puts fresh in old's place in s.
func replaceEntry(s *subject, old, fresh *keyEntry) {
	if s == nil {
		return
	}
	if s.pseudo == old {
		s.pseudo = fresh
	}
	for i, e := range s.data {
		if e == old {
			s.data[i] = fresh
		}
	}
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// forSubject returns the subject's current data key (ID, AEAD) and its
// pseudonym key, creating and durably storing keys it lacks: a subject not
// seen before, or one whose current data key is from before the last
// Rotate.
func (k *Keyring) forSubject(ctx context.Context, name string) (data, pseudo *keyEntry, err error) {
	k.mu.RLock()
	if k.closed {
		k.mu.RUnlock()
		return nil, nil, errClosed
	}
	s := k.subjects[name]
	gen := k.state.Generation
	if s != nil && len(s.data) > 0 && s.data[len(s.data)-1].rec.Gen == gen {
		data, pseudo = s.data[len(s.data)-1], s.pseudo
	}
	k.mu.RUnlock()
	if data != nil {
		return data, pseudo, nil
	}
	k.wmu.Lock()
	defer k.wmu.Unlock()
	st, err := k.snapshot()
	if err != nil {
		return nil, nil, err
	}
	changed := false
	i := st.subjectIndex(name)
	if i < 0 {
		p, err := k.newKey(ctx, st.Generation)
		if err != nil {
			return nil, nil, err
		}
		st.Subjects = append(st.Subjects, subjectRecord{Subject: name, Pseudonym: p})
		i, changed = len(st.Subjects)-1, true
	}
	sr := &st.Subjects[i]
	if n := len(sr.Data); n == 0 || sr.Data[n-1].Gen != st.Generation {
		d, err := k.newKey(ctx, st.Generation)
		if err != nil {
			return nil, nil, err
		}
		sr.Data, changed = append(sr.Data, d), true
	}
	if changed { // else another writer made the keys while this one waited
		if err := k.commit(st); err != nil {
			return nil, nil, err
		}
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	s = k.subjects[name]
	return s.data[len(s.data)-1], s.pseudo, nil
}

// dataKey returns the ID and the AEAD of the subject's current data key
// (see forSubject). The last subject's is kept and used again, without
// a lock, while the keyring's state has not changed since it was found:
// a rotation, a shred or Close takes effect on the next call.
func (k *Keyring) dataKey(ctx context.Context, subject string) (string, cipher.AEAD, error) {
	if c := k.last.Load(); c != nil && c.subject == subject && c.ver == k.ver.Load() {
		return c.id, c.aead, nil
	}
	ver := k.ver.Load() // before the look-up: a change after it makes the entry stale
	dk, _, err := k.forSubject(ctx, subject)
	if err != nil {
		return "", nil, err
	}
	_, aead, err := k.unwrap(ctx, dk)
	if err != nil {
		return "", nil, err
	}
	k.last.Store(&subjectKey{ver: ver, subject: subject, id: dk.rec.ID, aead: aead})
	return dk.rec.ID, aead, nil
}

// newKey makes a fresh random key and wraps it.
func (k *Keyring) newKey(ctx context.Context, gen int) (keyRecord, error) {
	id, err := newKeyID()
	if err != nil {
		return keyRecord{}, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return keyRecord{}, err
	}
	defer clear(key)
	w, err := k.prov.WrapKey(ctx, id, key)
	if err != nil {
		return keyRecord{}, fmt.Errorf("protect: wrap a new key for keyring %s: %w", k.path, err)
	}
	return keyRecord{ID: id, Gen: gen, Wrapped: w}, nil
}

// snapshot returns a copy of the state to change. The caller holds wmu.
func (k *Keyring) snapshot() (keyringState, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.closed {
		return keyringState{}, errClosed
	}
	return k.state.clone(), nil
}

// commit writes st durably and installs it. The caller holds wmu.
func (k *Keyring) commit(st keyringState) error {
	if k.readOnly {
		return errReadOnly
	}
	if err := writeKeyringFile(k.fsys, k.path, &st); err != nil {
		return err
	}
	k.mu.Lock()
	k.install(st)
	k.mu.Unlock()
	return nil
}

// key returns the live key of the given ID: ErrShredded if it was
// shredded, ErrKeyNotFound if this keyring never had it.
func (k *Keyring) key(id string) (*keyEntry, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.closed {
		return nil, errClosed
	}
	if e := k.byID[id]; e != nil {
		return e, nil
	}
	if k.shredded[id] {
		return nil, ErrShredded
	}
	return nil, fmt.Errorf("%w: %s does not hold key %s; open the keyring the log was written with", ErrKeyNotFound, k.path, id)
}

// Rotate starts a new key generation: from now on each subject's events
// are encrypted under a new data key (made on the subject's next event),
// and the local key-encryption key, if the keyring keeps one, gets a new
// version that wraps the new keys. Old keys stay, so old events stay
// readable. Pseudonym keys are not rotated: a subject's pseudonym stays
// the same until the subject is shredded. With a remote provider, rotate
// its key there too (for Vault: transit/keys/NAME/rotate).
func (k *Keyring) Rotate(ctx context.Context) error {
	k.wmu.Lock()
	defer k.wmu.Unlock()
	st, err := k.snapshot()
	if err != nil {
		return err
	}
	st.Generation++
	if lp, ok := k.prov.(*localProvider); ok {
		kek := make([]byte, 32)
		if _, err := rand.Read(kek); err != nil {
			return err
		}
		st.LocalKEK = append(st.LocalKEK, localKEK{Version: len(st.LocalKEK) + 1, Key: kek})
		if err := k.commit(st); err != nil {
			return err
		}
		lp.set(st.LocalKEK)
		return nil
	}
	return k.commit(st)
}

// localProvider is the KeyProvider of a keyring that keeps its
// key-encryption key, in versions, in its own file.
type localProvider struct {
	mu   sync.RWMutex
	keys []localKEK
}

func (p *localProvider) set(keys []localKEK) {
	p.mu.Lock()
	p.keys = keys
	p.mu.Unlock()
}

// Name is "" for the local provider: the file records no provider.
func (p *localProvider) Name() string { return "" }

// WrapKey encrypts key under the newest version, as "local:v<N>:<base64>".
func (p *localProvider) WrapKey(_ context.Context, id string, key []byte) (string, error) {
	p.mu.RLock()
	kek := p.keys[len(p.keys)-1]
	p.mu.RUnlock()
	aead, err := newGCM(kek.Key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(key)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	sealed := aead.Seal(nonce, nonce, key, []byte("mtlog-audit keyring\x00"+id))
	return fmt.Sprintf("local:v%d:%s", kek.Version, b64.EncodeToString(sealed)), nil
}

// UnwrapKey opens a key wrapped by WrapKey under any version kept.
func (p *localProvider) UnwrapKey(_ context.Context, id, wrapped string) ([]byte, error) {
	var v int
	var enc string
	if n, err := fmt.Sscanf(wrapped, "local:v%d:%s", &v, &enc); n != 2 || err != nil {
		return nil, fmt.Errorf("%w: wrapped key %q is not local:v<N>:<base64>", ErrDecrypt, wrapped)
	}
	p.mu.RLock()
	var kek []byte
	for _, x := range p.keys {
		if x.Version == v {
			kek = x.Key
		}
	}
	p.mu.RUnlock()
	if kek == nil {
		return nil, fmt.Errorf("%w: key-encryption key version %d is not in the keyring", ErrKeyNotFound, v)
	}
	raw, err := b64.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: wrapped key: %w", ErrDecrypt, err)
	}
	aead, err := newGCM(kek)
	if err != nil {
		return nil, err
	}
	if len(raw) < aead.NonceSize() {
		return nil, fmt.Errorf("%w: wrapped key is too short", ErrDecrypt)
	}
	key, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte("mtlog-audit keyring\x00"+id))
	if err != nil {
		return nil, fmt.Errorf("%w: wrapped key %s: %w", ErrDecrypt, id, err)
	}
	return key, nil
}
