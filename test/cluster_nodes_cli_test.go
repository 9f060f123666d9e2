package test

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// sluiceCluster runs `sluice cluster VERB args...` against addr and
// returns its output and exit code.
func sluiceCluster(t *testing.T, addr string, args ...string) (string, int) {
	t.Helper()
	out, err := runSluice(t, nil, append([]string{"cluster", "--bootstrap-server", addr}, args...)...)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out, 0
	case errors.As(err, &exit):
		return out, exit.ExitCode()
	}
	t.Fatalf("sluice cluster %v: %v\n%s", args, err, out)
	return "", -1
}

// replicasPerNode returns how many partition replicas each node holds, as
// the node at addr reports them, and the brokers it lists.
func replicasPerNode(t *testing.T, addr string) (replicas map[int32]int, brokers map[int32]bool) {
	t.Helper()
	md := metadataOf(t, addr)
	replicas, brokers = map[int32]int{}, map[int32]bool{}
	for _, b := range md.Brokers {
		brokers[b.NodeID] = true
	}
	for _, mt := range md.Topics {
		for _, mp := range mt.Partitions {
			for _, r := range mp.Replicas {
				replicas[r]++
			}
		}
	}
	return replicas, brokers
}

// TestClusterAddRemoveNodeCLI: a fourth node started with cluster.join
// joins a running three-node cluster; `sluice cluster add-node 4` waits
// for it and moves it its share of replicas; `remove-node` of an unknown
// node, and of a node whose removal would leave fewer nodes than a
// partition's replicas, exits 1 with a message and changes nothing;
// `remove-node 4 --dry-run` only shows the plan; `remove-node 4` moves its
// replicas away and removes it, and its partition directories go.
func TestClusterAddRemoveNodeCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four processes")
	}
	// A replica added by a move waits up to the partition's commit
	// timeout (5 s, at most the partition heartbeat timeout) for its first
	// entries: a 2 s heartbeat timeout makes each step of the moves
	// quicker; the CLI's plans and checks are the same.
	procs, _ := startMetadataCluster(t, 3, "--raft-partition-heartbeat-timeout-ms", "2000")
	seed := procs[0].Addr
	adm := clusterAdmin(t, addrsOf(procs...))
	createSpread(t, adm, "spread", 8)

	addrs := freeAddrs(t, 2)
	fourth := &sluiceProcess{tb: t, Addr: addrs[0], DataDir: t.TempDir(), Args: []string{
		"--node-id", "4", "--raft-listen", addrs[1], "--cluster-join", seed,
		"--raft-heartbeat-timeout-ms", "500", "--raft-election-timeout-ms", "500", "--raft-leader-lease-timeout-ms", "500",
		"--offsets-topic-num-partitions", "3", "--transaction-state-log-num-partitions", "3",
		"--raft-partition-heartbeat-timeout-ms", "2000"}}
	fourth.launch()
	t.Cleanup(func() {
		if fourth.running() {
			fourth.Kill()
		}
		if t.Failed() {
			t.Logf("node 4 output:\n%s", fourth.Output())
		}
	})
	fourth.waitListening()

	out, code := sluiceCluster(t, seed, "add-node", "4", "--timeout", "60s")
	if code != 0 || !strings.Contains(out, "TOPIC") {
		t.Fatalf("add-node 4: exit %d\n%s", code, out)
	}
	t.Logf("add-node 4:\n%s", out)
	eventually(t, "node 4 holds a share of the replicas", func() bool {
		replicas, brokers := replicasPerNode(t, fourth.Addr)
		return brokers[4] && replicas[4] >= 4
	})
	if out, code := sluiceCluster(t, seed, "rebalance", "--dry-run"); code != 0 || !strings.Contains(out, "nothing to move") {
		t.Fatalf("rebalance right after add-node: exit %d\n%s", code, out)
	}

	if out, code := sluiceCluster(t, seed, "remove-node", "9"); code != 1 || !strings.Contains(out, "not a member") {
		t.Fatalf("remove-node 9: exit %d\n%s", code, out)
	}
	before, _ := replicasPerNode(t, seed)
	out, code = sluiceCluster(t, seed, "remove-node", "4", "--dry-run", "--format", "json")
	if code != 0 || !strings.Contains(out, `"to"`) {
		t.Fatalf("remove-node 4 --dry-run: exit %d\n%s", code, out)
	}
	if after, _ := replicasPerNode(t, seed); after[4] != before[4] {
		t.Fatalf("--dry-run moved replicas: node 4 had %d, has %d", before[4], after[4])
	}

	out, code = sluiceCluster(t, seed, "remove-node", "4", "--timeout", "60s")
	if code != 0 || !strings.Contains(out, "node 4 removed") {
		t.Fatalf("remove-node 4: exit %d\n%s", code, out)
	}
	eventually(t, "no node lists node 4 or a replica on it", func() bool {
		for _, p := range procs {
			replicas, brokers := replicasPerNode(t, p.Addr)
			if brokers[4] || replicas[4] > 0 || len(brokers) != 3 {
				return false
			}
		}
		return true
	})
	eventually(t, "node 4 deletes its partitions", func() bool {
		return len(partitionDirs(t, fourth.DataDir, "spread")) == 0
	})

	// __consumer_offsets has three replicas: two nodes cannot hold it.
	out, code = sluiceCluster(t, seed, "remove-node", "3")
	if code != 1 || !strings.Contains(out, "cannot remove node 3") {
		t.Fatalf("remove-node 3 of three: exit %d\n%s", code, out)
	}
	if _, brokers := replicasPerNode(t, seed); len(brokers) != 3 {
		t.Fatalf("a refused remove-node changed the members: %v", brokers)
	}
	t.Logf("remove-node 3 refused:\n%s", out)
}
