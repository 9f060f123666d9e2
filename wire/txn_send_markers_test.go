package wire

import (
	"context"
	"testing"

	"github.com/sluice-io/sluice/consumergroup/txn"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication"
)

// TestWriteTxnMarkersGoneCountAsWritten checks that a partition whose
// topic no longer exists, or beyond its partition count, counts as
// written (nothing is left there to end), so the coordinator does not
// retry it for ever.
func TestWriteTxnMarkersGoneCountAsWritten(t *testing.T) {
	ts := startTestServer(t, Options{Groups: &fakeGroups{}, Transactions: &fakeTxns{}})
	if _, err := ts.cluster.CreateTopic(context.Background(), replication.CreateTopicRequest{Name: "t", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	m := partition.TxnMarker{ProducerID: 7, ProducerEpoch: 0, Commit: true}
	failed := ts.WriteTxnMarkers(context.Background(), m, []txn.TopicPartition{{Topic: "deleted", Partition: 0}, {Topic: "t", Partition: 3}, {Topic: "t", Partition: -1}})
	if failed != nil {
		t.Errorf("failed %v, want none", failed)
	}
}
