//go:build race

package export

// Under the race detector every operation is many times slower: the
// bounded-memory test writes fewer, larger events (the output still exceeds
// twice the bound).
const memoryTestEvents = 50_000

const raceEnabled = true
