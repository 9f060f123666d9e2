package consumergroup

import (
	"math"
	"unicode/utf16"
)

// javaStringHashCode is Java's String.hashCode: s[0]*31^(n-1) + ... +
// s[n-1] over the UTF-16 code units of s, in int32 arithmetic that
// wraps. Kafka places a group with it, so Sluice must too for clients
// and tools that compute the partition themselves.
func javaStringHashCode(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			hi, lo := utf16.EncodeRune(r)
			h = 31*h + hi
			h = 31*h + lo
			continue
		}
		h = 31*h + r
	}
	return h
}

// partitionFor is Kafka's Utils.abs(group.hashCode()) % partitions, where
// Utils.abs maps math.MinInt32 to 0 (Math.abs would leave it negative).
func partitionFor(group string, partitions int32) int32 {
	h := javaStringHashCode(group)
	if h == math.MinInt32 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % partitions
}
