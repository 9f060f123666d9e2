package test

import (
	"testing"
)

// TestClusterAllKilledAtOnce: three nodes as processes, one partition
// replicated on all three, an idempotent acks=all producer writing without
// pause; kill -9 of every node at once, then all restarted. The same
// producer is acknowledged again once they are back, a fresh consumer
// reads the partition, every record acknowledged before or after the
// crash is in the log exactly once, at its acknowledged offset, in order,
// and the three replicas end byte-identical.
func TestClusterAllKilledAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	procs, _ := startMetadataCluster(t, 3)
	const topic = "crash"
	createReplicatedTopic(t, procs, topic)
	seeds := addrsOf(procs...)

	l := startLoad(t, newProducer(t, seeds, topic), "r", 32)
	l.waitAcked(300)
	killAll(t, procs)
	before, _ := l.counts()
	t.Logf("killed every node after %d acknowledgements", before)

	// Nodes listen only once a majority of them runs: start all, then wait.
	for _, p := range procs {
		p.launch()
	}
	for _, p := range procs {
		p.waitListening()
	}
	l.waitAcked(before + 300)
	acked, failed := l.stop()
	for v, err := range failed {
		// A record in flight at the crash may fail; none acknowledged may be lost.
		t.Logf("record %s failed: %v", v, err)
	}
	waitIdenticalLogs(t, procs, topic, 1)
	n := checkHistory(t, seeds, topic, acked)
	t.Logf("%d acknowledged (%d before the crash), %d failed, %d records in the log", len(acked), before, len(failed), n)
}
