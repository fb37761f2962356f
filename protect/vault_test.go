package protect

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	vault "github.com/hashicorp/vault/api"
	"github.com/willibrandon/mtlog-audit/event"
)

// transitServer speaks the part of the Vault Transit API that VaultTransit
// calls: encrypt, decrypt and keys/NAME/rotate under /v1/transit/, with
// versioned AES-GCM keys and the "vault:vN:" ciphertext prefix. It checks
// the token. down makes it answer 503.
type transitServer struct {
	mu   sync.Mutex
	keys map[string][][]byte
	down bool
	hits int
}

func (s *transitServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hits++
	fail := func(code int, msg string) {
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]any{"errors": []string{msg}})
	}
	if s.down {
		fail(503, "Vault is sealed")
		return
	}
	if r.Header.Get("X-Vault-Token") != "test-token" {
		fail(403, "permission denied")
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v1/transit/"), "/")
	var body map[string]string
	json.NewDecoder(r.Body).Decode(&body)
	reply := func(data map[string]any) { json.NewEncoder(w).Encode(map[string]any{"data": data}) }
	switch {
	case len(parts) == 3 && parts[0] == "keys" && parts[2] == "rotate":
		k := make([]byte, 32)
		rand.Read(k)
		s.keys[parts[1]] = append(s.keys[parts[1]], k)
		w.WriteHeader(204)
	case len(parts) == 2 && parts[0] == "encrypt":
		vs := s.keys[parts[1]]
		if len(vs) == 0 {
			k := make([]byte, 32)
			rand.Read(k)
			vs = [][]byte{k}
			s.keys[parts[1]] = vs
		}
		pt, err := base64.StdEncoding.DecodeString(body["plaintext"])
		if err != nil {
			fail(400, "plaintext is not base64")
			return
		}
		aead, _ := newGCM(vs[len(vs)-1])
		nonce := make([]byte, 12)
		rand.Read(nonce)
		ct := aead.Seal(nonce, nonce, pt, nil)
		reply(map[string]any{"ciphertext": fmt.Sprintf("vault:v%d:%s", len(vs), base64.StdEncoding.EncodeToString(ct)), "key_version": len(vs)})
	case len(parts) == 2 && parts[0] == "decrypt":
		f := strings.SplitN(body["ciphertext"], ":", 3)
		if len(f) != 3 || f[0] != "vault" {
			fail(400, "invalid ciphertext")
			return
		}
		v, _ := strconv.Atoi(strings.TrimPrefix(f[1], "v"))
		vs := s.keys[parts[1]]
		raw, err := base64.StdEncoding.DecodeString(f[2])
		if v < 1 || v > len(vs) || err != nil || len(raw) < 12 {
			fail(400, "invalid ciphertext")
			return
		}
		aead, _ := newGCM(vs[v-1])
		pt, err := aead.Open(nil, raw[:12], raw[12:], nil)
		if err != nil {
			fail(400, "cipher: message authentication failed")
			return
		}
		reply(map[string]any{"plaintext": base64.StdEncoding.EncodeToString(pt)})
	default:
		fail(404, "no handler for route")
	}
}

func vaultProvider(t *testing.T, url string) *VaultTransit {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = url
	cfg.MaxRetries = 0
	c, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken("test-token")
	p, err := NewVaultTransit(c, "transit", "mtlog-audit")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The Vault Transit provider wraps and unwraps data keys through the
// Transit API; after a rotation in Vault old events still read; the
// keyring file holds no key-encryption key; a sealed Vault is
// ErrUnavailable and a refused token a permanent error.
func TestVaultTransit(t *testing.T) {
	ts := &transitServer{keys: map[string][][]byte{}}
	srv := httptest.NewServer(ts)
	defer srv.Close()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vault.keyring")
	kr, err := OpenKeyring(path, KeyringOptions{Provider: vaultProvider(t, srv.URL)})
	if err != nil {
		t.Fatal(err)
	}
	e := encryptor(t, kr)
	before, err := e.Protect(ctx, testEvent("alice"))
	if err != nil {
		t.Fatal(err)
	}
	// Rotate the KEK in Vault and the data keys in the keyring.
	req, _ := http.NewRequest("POST", srv.URL+"/v1/transit/keys/mtlog-audit/rotate", nil)
	req.Header.Set("X-Vault-Token", "test-token")
	if _, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	if err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := e.Protect(ctx, testEvent("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(kr.state.Subjects[0].Data[1].Wrapped, "vault:v2:") {
		t.Fatalf("the new key is not wrapped by version 2: %v", kr.state.Subjects[0].Data)
	}
	kr.Close()

	kr, err = OpenKeyring(path, KeyringOptions{Provider: vaultProvider(t, srv.URL)})
	if err != nil {
		t.Fatal(err)
	}
	if kr.state.LocalKEK != nil {
		t.Fatal("a Vault keyring holds a local key-encryption key")
	}
	for _, ev := range []*event.Event{before, after} {
		got, err := Reveal(ctx, roundTrip(t, ev), kr)
		if err != nil || got.Properties["Email"] != "alice@example.com" {
			t.Fatalf("after rotation and reopening: %v %v", got.Properties["Email"], err)
		}
	}
	// A sealed Vault: a new subject's key cannot be wrapped, transiently.
	ts.mu.Lock()
	ts.down = true
	ts.mu.Unlock()
	if _, err := encryptor(t, kr).Protect(ctx, testEvent("bob")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("sealed Vault: %v", err)
	}
	// and a key not yet unwrapped cannot be read, transiently, and then can.
	kr.Close()
	kr, err = OpenKeyring(path, KeyringOptions{Provider: vaultProvider(t, srv.URL)})
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	if _, err := Reveal(ctx, roundTrip(t, before), kr); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("reading with a sealed Vault: %v", err)
	}
	ts.mu.Lock()
	ts.down = false
	ts.mu.Unlock()
	if got, err := Reveal(ctx, roundTrip(t, before), kr); err != nil || got.Properties["Email"] != "alice@example.com" {
		t.Fatalf("after Vault came back: %v %v", got.Properties["Email"], err)
	}
	// A refused token is permanent.
	bad := vaultProvider(t, srv.URL)
	bad.client.SetToken("wrong")
	if _, err := bad.WrapKey(ctx, "k-000000000000000000000000", make([]byte, 32)); err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("refused token: %v", err)
	}
}
