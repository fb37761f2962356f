package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
)

// ReplaceFile stores data as the file name, atomically and durably: it
// writes tmp (a leftover of an earlier crash is removed first), syncs it,
// renames it over name and syncs name's directory. After it returns nil a
// crash leaves data at name; before, name holds what it held (or nothing).
// With private, tmp is made readable by its owner only (CreatePrivate),
// as a key file must be from its first byte. On error tmp is removed.
func ReplaceFile(fsys FS, name, tmp string, data []byte, private bool) (err error) {
	if err := fsys.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove leftover %s: %w", tmp, err)
	}
	var f File
	if private {
		f, err = CreatePrivate(fsys, tmp)
	} else {
		f, err = fsys.Create(tmp)
	}
	if err != nil {
		return err
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			_ = fsys.Remove(tmp)
		}
	}()
	if _, err := f.WriteAt(data, 0); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	err, f = f.Close(), nil
	if err != nil {
		return err
	}
	if err := fsys.Rename(tmp, name); err != nil {
		return err
	}
	if err := fsys.SyncDir(filepath.Dir(name)); err != nil {
		return fmt.Errorf("sync directory %s: %w", filepath.Dir(name), err)
	}
	return nil
}
