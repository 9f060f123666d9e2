package test

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// eventually waits, at most testTimeout, until cond holds. It is for state
// in other processes, which send no signal a test could wait on.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	eventuallyWithin(tb, testTimeout, what, cond)
}

// eventuallyWithin is eventually with its own bound.
func eventuallyWithin(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tcpProxy forwards every connection it accepts to target and counts
// them; t.Cleanup closes it.
type tcpProxy struct {
	addr     string
	accepted atomic.Int64
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p := &tcpProxy{addr: l.Addr().String()}
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			go func() {
				defer in.Close()
				out, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer out.Close()
				go func() { io.Copy(out, in); out.Close() }()
				io.Copy(in, out)
			}()
		}
	}()
	return p
}

// startMetadataCluster starts n nodes as separate processes forming one
// metadata group on 127.0.0.1 (raft.listen, cluster.initial.members).
// Every node dials the others but node 1 through a proxy each
// (raft.dial.addresses); the proxies are returned. (Only a leader or a
// candidate dials: some node dials one of them.) extraArgs are added to
// every node's arguments.
func startMetadataCluster(t *testing.T, n int, extraArgs ...string) ([]*sluiceProcess, []*tcpProxy) {
	t.Helper()
	raftAddrs := make([]string, n)
	procs := make([]*sluiceProcess, n)
	var members []string
	addrs := freeAddrs(t, 2*n)
	for i := range procs {
		raftAddrs[i] = addrs[2*i]
		procs[i] = &sluiceProcess{tb: t, Addr: addrs[2*i+1], DataDir: t.TempDir()}
		members = append(members, fmt.Sprintf("%d@%s/%s", i+1, raftAddrs[i], procs[i].Addr))
	}
	var proxies []*tcpProxy
	var dials []string
	for _, addr := range raftAddrs[1:] {
		proxy := startProxy(t, addr)
		proxies = append(proxies, proxy)
		dials = append(dials, addr+"="+proxy.addr)
	}
	for i, p := range procs {
		p.Args = []string{"--node-id", fmt.Sprint(i + 1), "--raft-listen", raftAddrs[i],
			"--cluster-initial-members", strings.Join(members, ","),
			"--raft-heartbeat-timeout-ms", "500", "--raft-election-timeout-ms", "500", "--raft-leader-lease-timeout-ms", "500",
			"--offsets-topic-num-partitions", "3", "--transaction-state-log-num-partitions", "3",
			"--share-coordinator-state-topic-num-partitions", "3"}
		p.Args = append(p.Args, "--raft-dial-addresses", strings.Join(dials, ","))
		p.Args = append(p.Args, extraArgs...)
		p.launch()
		t.Cleanup(func() {
			if p.running() {
				p.Kill()
			}
			if t.Failed() {
				t.Logf("node %d output:\n%s", i+1, p.Output())
			}
		})
	}
	for _, p := range procs {
		p.waitListening()
	}
	return procs, proxies
}

// metadataOf asks one node for the cluster's metadata (all topics).
func metadataOf(t testing.TB, addr string) *kmsg.MetadataResponse {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	return dialRaw(t, addr).mustRoundTrip(req).(*kmsg.MetadataResponse)
}

// partitionDirs returns the partition indexes of topic held under dataDir.
func partitionDirs(t *testing.T, dataDir, topic string) []string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dataDir, "topics", topic+"-*"))
	for i, n := range names {
		names[i] = strings.TrimPrefix(filepath.Base(n), topic+"-")
	}
	return names
}

