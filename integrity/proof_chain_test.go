package integrity

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// chainTestBundles returns v2 bundles over tt: epoch 0 is cpKeyA (genesis),
// a rotation at tree size 4 (signed by A) names cpKeyB for epoch 1, and the
// bundles' latest checkpoint (tree size 13) is signed by B in epoch 1; the
// consistency bundle's first checkpoint (size 3) is of epoch 0.
func chainTestBundles(t testing.TB, tt *testTree) (*InclusionBundle, *ConsistencyBundle) {
	t.Helper()
	a, b := cpSigner(t, cpSKeyA), cpSigner(t, cpSKeyB)
	stmt, err := SignRotation(Rotation{Origin: a.Name(), Epoch: 1, Size: 4, Root: tt.roots[4], NextKey: cpVKeyB}, a)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := ConsistencyProof(tt.nodes, 4, 13)
	if err != nil {
		t.Fatal(err)
	}
	rots := []RotationProof{{Statement: string(stmt), Consistency: cons}}
	when := time.Unix(1_800_000_000, 0).UTC()
	cp13, err := SignCheckpoint(Checkpoint{Origin: a.Name(), Size: 13, Root: tt.roots[13], Time: when, Epoch: 1}, b)
	if err != nil {
		t.Fatal(err)
	}
	cp3, err := SignCheckpoint(Checkpoint{Origin: a.Name(), Size: 3, Root: tt.roots[3], Time: when}, a)
	if err != nil {
		t.Fatal(err)
	}
	p, err := InclusionProof(tt.nodes, 5, 13)
	if err != nil {
		t.Fatal(err)
	}
	inc := NewInclusionBundle(tt.recs[5], 13, p, string(cp13))
	inc.SetRotations(rots)
	cp, err := ConsistencyProof(tt.nodes, 3, 13)
	if err != nil {
		t.Fatal(err)
	}
	con := NewConsistencyBundle(3, 13, cp, string(cp3), string(cp13))
	con.SetRotations(rots)
	return inc, con
}

func TestBundleRotationChain(t *testing.T) {
	tt := newTestTree(16)
	inc, con := chainTestBundles(t, tt)
	genesis := cpVerifiers(t, cpVKeyA)
	for _, b := range []interface{ Marshal() ([]byte, error) }{inc, con} {
		data, err := b.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "/v2") {
			t.Fatalf("a bundle with rotations must be v2:\n%s", data)
		}
	}
	if _, err := inc.Verify(genesis); err != nil {
		t.Fatalf("v2 inclusion bundle with the genesis key: %v", err)
	}
	if _, _, err := con.Verify(genesis); err != nil {
		t.Fatalf("v2 consistency bundle with the genesis key: %v", err)
	}
	// The epoch 1 key alone is not a genesis key: the rotation it would
	// need to verify is signed by A.
	if _, err := inc.Verify(cpVerifiers(t, cpVKeyB)); err == nil {
		t.Fatal("the bundle verified with the epoch 1 key as genesis")
	}
	// Without the rotation, the epoch 1 checkpoint cannot be judged.
	no := *inc
	no.SetRotations(nil)
	if _, err := no.Verify(genesis); err == nil {
		t.Fatal("an epoch 1 checkpoint verified without the rotation statement")
	}
	// The statement's tree must be a prefix of the checkpoint's.
	bad := *inc
	bad.Rotations = []RotationProof{{Statement: inc.Rotations[0].Statement, Consistency: append([]Hash(nil), inc.Rotations[0].Consistency...)}}
	bad.Rotations[0].Consistency[0][3] ^= 1
	if _, err := bad.Verify(genesis); !errors.Is(err, ErrProof) {
		t.Fatalf("a rotation inconsistent with the checkpoint: %v", err)
	}
	// A rotation beyond the checkpoint's tree is refused: the checkpoint
	// of the new epoch must cover the statement.
	a := cpSigner(t, cpSKeyA)
	late, _ := SignRotation(Rotation{Origin: a.Name(), Epoch: 1, Size: 13, Root: tt.roots[13], NextKey: cpVKeyB}, a)
	lateB := *inc
	lateB.Rotations = []RotationProof{{Statement: string(late)}}
	if _, err := lateB.Verify(genesis); err == nil {
		t.Fatal("a rotation at the checkpoint's own size verified")
	}
	// A consistency bundle whose first checkpoint claims epoch 0 after the
	// rotation (size 5 > 4) is refused.
	cp5, _ := SignCheckpoint(Checkpoint{Origin: a.Name(), Size: 5, Root: tt.roots[5]}, a)
	p, _ := ConsistencyProof(tt.nodes, 5, 13)
	c2 := NewConsistencyBundle(5, 13, p, string(cp5), con.Checkpoint2)
	c2.SetRotations(con.Rotations)
	if _, _, err := c2.Verify(genesis); err == nil {
		t.Fatal("an epoch 0 checkpoint after the rotation to epoch 1 verified")
	}
	// v1 bundles still verify with the genesis key.
	v1 := testInclusionBundle(t, tt, 2, 3)
	cp3, _ := SignCheckpoint(Checkpoint{Origin: a.Name(), Size: 3, Root: tt.roots[3]}, a)
	v1.Checkpoint = string(cp3)
	if _, err := v1.Verify(genesis); err != nil || v1.Format != InclusionFormat {
		t.Fatalf("v1 bundle: %v", err)
	}
}

func TestBundleFormatsAndRotations(t *testing.T) {
	tt := newTestTree(16)
	inc, _ := chainTestBundles(t, tt)
	data, _ := inc.Marshal()
	for name, edit := range map[string]string{
		"v1 with rotations": strings.Replace(string(data), InclusionFormatV2, InclusionFormat, 1),
	} {
		if _, err := ParseInclusionBundle([]byte(edit)); !errors.Is(err, ErrProof) {
			t.Errorf("%s: %v", name, err)
		}
	}
	v1 := testInclusionBundle(t, tt, 2, 3)
	d1, _ := v1.Marshal()
	if _, err := ParseInclusionBundle([]byte(strings.Replace(string(d1), InclusionFormat, InclusionFormatV2, 1))); !errors.Is(err, ErrProof) {
		t.Errorf("v2 without rotations: %v", err)
	}
}

func TestGenesisVerifiersRefuseSameName(t *testing.T) {
	if _, err := NewGenesisVerifiers(cpVKeyA, cpVKeyB); !errors.Is(err, ErrSameNameKeys) {
		t.Fatalf("two keys of one name: %v", err)
	}
	if _, err := NewGenesisVerifiers(cpVKeyA, cpVKeyO, " "+cpVKeyA); err != nil {
		t.Fatalf("keys of different names (and a repeat): %v", err)
	}
}
