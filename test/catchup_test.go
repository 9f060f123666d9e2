package test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestClusterFollowerCatchesUpAfterCompaction: three nodes as processes,
// with a short partition Raft window (raft.trailing.logs) and frequent
// snapshots. A follower is killed -9 while an idempotent acks=all producer
// writes on until the leader's Raft window has moved past everything the
// follower holds; restarted, the follower gets a snapshot and catches up
// from the leader's segments, is reported in sync and ends with
// byte-identical segments. Then the old leader is killed: every
// acknowledged record is on the new leader once, in order.
func TestClusterFollowerCatchesUpAfterCompaction(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	const trailing = 32
	// A leader counts a replica that read its log as catching up, out of
	// the ISR, for a partition heartbeat timeout after its last read
	// (20 s at the default): a 1 s timeout readmits the restarted
	// follower within a second of its catch-up instead.
	procs, _ := startMetadataCluster(t, 3, "--log-segment-bytes", "65536",
		"--raft-snapshot-threshold", "16", "--raft-trailing-logs", strconv.Itoa(trailing),
		"--raft-snapshot-interval-ms", "100", "--raft-partition-heartbeat-timeout-ms", "1000")
	const topic = "catchup-compacted"
	createReplicatedTopic(t, procs, topic)
	seeds := addrsOf(procs...)
	leader, _, _ := partitionState(t, procs[0].Addr, topic)
	old := procs[leader-1]
	follower := procs[leader%3]

	l := startLoad(t, newProducer(t, seeds, topic), "r", 32)
	l.waitAcked(200)
	follower.Kill()
	down, _ := l.counts()
	behind := len(segmentBytes(t, follower.DataDir, topic))
	// The follower holds at most an entry per record acknowledged or in
	// flight (32), plus Raft's own entries: once the leader's snapshot is
	// TrailingLogs past that, its Raft window no longer holds them.
	past := uint64(down + 32 + 16 + trailing)
	eventually(t, "the leader snapshots past the stopped follower's entries", func() bool {
		return latestSnapshotIndex(t, old.DataDir, topic) > past
	})
	more, _ := l.counts()
	l.waitAcked(more + 100)

	follower.Restart()
	eventually(t, "the restarted follower catches up from the leader's segments", func() bool {
		return strings.Contains(follower.Output(), "caught up from the leader's log")
	})
	up, _ := l.counts()
	l.waitAcked(up + 200)
	// The follower keeps up with a producer writing at full speed on an
	// idle machine, but not always on a loaded one: stop writing, then
	// wait for it to be back in sync.
	acked, failed := l.stop()
	waitInSync(t, procs, topic)
	for v, err := range failed {
		t.Fatalf("record %s failed (retries were on): %v", v, err)
	}
	t.Logf("follower down from %d acknowledgements (%d bytes of segments) to %d; %d in all", down, behind, up, len(acked))
	waitIdenticalLogs(t, procs, topic, behind+1)

	old.Kill()
	var live []string
	for _, p := range procs {
		if p != old {
			live = append(live, p.Addr)
		}
	}
	n := checkHistory(t, live, topic, acked)
	t.Logf("the new leader holds %d records, every acknowledged one once and in order", n)
}

// latestSnapshotIndex returns the Raft index of the newest snapshot of
// topic's partition 0 under dataDir (0 for none). Raft names a snapshot
// term-index-milliseconds.
func latestSnapshotIndex(t *testing.T, dataDir, topic string) uint64 {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dataDir, "topics", topic+"-0", "raft-snapshots", "snapshots"))
	if err != nil {
		return 0
	}
	var latest uint64
	for _, e := range entries {
		parts := strings.Split(e.Name(), "-")
		if len(parts) != 3 {
			continue
		}
		if idx, err := strconv.ParseUint(parts[1], 10, 64); err == nil && idx > latest {
			latest = idx
		}
	}
	return latest
}
