//go:build !race

package export

// memoryTestEvents is how many events the bounded-memory test exports.
const memoryTestEvents = 200_000

const raceEnabled = false
