package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	vault "github.com/hashicorp/vault/api"
	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/protect"
)

// keyringHelp documents --keyring and --vault-transit.
const keyringHelp = `Encrypted fields (audit.WithEncryption):
  without --keyring     they read as <encrypted key=ID>, and <shredded key=ID>
                        is not told apart from them
  --keyring FILE        decrypt them with this keyring (read only: the
                        application may hold it open); a shredded subject's
                        fields read as <shredded key=ID>; a field that does
                        not decrypt (wrong keyring, altered, moved) keeps
                        its placeholder and is reported on stderr
  --vault-transit M/N   the keyring's keys are wrapped by the Vault Transit
                        key N at mount M (VAULT_ADDR and VAULT_TOKEN say
                        how to reach Vault)`

// reader reads encrypted fields back for replay and export.
type reader struct {
	kr   *protect.Keyring // nil: no --keyring
	warn io.Writer
}

// open opens the keyring file at path read-only ("" for none).
func (r *reader) open(path, transit string, warn io.Writer) error {
	r.warn = warn
	if path == "" {
		if transit != "" {
			return &flagError{errors.New("--vault-transit needs --keyring")}
		}
		return nil
	}
	prov, err := transitProvider(transit)
	if err != nil {
		return err
	}
	r.kr, err = protect.OpenKeyring(path, protect.KeyringOptions{Provider: prov, ReadOnly: true})
	if err != nil {
		return usageErr("--keyring %s: %w", path, err)
	}
	return nil
}

// transitProvider returns the Vault Transit provider of "MOUNT/NAME" (nil
// for "").
func transitProvider(spec string) (protect.KeyProvider, error) {
	if spec == "" {
		return nil, nil
	}
	mount, name, ok := strings.Cut(spec, "/")
	if !ok || mount == "" || name == "" {
		return nil, &flagError{fmt.Errorf("--vault-transit %q: give MOUNT/NAME, such as transit/mtlog-audit", spec)}
	}
	c, err := vault.NewClient(vault.DefaultConfig())
	if err != nil {
		return nil, usageErr("--vault-transit: %w (set VAULT_ADDR and VAULT_TOKEN)", err)
	}
	return protect.NewVaultTransit(c, mount, name)
}

// reveal returns ev with its encrypted fields decrypted, or shown as
// their placeholders' text; each field that does not decrypt is reported
// on stderr, and the event is kept.
func (r *reader) reveal(ctx context.Context, seq uint64, ev *event.Event) *event.Event {
	if _, ok := ev.Properties[protect.EnvelopeProperty]; !ok {
		return ev
	}
	out, err := protect.Reveal(ctx, ev, r.kr)
	if err != nil {
		for _, e := range fieldErrors(err) {
			fmt.Fprintf(r.warn, "mtlog-audit: event %d: %v\n", seq, e)
		}
	}
	for k, v := range out.Properties {
		switch x := v.(type) {
		case protect.Encrypted:
			out.Properties[k] = x.String()
		case protect.Shredded:
			out.Properties[k] = x.String()
		}
	}
	return out
}

// fieldErrors returns the errors joined in err.
func fieldErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
