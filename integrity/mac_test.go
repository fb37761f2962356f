package integrity

import "testing"

func TestTagKey(t *testing.T) {
	sk1, _, _ := GenerateKey("tag.example/a")
	sk2, _, _ := GenerateKey("tag.example/a")
	s1, _ := NewSigner(sk1)
	s1b, _ := NewSigner(sk1)
	s2, _ := NewSigner(sk2)
	k1, err := NewTagKey(s1)
	if err != nil {
		t.Fatal(err)
	}
	k1b, _ := NewTagKey(s1b)
	k2, _ := NewTagKey(s2)
	leaf := LeafHash(Record{Index: 3, Time: 7, Type: 1})
	other := LeafHash(Record{Index: 4, Time: 7, Type: 1})
	tag := k1.Tag(leaf)
	switch {
	case tag != k1b.Tag(leaf):
		t.Fatal("the same signing key must give the same tag key")
	case !k1.Check(leaf, tag) || !k1.Clone().Check(leaf, tag) || !TagKeyFromBytes(k1.Bytes()).Check(leaf, tag):
		t.Fatal("a tag must check under its key, a clone and a copy")
	case k2.Check(leaf, tag):
		t.Fatal("another key with the same name must not accept the tag")
	case k1.Check(other, tag):
		t.Fatal("a tag must not move to another leaf")
	}
	if _, err := NewTagKey(nil); err == nil {
		t.Fatal("no signer must be an error")
	}
	k1.Wipe()
	if k1.Check(leaf, tag) {
		t.Fatal("a wiped key must not check tags")
	}
}
