package consumergroup

import "sort"

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sortPartitions orders partitions of one topic by number.
func sortPartitions(tps []topicPartition) {
	sort.Slice(tps, func(i, j int) bool { return tps[i].partition < tps[j].partition })
}

// sortTopicPartitions orders by topic, then partition.
func sortTopicPartitions(tps []topicPartition) {
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].topic != tps[j].topic {
			return tps[i].topic < tps[j].topic
		}
		return tps[i].partition < tps[j].partition
	})
}
