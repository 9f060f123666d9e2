package test

import (
	"testing"
)

// TestClusterRollingRestart: three nodes as processes, one partition
// replicated on all three, an idempotent acks=all producer with retries
// writing without pause; each node in turn gets SIGTERM, exits cleanly,
// is started again and is back in sync before the next. No produce fails
// (a node shutting down hands its leaderships over first), every
// acknowledged record is in the log exactly once, in order, and the three
// replicas end byte-identical.
func TestClusterRollingRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	procs, _ := startMetadataCluster(t, 3)
	const topic = "rolling"
	createReplicatedTopic(t, procs, topic)
	seeds := addrsOf(procs...)

	l := startLoad(t, newProducer(t, seeds, topic), "r", 32)
	l.waitAcked(200)
	for i, p := range procs {
		leader, _, _ := partitionState(t, procs[(i+1)%3].Addr, topic)
		if err := p.Terminate(); err != nil {
			t.Fatalf("node %d (leader: node %d) exited after SIGTERM with %v", i+1, leader, err)
		}
		n, _ := l.counts()
		t.Logf("node %d stopped (the partition's leader was node %d) after %d acknowledgements", i+1, leader, n)
		p.Restart()
		waitInSync(t, procs, topic)
		n, _ = l.counts()
		l.waitAcked(n + 200)
	}
	acked, failed := l.stop()
	for v, err := range failed {
		t.Fatalf("record %s failed (retries were on): %v", v, err)
	}
	waitIdenticalLogs(t, procs, topic, 1)
	n := checkHistory(t, seeds, topic, acked)
	t.Logf("%d acknowledged, %d records in the log", len(acked), n)
}
