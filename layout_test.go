package audit_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/ledger"
	"github.com/willibrandon/mtlog-audit/replica"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
	"github.com/willibrandon/mtlog/core"
)

// TestOpenAdoptsOwnedFiles: a directory that holds no segments but only a
// file that a layer above the WAL keeps beside them is the log's directory,
// whichever layer's file it is; the bare WAL, which knows no other layer's
// names, refuses every one of them alike.
func TestOpenAdoptsOwnedFiles(t *testing.T) {
	for _, name := range []string{"checkpoints", "tree.nodes", "epoch.key", "epoch.key.next", "epoch.tagkey.prev", "audit.repair.tmp"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := audit.New(audit.WithWAL(dir))
			if err != nil {
				t.Fatalf("audit.New on a directory holding only %s: %v", name, err)
			}
			s.Close()

			bare := t.TempDir()
			if err := os.WriteFile(filepath.Join(bare, name), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if w, err := wal.Open(vfs.OS(), bare, wal.Options{}); !errors.Is(err, wal.ErrNotWAL) {
				if err == nil {
					w.Close()
				}
				t.Fatalf("bare wal.Open on a directory holding only %s: %v, want ErrNotWAL (the WAL adopts no other layer's files by itself)", name, err)
			}
		})
	}
}

// owners are the packages that keep files in a log directory, each with its
// own names.
var owners = []struct {
	pkg  string
	owns func(string) bool
}{
	{"wal", wal.Owns},
	{"integrity", integrity.Owns},
	{"internal/ledger", ledger.Owns},
	{"replica", replica.Owns},
}

// TestEveryFileHasOneOwner runs a sink with every feature that writes files
// (signing, forward security with rotations, a mirror, segment rotation,
// checkpoints), closes it, damages the mirror and reopens it (a repair),
// and checks that every file name it ever created, temporaries included,
// is owned by exactly one package, and that the WAL is told about every
// one of them (replica.ManagedName, which the sink passes as
// wal.Options.Owned).
func TestEveryFileHasOneOwner(t *testing.T) {
	sk, _, err := integrity.GenerateKey("audit.example/layout")
	if err != nil {
		t.Fatal(err)
	}
	fsys := vfs.NewCrashFS()
	var mu sync.Mutex
	seen := map[string]bool{}
	note := func(p string) {
		if d := filepath.Dir(p); d == "/p" || d == "/m" {
			seen[filepath.Base(p)] = true
		}
	}
	fsys.SetHook(func(op vfs.Op) {
		mu.Lock()
		defer mu.Unlock()
		note(op.Name)
		if op.NewName != "" {
			note(op.NewName)
		}
	})
	open := func() *audit.Sink {
		s, err := audit.New(audit.WithWAL("/p", audit.WithSegmentSize(8192)), audit.WithRedundancy("/m"), audit.WithFileSystem(fsys),
			audit.WithSigningKey(sk), audit.WithCheckpoints(2, time.Millisecond, time.Hour), audit.WithForwardSecurity(time.Nanosecond),
			audit.WithFailureHandler(func(*core.LogEvent, error) {}))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	rotated := func() bool { // a rotation's retiring tag key was written
		mu.Lock()
		defer mu.Unlock()
		return slices.ContainsFunc(slices.Collect(maps.Keys(seen)), ledger.Owns)
	}
	for i := 0; i < 60 || !rotated() && i < 5000; i++ {
		if _, err := s.Write(context.Background(), &audit.Event{Timestamp: time.Now(), MessageTemplate: "event {N}", Properties: map[string]any{"N": strings.Repeat("x", 300)}}); err != nil {
			t.Fatal(err)
		}
	}
	list := func() {
		for _, d := range []string{"/p", "/m"} {
			names, err := fsys.List(d)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			for _, n := range names {
				seen[n] = true
			}
			mu.Unlock()
		}
	}
	list() // the lock files, which the hook does not report
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Remove(filepath.Join("/m", wal.SegmentName(1))); err != nil {
		t.Fatal(err)
	}
	s = open() // repairs the mirror's first segment
	list()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	names := slices.Sorted(maps.Keys(seen))
	used := map[string]bool{}
	for _, name := range names {
		var by []string
		for _, o := range owners {
			if o.owns(name) {
				by = append(by, o.pkg)
			}
		}
		if len(by) != 1 {
			t.Errorf("%s is owned by %v, want exactly one package", name, by)
			continue
		}
		used[by[0]] = true
		if !wal.Owns(name) && !replica.ManagedName(name) {
			t.Errorf("%s (of %s) is not a file of the log for the WAL and the mirrors (replica.ManagedName)", name, by[0])
		}
	}
	for _, o := range owners {
		if !used[o.pkg] {
			t.Errorf("no file of %s was created; the test no longer exercises every owner (files: %v)", o.pkg, names)
		}
	}
	t.Logf("files: %v", names)
}

// A repair writes a copy of every file that holds key material owner-only,
// the ledger's retiring tag key included (integrity.Private, ledger.Private):
// a copy that others may read would leak the key, and the ledger refuses it
// on open (ErrKeyFileMode).
func TestRepairKeepsKeyFilesPrivate(t *testing.T) {
	sk, vk, err := integrity.GenerateKey("audit.example/private")
	if err != nil {
		t.Fatal(err)
	}
	const prev = "epoch.tagkey.prev"
	fsys := vfs.NewCrashFS()
	var caught atomic.Pointer[vfs.CrashFS]
	fsys.SetHook(func(vfs.Op) {
		_, perr := fsys.Stat(filepath.Join("/p", prev))
		_, merr := fsys.Stat(filepath.Join("/m", prev))
		if perr == nil && merr == nil {
			if caught.Load() == nil {
				caught.Store(fsys.CrashClone(vfs.CrashOptions{KeepSectorProb: 1, KeepDirOpProb: 1}))
			}
		}
	})
	s, err := audit.New(audit.WithWAL("/p"), audit.WithRedundancy("/m"), audit.WithFileSystem(fsys), audit.WithSigningKey(sk),
		audit.WithCheckpoints(2, time.Millisecond, time.Hour), audit.WithForwardSecurity(time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5000 && caught.Load() == nil; i++ { // until a rotation is caught in the act
		if _, err := s.Write(context.Background(), &audit.Event{Timestamp: time.Now(), MessageTemplate: "e"}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	clone := caught.Load()
	if clone == nil {
		t.Fatalf("no rotation left %s in both copies", prev)
	}
	names, err := clone.List("/p") // lost: the repair takes every file from the mirror
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if err := clone.Remove(filepath.Join("/p", name)); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := audit.RepairFromMirror(context.Background(), clone, "/p", "/m", audit.WithTrustedKeys(vk))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", rep)
	for _, name := range []string{prev, integrity.EpochKeyFile} {
		fi, err := clone.Stat(filepath.Join("/p", name))
		if err != nil {
			t.Fatalf("the repair did not restore %s: %v", name, err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("the repair wrote %s with mode %04o; a key file must be owner-only", name, perm)
		}
	}
}
