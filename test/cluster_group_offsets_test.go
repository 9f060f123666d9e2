package test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterGroupOffsetsAcrossRollingRestart: three nodes as processes;
// each node in turn gets SIGTERM and is started again. A consumer group's
// offset committed (kadm, through whichever node FindCoordinator names)
// before each stop is the one fetched after the node is back: the group
// coordinator moves with the leadership of the group's __consumer_offsets
// partition and loses no acknowledged commit.
func TestClusterGroupOffsetsAcrossRollingRestart(t *testing.T) {
	procs, _ := startMetadataCluster(t, 3)
	const topic, group = "offsets-rolling", "rolling-group"
	createReplicatedTopic(t, procs, topic)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrsOf(procs...)...), kgo.MetadataMinAge(100*time.Millisecond), kgo.RetryTimeout(testTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	commit := func(at int64) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		var offsets kadm.Offsets
		offsets.Add(kadm.Offset{Topic: topic, Partition: 0, At: at, LeaderEpoch: -1})
		resp, err := adm.CommitOffsets(ctx, group, offsets)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatalf("commit offset %d for %s: %v", at, group, err)
		}
	}
	checkCommitted := func(want int64) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		var fetched kadm.OffsetResponses
		var err error
		// A connection to the node just restarted may still be the old
		// one (kgo reports its EOF instead of retrying), and until the
		// other nodes hear from the restarted one again they answer
		// COORDINATOR_NOT_AVAILABLE for the groups it leads: a client
		// retries both.
		for ctx.Err() == nil {
			fetched, err = adm.FetchOffsets(ctx, group)
			if err == nil {
				err = fetched.Error()
			}
			if !errors.Is(err, io.EOF) && !kerr.IsRetriable(err) {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
		if err != nil {
			t.Fatalf("fetch the offsets of %s: %v", group, err)
		}
		if o, ok := fetched.Lookup(topic, 0); !ok || o.At != want {
			t.Fatalf("committed offset of %s: %+v (found %v), want %d", group, o, ok, want)
		}
	}
	for i, p := range procs {
		committed := int64(100 * (i + 1))
		commit(committed)
		if err := p.Terminate(); err != nil {
			t.Fatalf("node %d exited after SIGTERM with %v", i+1, err)
		}
		p.Restart()
		waitInSync(t, procs, topic)
		checkCommitted(committed)
	}
}
