//go:build !race

package raftgroup

// raceEnabled is true in a build with the race detector.
const raceEnabled = false