// TestMetadataGroupOfThreeNodes forms a three-node metadata group from
// processes: every node lists the three brokers and names the same
// controller; a non-controller answers CreateTopics that another node
// forwarded (client id sluice-forward-*) with NOT_CONTROLLER, never
// forwarding it again (forward_test.go covers forwarding itself);
// a topic created through the controller reaches every node, each of
// which opens exactly the replicas placed on it, and its deletion removes
// them everywhere.
func TestMetadataGroupOfThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	procs, proxies := startMetadataCluster(t, 3)
	var controller int32 = -1
	for _, p := range procs {
		eventually(t, "every node names a controller and lists 3 brokers", func() bool {
			m := metadataOf(t, p.Addr)
			return len(m.Brokers) == 3 && m.ControllerID > 0
		})
		m := metadataOf(t, p.Addr)
		if controller != -1 && m.ControllerID != controller {
			t.Fatalf("node at %s names controller %d, another named %d", p.Addr, m.ControllerID, controller)
		}
		controller = m.ControllerID
	}
	leader := procs[controller-1]
	follower := procs[controller%3]

	create := func(addr, clientID string) kmsg.CreateTopicsResponseTopic {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 10_000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "spread", 3, 1
		req.Topics = append(req.Topics, rt)
		rc := dialRaw(t, addr)
		rc.formatter = kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID))
		resp := rc.mustRoundTrip(req).(*kmsg.CreateTopicsResponse)
		return resp.Topics[0]
	}
	if got := create(follower.Addr, "sluice-forward-9"); got.ErrorCode != kerr.NotController.Code {
		t.Fatalf("forwarded CreateTopics on a follower: code %d, want NOT_CONTROLLER", got.ErrorCode)
	}
	created := create(leader.Addr, "sluice-e2e-raw")
	if created.ErrorCode != 0 {
		t.Fatalf("CreateTopics on the controller: code %d", created.ErrorCode)
	}
	held := func() map[string]int {
		count := map[string]int{}
		for _, p := range procs {
			for _, d := range partitionDirs(t, p.DataDir, "spread") {
				count[d]++
			}
		}
		return count
	}
	topicID := func(addr string) [16]byte {
		for _, mt := range metadataOf(t, addr).Topics {
			if mt.Topic != nil && *mt.Topic == "spread" && len(mt.Partitions) == 3 {
				return mt.TopicID
			}
		}
		return [16]byte{}
	}
	id := topicID(leader.Addr)
	if id == [16]byte{} {
		t.Fatal("the controller's Metadata lacks the topic it created")
	}
	for _, p := range procs {
		eventually(t, "the topic reaches node "+p.Addr, func() bool { return topicID(p.Addr) == id })
	}
	eventually(t, "each partition opened on exactly one node", func() bool {
		c := held()
		return len(c) == 3 && c["0"] == 1 && c["1"] == 1 && c["2"] == 1
	})

	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TimeoutMillis = 10_000
	rt := kmsg.NewDeleteTopicsRequestTopic()
	name := "spread"
	rt.Topic = &name
	req.Topics = append(req.Topics, rt)
	req.TopicNames = []string{name}
	resp := dialRaw(t, leader.Addr).mustRoundTrip(req).(*kmsg.DeleteTopicsResponse)
	if code := resp.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("DeleteTopics on the controller: code %d", code)
	}
	eventually(t, "the topic's data deleted on every node", func() bool { return len(held()) == 0 })
	if proxies[0].accepted.Load()+proxies[1].accepted.Load() == 0 {
		t.Error("no node dialled a peer through the proxies of raft.dial.addresses")
	}
	for _, p := range procs {
		if _, err := os.Stat(filepath.Join(p.DataDir, "meta", "raft.db")); err != nil {
			t.Fatalf("node data dir without its metadata store: %v", err)
		}
	}
}

// TestMetadataFollowerCatchesUp kills a follower with kill -9, creates a
// topic while it is down (with a partition placed on it), and restarts
// it: the follower learns the topic and opens its replica.
func TestMetadataFollowerCatchesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	procs, _ := startMetadataCluster(t, 3)
	var controller int32
	eventually(t, "a controller", func() bool {
		controller = metadataOf(t, procs[0].Addr).ControllerID
		return controller > 0
	})
	leader := procs[controller-1]
	down := procs[controller%3]
	down.Kill()

	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10_000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "late", 3, 1
	req.Topics = append(req.Topics, rt)
	if code := dialRaw(t, leader.Addr).mustRoundTrip(req).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != 0 {
		t.Fatalf("CreateTopics with a node down: code %d", code)
	}
	if got := partitionDirs(t, down.DataDir, "late"); len(got) != 0 {
		t.Fatalf("a killed node got partitions %v", got)
	}

	down.Restart()
	eventually(t, "the restarted node opens its partition of the topic created while it was down", func() bool {
		return len(partitionDirs(t, down.DataDir, "late")) == 1
	})
	// The node that was up and is not the controller opens its replica
	// when it applies the topic, which CreateTopics does not wait for.
	eventually(t, "3 partition directories of late over the nodes", func() bool {
		total := 0
		for _, p := range procs {
			total += len(partitionDirs(t, p.DataDir, "late"))
		}
		return total == 3
	})
}
