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
)
