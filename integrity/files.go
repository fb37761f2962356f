package integrity

// Files the integrity layer keeps in a log directory, beside the segments.
// Every package that opens them (the writer, verification, proofs, repair)
// takes the names from here.
const (
	// NodesFile holds every node of the Merkle tree (see NodeStore).
	NodesFile = "tree.nodes"
	// CheckpointsFile is the append-only log of signed checkpoints (see
	// CheckpointLog).
	CheckpointsFile = "checkpoints"
	// EpochKeyFile holds the private key of the current forward-security
	// epoch (see EpochKeys), which keeps its other files (the prepared
	// next epoch and temporaries) beside it.
	EpochKeyFile = "epoch.key"
)

// Owns reports whether a file name in a log directory is one of the
// integrity layer's: the tree nodes, the checkpoint log, and the epoch key
// files with their temporaries. The layers that open the WAL pass it on to
// the WAL (wal.Options.Owned), and copies of the log (package replica)
// copy these files with the segments.
func Owns(name string) bool {
	switch name {
	case NodesFile, CheckpointsFile, RetentionFile, retentionTemp, epochKeyFile, epochNextFile, epochKeyTemp, epochNextTemp:
		return true
	}
	return false
}

// Private reports whether a file of the integrity layer holds a private
// key and so must be readable by its owner only (see vfs.CreatePrivate):
// whoever writes a copy of it creates it that way.
func Private(name string) bool {
	switch name {
	case epochKeyFile, epochNextFile, epochKeyTemp, epochNextTemp:
		return true
	}
	return false
}
