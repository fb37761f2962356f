package vfs_test

import (
	"fmt"
	"log"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// A power loss keeps what was synced and, of the rest, what CrashOptions
// lets survive. Here nothing unsynced survives: the synced file keeps its
// bytes, and the file whose data and directory entry were never synced is
// gone.
func ExampleCrashFS_CrashClone() {
	fsys := vfs.NewCrashFS()
	write := func(name, data string, sync bool) {
		f, err := fsys.Create(name)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt([]byte(data), 0); err != nil {
			log.Fatal(err)
		}
		if sync {
			if err := f.Sync(); err != nil {
				log.Fatal(err)
			}
			if err := fsys.SyncDir("."); err != nil {
				log.Fatal(err)
			}
		}
	}
	write("synced", "kept", true)
	write("unsynced", "lost", false)

	after := fsys.CrashClone(vfs.CrashOptions{Seed: 1, KeepSectorProb: 0, KeepDirOpProb: 0})
	names, err := after.List(".")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(names)
	// Output: [synced]
}

// A test crashes the filesystem before each operation in turn (SetHook)
// and checks what survives: a file written durably (write, fsync, then
// fsync of its directory) exists after a power loss only once every step
// has completed.
func ExampleNewCrashFS() {
	fsys := vfs.NewCrashFS()
	nothingUnsynced := vfs.CrashOptions{KeepSectorProb: 0, KeepDirOpProb: 0}
	survives := func(c *vfs.CrashFS) bool {
		names, err := c.List(".")
		return err == nil && len(names) == 1
	}
	fsys.SetHook(func(op vfs.Op) {
		fmt.Printf("crash before %s: file survives %v\n", op.Kind, survives(fsys.CrashClone(nothingUnsynced)))
	})

	f, err := fsys.Create("event")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("payload"), 0); err != nil {
		log.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		log.Fatal(err)
	}
	if err := fsys.SyncDir("."); err != nil {
		log.Fatal(err)
	}
	f.Close()
	fsys.SetHook(nil)
	fmt.Println("crash after all: file survives", survives(fsys.CrashClone(nothingUnsynced)))
	// Output:
	// crash before create: file survives false
	// crash before write: file survives false
	// crash before sync: file survives false
	// crash before syncdir: file survives false
	// crash after all: file survives true
}
