package vfs

// ReadFile reads the whole named file of fsys, as os.ReadFile does: its
// size when opened, from offset 0. A file that shrinks while it is read
// gives the error of the short read.
func ReadFile(fsys FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	if n, err := f.ReadAt(buf, 0); n != len(buf) {
		return nil, err
	}
	return buf, nil
}
