package replication

import (
	"context"
	"errors"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
)

// TestReadFailureFailsReplica: a read of a partition's files that fails
// (a fetch) is a storage error; the replica leaves its group at once, is
// listed by FailedReplicas, and answers appends KAFKA_STORAGE_ERROR. The
// node's other partitions go on.
func TestReadFailureFailsReplica(t *testing.T) {
	ctx := context.Background()
	faults := log.NewFaultFS(nil)
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	c, err := Open(cfg, Options{FS: faults})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(ctx) })
	for _, name := range []string{"bad", "good"} {
		if _, err := c.CreateTopic(ctx, CreateTopicRequest{Name: name, Partitions: 1, ReplicationFactor: 1}); err != nil {
			t.Fatal(err)
		}
	}
	bad, _ := c.Topic("bad")
	good, _ := c.Topic("good")
	appendOK(t, bad.Partition(0), 0)

	faults.Inject(log.Fault{Ops: log.FaultRead, PathContains: "/topics/bad-0/", Err: syscall.EIO})
	_, err = bad.Partition(0).Read(nil, partition.ReadRequest{Offset: 0, MaxBytes: 1 << 20})
	if !errors.Is(err, syscall.EIO) || !log.IsStorageError(err) {
		t.Fatalf("read of a failing disk: %v, want an EIO storage error", err)
	}
	failed := c.FailedReplicas()
	if len(failed) != 1 || failed[0].Topic != "bad" || failed[0].Partition != 0 || !errors.Is(failed[0].Err, syscall.EIO) {
		t.Fatalf("FailedReplicas() = %+v, want bad-0 with EIO", failed)
	}
	if _, err := bad.Partition(0).Append(ctx, keyedBatch("k", "v", 1)); !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("append to a failed replica: %v, want KAFKA_STORAGE_ERROR", err)
	}
	if node, _ := bad.Partition(0).Leader(); node == cfg.NodeID {
		t.Fatalf("the failed replica still reports itself leader")
	}
	appendOK(t, good.Partition(0), 0)
}
