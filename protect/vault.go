package protect

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	vault "github.com/hashicorp/vault/api"
)

// VaultTransit is a KeyProvider whose key-encryption key is a named key of
// a HashiCorp Vault Transit secrets engine: data keys are wrapped by
// POST MOUNT/encrypt/NAME and unwrapped by POST MOUNT/decrypt/NAME, so the
// key-encryption key never leaves Vault. Rotate it in Vault
// (MOUNT/keys/NAME/rotate): new keys are wrapped by the newest version,
// and Vault still unwraps the old ones.
type VaultTransit struct {
	client *vault.Client
	mount  string
	name   string
}

// NewVaultTransit returns the provider for the Transit key name at mount
// (such as "transit"), reached through client (configure its address and
// token as the vault/api package says).
func NewVaultTransit(client *vault.Client, mount, name string) (*VaultTransit, error) {
	mount = strings.Trim(mount, "/")
	if client == nil || mount == "" || name == "" {
		return nil, errors.New("protect: NewVaultTransit: give a client, the Transit mount (such as \"transit\") and the key name")
	}
	return &VaultTransit{client: client, mount: mount, name: name}, nil
}

// Name is "vault-transit:MOUNT/NAME".
func (v *VaultTransit) Name() string { return "vault-transit:" + v.mount + "/" + v.name }

// WrapKey implements KeyProvider. The plaintext sent is the key ID and the
// key, so that the wrapped key is bound to its ID.
func (v *VaultTransit) WrapKey(ctx context.Context, id string, key []byte) (string, error) {
	pt := append([]byte(id+"\x00"), key...)
	defer clear(pt)
	sec, err := v.client.Logical().WriteWithContext(ctx, v.mount+"/encrypt/"+v.name, map[string]any{
		"plaintext": base64.StdEncoding.EncodeToString(pt),
	})
	if err != nil {
		return "", v.fail("encrypt", err)
	}
	ct, _ := field(sec, "ciphertext")
	if !strings.HasPrefix(ct, "vault:") {
		return "", fmt.Errorf("protect: vault %s: encrypt answered without a ciphertext", v.Name())
	}
	return ct, nil
}

// UnwrapKey implements KeyProvider.
func (v *VaultTransit) UnwrapKey(ctx context.Context, id, wrapped string) ([]byte, error) {
	sec, err := v.client.Logical().WriteWithContext(ctx, v.mount+"/decrypt/"+v.name, map[string]any{"ciphertext": wrapped})
	if err != nil {
		return nil, v.fail("decrypt", err)
	}
	s, _ := field(sec, "plaintext")
	pt, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("protect: vault %s: decrypt answered a plaintext that is not base64: %w", v.Name(), err)
	}
	rest, ok := strings.CutPrefix(string(pt), id+"\x00")
	clear(pt)
	if !ok {
		return nil, fmt.Errorf("%w: vault %s unwrapped a key that is not key %s", ErrDecrypt, v.Name(), id)
	}
	return []byte(rest), nil
}

// fail classifies a Vault error: a response with a status below 500 is
// permanent (permission denied, unknown key, bad ciphertext); no answer or
// a server error is ErrUnavailable.
func (v *VaultTransit) fail(op string, err error) error {
	var re *vault.ResponseError
	if errors.As(err, &re) && re.StatusCode < 500 {
		return fmt.Errorf("protect: vault %s: %s: %w", v.Name(), op, err)
	}
	return unavailable(fmt.Errorf("vault %s: %s: %w", v.Name(), op, err))
}

// field returns the string field name of a Transit answer's data.
func field(sec *vault.Secret, name string) (string, bool) {
	if sec == nil || sec.Data == nil {
		return "", false
	}
	s, ok := sec.Data[name].(string)
	return s, ok
}
