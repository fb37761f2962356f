//go:build race

package wal

// Under the race detector every operation is many times slower; the full
// 10,000 iterations run in the non-race pass of `make test`.
const defaultPowerLossIterations = 1000
