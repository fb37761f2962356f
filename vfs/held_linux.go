package vfs

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// procLocksHeld reports whether /proc/locks lists a flock(2) lock on the
// file fi describes. Each line names the locked file as
// MAJOR:MINOR:INODE, the device numbers in hexadecimal.
func procLocksHeld(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	dev := uint64(st.Dev)
	major := (dev>>8)&0xfff | (dev>>32)&^0xfff
	minor := dev&0xff | (dev>>12)&^0xff
	want := []byte(fmt.Sprintf("%02x:%02x:%d", major, minor, st.Ino))
	data, err := os.ReadFile("/proc/locks")
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		// "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; a lock
		// that waits for another is marked "->" and is not held.
		if len(f) >= 6 && string(f[1]) == "FLOCK" && bytes.Equal(f[5], want) {
			return true
		}
	}
	return false
}
