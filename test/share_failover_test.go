package test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// shareClient drives ShareFetch and ShareAcknowledge by hand for one
// share-group member, against whichever node leads partition 0 of a
// topic, keeping the member's share session epoch per node.
type shareClient struct {
	t       *testing.T
	cl      *kgo.Client
	group   string
	member  string
	topicID [16]byte
	epochs  map[int32]int32
}

func newShareClient(t *testing.T, cl *kgo.Client, group, member string, topicID [16]byte) *shareClient {
	return &shareClient{t: t, cl: cl, group: group, member: member, topicID: topicID, epochs: make(map[int32]int32)}
}

// fetch sends one ShareFetch to node with acks (first, last, type) and
// returns the acquired runs, the partition's error and its ack error.
func (c *shareClient) fetch(ctx context.Context, node int32, maxWait time.Duration, acks ...kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch) (ranges []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord, err, ackErr error) {
	req := kmsg.NewPtrShareFetchRequest()
	req.GroupID, req.MemberID = &c.group, &c.member
	req.ShareSessionEpoch = c.epochs[node]
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.MaxRecords = int32(maxWait.Milliseconds()), 1, 1<<20, 500
	rt := kmsg.NewShareFetchRequestTopic()
	rt.TopicID = c.topicID
	rp := kmsg.NewShareFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rp.AcknowledgementBatches = acks
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, c.cl.Broker(int(node)))
	if err != nil {
		return nil, err, nil
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		c.epochs[node] = 0
		return nil, err, nil
	}
	c.epochs[node]++
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			ranges = append(ranges, p.AcquiredRecords...)
			if e := kerr.ErrorForCode(p.ErrorCode); e != nil {
				err = e
			}
			if e := kerr.ErrorForCode(p.AcknowledgeErrorCode); e != nil {
				ackErr = e
			}
		}
	}
	return ranges, err, ackErr
}

// acquire fetches from node until records are acquired, retrying the
// errors of a leader or share coordinator change.
func (c *shareClient) acquire(node int32) []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord {
	c.t.Helper()
	var got []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord
	eventually(c.t, fmt.Sprintf("%s acquires records on node %d", c.member, node), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ranges, err, _ := c.fetch(ctx, node, 500*time.Millisecond)
		if err != nil {
			c.t.Logf("%s share fetch on node %d: %v", c.member, node, err)
		}
		got = ranges
		return err == nil && len(ranges) > 0
	})
	return got
}

func ackBatch(first, last int64, typ int8) kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch {
	return kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch{FirstOffset: first, LastOffset: last, AcknowledgeTypes: []int8{typ}}
}

// TestShareGroupLeaderFailover acquires and acknowledges records of a
// share group on a partition's leader, kills that node, and checks that
// the next leader serves the stored state: accepted records are never
// delivered again, a released record comes back with its stored delivery
// count, and acquired-but-unacknowledged ones come back available.
func TestShareGroupLeaderFailover(t *testing.T) {
	procs, _ := startMetadataCluster(t, 3)
	const topic, group = "share-failover", "share-failover-group"
	createReplicatedTopic(t, procs, topic)
	waitInSync(t, procs, topic)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrsOf(procs...)...), kgo.MetadataMinAge(100*time.Millisecond), kgo.RetryTimeout(testTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var topicID [16]byte
	for _, mt := range metadataOf(t, procs[0].Addr).Topics {
		if mt.Topic != nil && *mt.Topic == topic {
			topicID = mt.TopicID
		}
	}
	leader, _, _ := partitionState(t, procs[0].Addr, topic)
	m1 := newShareClient(t, cl, group, "member-one", topicID)
	// The first fetch initializes the share-partition at the high
	// watermark (share.auto.offset.reset=latest): nothing yet.
	eventually(t, "share-partition initialized", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err, _ := m1.fetch(ctx, leader, 0)
		return err == nil
	})
	producer := newProducer(t, addrsOf(procs...), topic)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for i := 0; i < 6; i++ {
		if err := producer.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	got := m1.acquire(leader)
	if len(got) != 1 || got[0].FirstOffset != 0 || got[0].LastOffset != 5 || got[0].DeliveryCount != 1 {
		t.Fatalf("acquired %+v, want 0-5 delivered once", got)
	}
	// Accept 0-1, release 2; 3-5 stay acquired.
	_, fetchErr, ackErr := m1.fetch(ctx, leader, 0, ackBatch(0, 1, 1), ackBatch(2, 2, 2))
	if fetchErr != nil || ackErr != nil {
		t.Fatalf("acknowledge: fetch %v, ack %v", fetchErr, ackErr)
	}
	procs[leader-1].Kill()
	var next int32
	eventually(t, "a new leader of "+topic, func() bool {
		for _, p := range procs {
			if p.running() {
				if l, _, _ := partitionState(t, p.Addr, topic); l > 0 && l != leader {
					next = l
					return true
				}
			}
		}
		return false
	})
	m2 := newShareClient(t, cl, group, "member-two", topicID)
	got = m2.acquire(next)
	want := []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord{
		{FirstOffset: 2, LastOffset: 2, DeliveryCount: 2},
		{FirstOffset: 3, LastOffset: 5, DeliveryCount: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("after failover acquired %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].FirstOffset != want[i].FirstOffset || got[i].LastOffset != want[i].LastOffset || got[i].DeliveryCount != want[i].DeliveryCount {
			t.Fatalf("after failover acquired %+v, want %+v", got, want)
		}
	}
}
