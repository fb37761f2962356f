package ledger

// prevTagTemp is prevTagFile while it is written, before its rename.
const prevTagTemp = prevTagFile + ".tmp"

// Owns reports whether a file name in a log directory is the ledger's own
// (the retiring batch tag key kept during a key rotation, and its
// temporary). The integrity layer's files, which the ledger opens, are
// integrity's (integrity.Owns).
func Owns(name string) bool { return name == prevTagFile || name == prevTagTemp }

// Private reports whether a file of the ledger holds key material and so
// must be readable by its owner only: all of them do.
func Private(name string) bool { return Owns(name) }
