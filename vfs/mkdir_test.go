package vfs

import "testing"

func TestMkdirAllDurableSurvivesPowerLoss(t *testing.T) {
	c := NewCrashFS()
	must(t, c.MkdirAll("/a", 0o750))
	must(t, c.SyncDir("/"))
	must(t, MkdirAllDurable(c, "/a/b/c", 0o750))
	crashed := c.CrashClone(CrashOptions{KeepDirOpProb: 0})
	for _, d := range []string{"/a/b", "/a/b/c"} {
		if fi, err := crashed.Stat(d); err != nil || !fi.IsDir() {
			t.Errorf("%s not durable after MkdirAllDurable: %v", d, err)
		}
	}
}
