package test

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// clusterStatusJSON is the part of `sluice cluster status --format json`
// the tests read.
type clusterStatusJSON struct {
	ClusterID       string           `json:"cluster_id"`
	Controller      int32            `json:"controller"`
	Nodes           []nodeStatusJSON `json:"nodes"`
	Partitions      int              `json:"partitions"`
	UnderReplicated []struct {
		Topic     string  `json:"topic"`
		Partition int32   `json:"partition"`
		Leader    int32   `json:"leader"`
		Replicas  []int32 `json:"replicas"`
		ISR       []int32 `json:"isr"`
	} `json:"under_replicated"`
	Leaderless []struct {
		Topic string `json:"topic"`
	} `json:"leaderless"`
	Healthy bool `json:"healthy"`
}

// nodeStatusJSON is one node of clusterStatusJSON.
type nodeStatusJSON struct {
	ID         int32  `json:"id"`
	Address    string `json:"address"`
	Up         bool   `json:"up"`
	Controller bool   `json:"controller"`
	Leaders    int    `json:"leaders"`
	Replicas   int    `json:"replicas"`
	Storage    *struct {
		Dir            string `json:"dir"`
		TotalBytes     int64  `json:"total_bytes"`
		FreeBytes      int64  `json:"free_bytes"`
		MinFreeBytes   int64  `json:"min_free_bytes"`
		LogBytes       int64  `json:"log_bytes"`
		ProduceRefused bool   `json:"produce_refused"`
	} `json:"storage"`
}

// clusterStatus runs `sluice cluster status` against addr with args and
// returns its output and exit code.
func clusterStatus(t *testing.T, addr string, args ...string) (string, int) {
	t.Helper()
	out, err := runSluice(t, nil, append([]string{"cluster", "status", "--bootstrap-server", addr, "--timeout", "2s"}, args...)...)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out, 0
	case errors.As(err, &exit):
		return out, exit.ExitCode()
	}
	t.Fatalf("sluice cluster status: %v\n%s", err, out)
	return "", -1
}

// parseClusterStatus decodes the JSON output.
func parseClusterStatus(t *testing.T, out string) clusterStatusJSON {
	t.Helper()
	var st clusterStatusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("cluster status --format json: %v\n%s", err, out)
	}
	return st
}

// exitUnhealthyCode is the exit status of `sluice cluster status` for an
// unhealthy cluster (README, "Cluster status").
const exitUnhealthyCode = 3

// TestClusterStatusCLI checks `sluice cluster status` against one node:
// healthy, exit 0, the node up, controller and leader of every partition,
// in both formats; an unreachable broker is exit 1; a bad --format is
// exit 2 (usage).
func TestClusterStatusCLI(t *testing.T) {
	srv := startServer(t)
	createTopic(t, srv.Addr, "status-one", 3)

	out, code := clusterStatus(t, srv.Addr)
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	for _, want := range []string{"controller:  1", "status:      healthy", "NODE", srv.Addr} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	out, code = clusterStatus(t, srv.Addr, "--format", "json")
	if code != 0 {
		t.Fatalf("json: exit %d, want 0:\n%s", code, out)
	}
	st := parseClusterStatus(t, out)
	if !st.Healthy || st.ClusterID == "" || st.Controller != 1 || len(st.Nodes) != 1 {
		t.Fatalf("status %+v", st)
	}
	n := st.Nodes[0]
	if !n.Up || !n.Controller || n.Address != srv.Addr || n.Leaders != st.Partitions || st.Partitions < 3 {
		t.Errorf("node %+v of %d partitions, want it up, controller, leading all", n, st.Partitions)
	}
	if st.UnderReplicated == nil || st.Leaderless == nil {
		t.Error("under_replicated and leaderless must be arrays, not null")
	}

	if out, code := clusterStatus(t, freeAddr(t)); code != 1 || !strings.Contains(out, "cannot reach") {
		t.Errorf("unreachable broker: exit %d, want 1:\n%s", code, out)
	}
	if out, code := clusterStatus(t, srv.Addr, "--format", "yaml"); code != 2 || !strings.Contains(out, "--format") {
		t.Errorf("bad --format: exit %d, want 2 (usage):\n%s", code, out)
	}
}

// TestClusterStatusNodeKilled runs `sluice cluster status` against three
// processes: healthy (exit 0) with a topic replicated on every node; with
// one node killed (kill -9), the status shows it down, the topic's
// partition under-replicated, and exits 3.
func TestClusterStatusNodeKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	procs, _ := startMetadataCluster(t, 3)
	const topic = "status-rf3"
	createReplicatedTopic(t, procs, topic)
	bootstrap := procs[0].Addr

	var out string
	var code int
	eventually(t, "cluster status healthy", func() bool {
		out, code = clusterStatus(t, bootstrap, "--format", "json")
		return code == 0
	})
	st := parseClusterStatus(t, out)
	leaders := 0
	for _, n := range st.Nodes {
		if !n.Up {
			t.Errorf("node %d down in a healthy status", n.ID)
		}
		leaders += n.Leaders
	}
	if len(st.Nodes) != 3 || leaders != st.Partitions || st.Controller < 1 {
		t.Fatalf("healthy status %+v: want 3 nodes leading all %d partitions and a controller", st, st.Partitions)
	}

	// DescribeCluster, asked of any node through a client, lists the three
	// brokers and the controller the status named.
	cl, err := kgo.NewClient(kgo.SeedBrokers(procs[1].Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if dc.ErrorCode != 0 || len(dc.Brokers) != 3 || dc.ControllerID != st.Controller || dc.ClusterID != st.ClusterID {
		t.Errorf("DescribeCluster: %+v; want 3 brokers, controller %d, cluster %s", dc, st.Controller, st.ClusterID)
	}

	procs[2].Kill()
	eventually(t, "cluster status shows node 3 down and the topic under-replicated", func() bool {
		out, code = clusterStatus(t, bootstrap, "--format", "json")
		if code != exitUnhealthyCode {
			return false
		}
		st = parseClusterStatus(t, out)
		down := slices.IndexFunc(st.Nodes, func(n nodeStatusJSON) bool { return n.ID == 3 && !n.Up })
		under := false
		for _, p := range st.UnderReplicated {
			under = under || p.Topic == topic && len(p.ISR) == 2 && len(p.Replicas) == 3 && p.Leader != 3
		}
		return down >= 0 && under && !st.Healthy
	})
	out, code = clusterStatus(t, bootstrap)
	if code != exitUnhealthyCode {
		t.Fatalf("table: exit %d, want 3 (unhealthy):\n%s", code, out)
	}
	for _, want := range []string{"UNHEALTHY", "1 of 3 nodes down", "DOWN", procs[2].Addr, "UNDER-REPLICATED PARTITIONS", topic} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	t.Logf("status with node 3 killed:\n%s", out)
}
