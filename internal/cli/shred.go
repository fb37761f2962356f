package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/protect"
)

// shredJSON is what shred --json prints.
type shredJSON struct {
	Keys         []string `json:"keys"`
	TombstoneSeq uint64   `json:"tombstone_seq"`
}

func shredCmd(e *env) *cobra.Command {
	var dir, keyring, transit, signingKey string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "shred --wal DIR --keyring FILE SUBJECT",
		Short: "Crypto-shred a data subject: destroy its keys, log a tombstone",
		Long: `shred destroys the keys of one data subject (the value of its subject
property, such as a user ID) in the keyring, durably, and appends to the log
a tombstone event naming the destroyed keys by their IDs, never the subject
(audit.Sink.Shred does the same from the application). Afterwards the
subject's encrypted fields read as <shredded key=ID> and their pseudonyms
cannot be linked back; verify and every proof still pass.

It opens the log for writing: stop the application first, or call
Sink.Shred from it. A signed log needs the signing key (--signing-key) so
that the tombstone is authenticated like every record; a log with
forward-secure keys must be shredded from the application.

No regulator has endorsed crypto-shredding as erasure: see
docs/compliance/README.md.`,
		Example: `  mtlog-audit shred --wal ./audit-wal --keyring /etc/myapp/audit.keyring user-42
  mtlog-audit shred --wal ./audit-wal --keyring ./audit.keyring --signing-key audit.key --json u-7`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "wal", "keyring"); err != nil {
				return err
			}
			if err := checkLogDir("--wal", dir); err != nil {
				return err
			}
			prov, err := transitProvider(transit)
			if err != nil {
				return err
			}
			opts := []audit.Option{audit.WithWAL(dir), audit.WithKeyring(keyring, prov)}
			if signingKey != "" {
				opts = append(opts, audit.WithSigningKeyFile(signingKey))
			}
			s, err := audit.New(opts...)
			if err != nil {
				return usageErr("open %s: %w", dir, err)
			}
			res, err := s.Shred(cmd.Context(), args[0])
			cerr := s.Close()
			switch {
			case errors.Is(err, protect.ErrNoSubject):
				return usageErr("%q: %w", args[0], err)
			case err != nil:
				return failErr(err)
			case cerr != nil:
				return failErr(cerr)
			}
			if asJSON {
				return writeJSON(e.stdout, shredJSON{Keys: res.Keys, TombstoneSeq: res.Tombstone.Seq})
			}
			fmt.Fprintf(e.stdout, "shredded %d keys %v; tombstone at sequence number %d\n", len(res.Keys), res.Keys, res.Tombstone.Seq)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "wal", "", "the log")
	f.StringVar(&keyring, "keyring", "", "the keyring file that holds the subject's keys")
	f.StringVar(&transit, "vault-transit", "", "the keyring's keys are wrapped by this Vault Transit key, MOUNT/NAME (VAULT_ADDR, VAULT_TOKEN)")
	f.StringVar(&signingKey, "signing-key", "", "the log's signing key file, for a signed log")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}
