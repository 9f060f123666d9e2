package sharestate

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/consumergroup"
)

// FindCoordinator answers FindCoordinator for key type 2 (share, v6+):
// each key is "group:topicId:partition" (CoordinatorKey) and its
// coordinator the leader of its __share_group_state partition, with
// COORDINATOR_NOT_AVAILABLE while that is unknown or a broker held down,
// and INVALID_REQUEST for a key that does not parse. Only brokers send it
// (Kafka's share-partition leaders); Sluice's own nodes use Router, which
// looks the coordinator up in the cluster view.
func (c *Coordinator) FindCoordinator(ctx context.Context, req *kmsg.FindCoordinatorRequest) *kmsg.FindCoordinatorResponse {
	return consumergroup.AnswerFindCoordinator(req, TopicName, c.cluster.Brokers(), func(text string) (int32, int32, error) {
		k, err := ParseCoordinatorKey(text)
		if err != nil {
			return 0, -1, err
		}
		return c.partitionFor(k), c.Leader(k), nil
	})
}

// ParseCoordinatorKey parses Kafka's share coordinator key text,
// "group:topicId:partition" (CoordinatorKey's form). The group may hold
// colons: the last two fields are the topic id and the partition.
func ParseCoordinatorKey(text string) (Key, error) {
	rest, partition, ok1 := cutLast(text)
	group, topic, ok2 := cutLast(rest)
	if !ok1 || !ok2 {
		return Key{}, fmt.Errorf("share coordinator key %q is not group:topicId:partition", text)
	}
	p, err := strconv.ParseInt(partition, 10, 32)
	if err != nil || p < 0 {
		return Key{}, fmt.Errorf("share coordinator key %q: partition %q is not a partition number", text, partition)
	}
	id, err := base64.RawURLEncoding.DecodeString(topic)
	if err != nil || len(id) != 16 {
		return Key{}, fmt.Errorf("share coordinator key %q: %q is not a topic id", text, topic)
	}
	k := Key{Group: group, Partition: int32(p)}
	copy(k.TopicID[:], id)
	if err := checkKey(k); err != nil {
		return Key{}, fmt.Errorf("share coordinator key %q: %w", text, err)
	}
	return k, nil
}

// cutLast splits s around its last colon.
func cutLast(s string) (before, after string, found bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}
