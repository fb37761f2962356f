package adaptertest

import "testing"

// BenchmarkAA runs the overhead benchmark with the direct writer on both
// sides: its spread around 1 is the benchmark's noise floor on this disk.
func BenchmarkAA(b *testing.B) { Overhead(b, DirectWrite, DirectWrite) }
