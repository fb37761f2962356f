package torture

import (
	"testing"

	"github.com/willibrandon/mtlog-audit/integrity"
)

// TestKeyPair checks that the derived keys are what integrity expects.
func TestKeyPair(t *testing.T) {
	skey, vkey := keyPair(42)
	pub, err := integrity.PublicKeyOf(skey)
	if err != nil || pub != vkey {
		t.Fatalf("PublicKeyOf(%q) = %q, %v; want %q", skey, pub, err, vkey)
	}
	if _, err := integrity.NewSigner(skey); err != nil {
		t.Fatal(err)
	}
	if _, err := integrity.NewVerifiers(vkey); err != nil {
		t.Fatal(err)
	}
	if s2, _ := keyPair(42); s2 != skey {
		t.Fatal("keyPair is not deterministic")
	}
	if s3, _ := keyPair(43); s3 == skey {
		t.Fatal("different seeds gave the same key")
	}
}
