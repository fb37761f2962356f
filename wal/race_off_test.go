//go:build !race

package wal

const defaultPowerLossIterations = 10000
