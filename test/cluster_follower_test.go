package test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestClusterFollowerCatchesUp: three nodes as processes, one partition
// replicated on all three, an idempotent acks=all producer writing without
// pause; kill -9 of a follower of the partition, more writes, restart. No
// produce fails, the restarted follower is reported in sync again, and
// its segments end byte-identical to the leader's (every batch with the
// same offsets, epochs and bytes), holding every acknowledged record once.
func TestClusterFollowerCatchesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	// Small segments, so that the catch-up crosses segment rolls.
	procs, _ := startMetadataCluster(t, 3, "--log-segment-bytes", "8192")
	const topic = "catchup"
	createReplicatedTopic(t, procs, topic)
	seeds := addrsOf(procs...)
	leader, _, _ := partitionState(t, procs[0].Addr, topic)
	follower := procs[leader%3]

	l := startLoad(t, newProducer(t, seeds, topic), "r", 32)
	l.waitAcked(200)
	follower.Kill()
	down, _ := l.counts()
	l.waitAcked(down + 600)
	behind := len(segmentBytes(t, follower.DataDir, topic))
	follower.Restart()
	up, _ := l.counts()
	l.waitAcked(up + 300)
	waitInSync(t, procs, topic)
	acked, failed := l.stop()
	for v, err := range failed {
		t.Fatalf("record %s failed (retries were on): %v", v, err)
	}
	t.Logf("follower down from %d to %d acknowledgements, %d in all", down, up, len(acked))

	segments, _ := filepath.Glob(filepath.Join(procs[leader-1].DataDir, "topics", topic+"-0", "*.log"))
	t.Logf("the follower held %d bytes when restarted; the leader has %d segments", behind, len(segments))
	waitIdenticalLogs(t, procs, topic, behind+1)
	n := checkHistory(t, seeds, topic, acked)

	// Only the leader answers ListOffsets: a follower's answer of offset
	// 0 sent a consumer resetting to latest back to the start, and a
	// client reading up to the end offset read nothing.
	for i, p := range procs {
		conn := dialRaw(t, p.Addr)
		offset, err := listLatestErr(conn, topic, 0)
		switch {
		case int32(i+1) == leader && (err != nil || offset != int64(n)):
			t.Fatalf("leader node %d answers ListOffsets latest %d, error %v; want %d", i+1, offset, err, n)
		case int32(i+1) != leader && !errors.Is(err, kerr.NotLeaderForPartition):
			t.Fatalf("follower node %d answers ListOffsets latest %d, error %v; want NOT_LEADER_OR_FOLLOWER", i+1, offset, err)
		}
	}
}
