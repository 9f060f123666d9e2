package replication

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/replication/meta"
)

// openGroupNodes opens Clusters for node ids on connected in-memory
// transports, each with all of them as initial members, concurrently (each
// Open waits for a leader, which needs a majority).
func openGroupNodes(t *testing.T, ids ...int32) map[int32]*Cluster {
	t.Helper()
	return openNodesWith(t, ids, nil)
}

// openNodesWith is openGroupNodes with edit, if set, applied to each
// node's config and options before it opens. nodes is the map returned,
// filled only once every node is open (a peer set up by edit may hold it
// and read it after).
func openNodesWith(t *testing.T, ids []int32, edit func(cfg *Config, opts *Options, nodes map[int32]*Cluster)) map[int32]*Cluster {
	t.Helper()
	var members []meta.Member
	for _, id := range ids {
		members = append(members, meta.Member{ID: id, RaftAddress: fmt.Sprintf("node-%d", id), Host: "127.0.0.1", Port: 9090 + id})
	}
	transports := map[int32]*raft.InmemTransport{}
	for _, m := range members {
		_, transports[m.ID] = raft.NewInmemTransport(raft.ServerAddress(m.RaftAddress))
	}
	for a, ta := range transports {
		for b, tb := range transports {
			if a != b {
				ta.Connect(tb.LocalAddr(), tb)
			}
		}
	}
	groups := &inmemGroups{byGroup: map[string]map[raft.ServerAddress]*raft.InmemTransport{}}
	nodes := map[int32]*Cluster{}
	type opened struct {
		id  int32
		c   *Cluster
		err error
	}
	results := make(chan opened, len(ids))
	for _, m := range members {
		cfg := DefaultConfig()
		cfg.NodeID, cfg.DataDir, cfg.AdvertisedPort = m.ID, t.TempDir(), m.Port
		cfg.RaftAddress, cfg.InitialMembers = m.RaftAddress, members
		// Long enough that a leader starved by parallel tests on 2 cores
		// rarely steps down.
		cfg.Meta.HeartbeatTimeout, cfg.Meta.ElectionTimeout, cfg.Meta.LeaderLeaseTimeout = 300*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond
		opts := Options{Transport: transports[m.ID], GroupTransport: groups.transport(cfg.RaftAddress)}
		if edit != nil {
			edit(&cfg, &opts, nodes)
		}
		go func(id int32, cfg Config, opts Options) {
			c, err := Open(cfg, opts)
			results <- opened{id, c, err}
		}(m.ID, cfg, opts)
	}
	var errs []error
	got := map[int32]*Cluster{}
	for range ids {
		r := <-results
		if r.err != nil {
			errs = append(errs, fmt.Errorf("node %d: %w", r.id, r.err))
			continue
		}
		got[r.id] = r.c
		t.Cleanup(func() { r.c.Close(context.Background()) })
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for id, c := range got {
		nodes[id] = c
	}
	return nodes
}

// inmemGroups gives the partition groups of in-process nodes connected
// in-memory transports: a group's transport on a node has the node's Raft
// address and is connected to the same group's transports on the others.
type inmemGroups struct {
	mu      sync.Mutex
	byGroup map[string]map[raft.ServerAddress]*raft.InmemTransport
}

// transport returns the GroupTransport of the node at addr.
func (g *inmemGroups) transport(addr string) func(string) (raft.Transport, error) {
	return func(group string) (raft.Transport, error) {
		g.mu.Lock()
		defer g.mu.Unlock()
		_, t := raft.NewInmemTransport(raft.ServerAddress(addr))
		peers := g.byGroup[group]
		if peers == nil {
			peers = map[raft.ServerAddress]*raft.InmemTransport{}
			g.byGroup[group] = peers
		}
		for a, p := range peers {
			if a != t.LocalAddr() {
				t.Connect(a, p)
				p.Connect(t.LocalAddr(), t)
			}
		}
		peers[t.LocalAddr()] = t
		return t, nil
	}
}

// leaderOf returns the node that is the metadata leader, waiting on the
// leaders' notifications.
func leaderOf(t *testing.T, nodes map[int32]*Cluster) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		var waits []<-chan struct{}
		for _, c := range nodes {
			waits = append(waits, c.group.LeaderChanged())
			if c.group.IsLeader() {
				return c
			}
		}
		select {
		case <-waits[0]:
		case <-ctx.Done():
			t.Fatal("no metadata leader")
		}
	}
}

// TestClusterFollowsMetadataGroup runs three nodes: only the leader takes
// admin operations (NOT_CONTROLLER elsewhere, ControllerID names it);
// each node opens exactly the replicas placed on it; config changes reach
// the followers' replicas; a deleted topic's data goes everywhere.
func TestClusterFollowsMetadataGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes := openGroupNodes(t, 1, 2, 3)
	leader := leaderOf(t, nodes)
	for id, c := range nodes {
		if c == leader {
			continue
		}
		if got := c.ControllerID(); got != leader.NodeID() {
			t.Errorf("node %d names controller %d, want %d", id, got, leader.NodeID())
		}
		if _, err := c.CreateTopic(ctx, CreateTopicRequest{Name: "t", Partitions: 1, ReplicationFactor: 1}); !errors.Is(err, kerr.NotController) {
			t.Errorf("CreateTopic on follower %d: %v, want NOT_CONTROLLER", id, err)
		}
		if err := c.AlterBrokerConfigs(ctx, "", map[string]string{"log.retention.bytes": "1"}, false); !errors.Is(err, kerr.NotController) {
			t.Errorf("AlterBrokerConfigs on follower %d: %v, want NOT_CONTROLLER", id, err)
		}
	}
	if got := len(leader.Brokers()); got != 3 {
		t.Fatalf("%d brokers, want 3", got)
	}

	if _, err := leader.CreateTopic(ctx, CreateTopicRequest{Name: "t", Partitions: 3, ReplicationFactor: 2}); err != nil {
		t.Fatal(err)
	}
	if err := leader.AlterTopicConfigs(ctx, "t", map[string]string{"retention.ms": "60000"}, false); err != nil {
		t.Fatal(err)
	}
	version := leader.group.State().Version
	held := map[int32]int{}
	for id, c := range nodes {
		if err := c.waitView(ctx, version); err != nil {
			t.Fatalf("node %d: %v", id, err)
		}
		st, _ := c.group.State().Topic("t")
		topic, ok := c.Topic("t")
		if !ok {
			t.Fatalf("node %d has no topic t", id)
		}
		for i, p := range st.Partitions {
			mine := false
			for _, r := range p.Replicas {
				mine = mine || r == id
			}
			local := topic.Partition(int32(i)).replica != nil
			if mine != local {
				t.Errorf("node %d partition %d: assigned here %v, replica open %v", id, i, mine, local)
			}
			if local {
				held[int32(i)]++
				if got := topic.Partition(int32(i)).Config().RetentionTime; got != time.Minute {
					t.Errorf("node %d partition %d retention %s, want 1m", id, i, got)
				}
			} else if _, err := c.Partition("t", int32(i)); !errors.Is(err, kerr.NotLeaderForPartition) {
				t.Errorf("node %d partition %d held elsewhere: %v, want NOT_LEADER_OR_FOLLOWER", id, i, err)
			}
		}
	}
	for i := int32(0); i < 3; i++ {
		if held[i] != 2 {
			t.Errorf("partition %d open on %d nodes, want 2", i, held[i])
		}
	}

	if err := leader.DeleteTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	version = leader.group.State().Version
	for id, c := range nodes {
		if err := c.waitView(ctx, version); err != nil {
			t.Fatalf("node %d: %v", id, err)
		}
		left, _ := filepath.Glob(filepath.Join(c.cfg.DataDir, "topics", "t-*"))
		if len(left) != 0 {
			t.Errorf("node %d keeps %v after the delete", id, left)
		}
	}
}

// TestTopicRecreatedUnderSameName checks that a state where a topic was
// deleted and created again under its name (one change seen at once, as
// the level-triggered reaction may) gives an empty new partition, not the
// old data.
func TestTopicRecreatedUnderSameName(t *testing.T) {
	ctx := context.Background()
	c := openTestCluster(t, t.TempDir())
	old, err := c.CreateTopic(ctx, CreateTopicRequest{Name: "x", Partitions: 1, ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	a, err := old.Partition(0).Append(ctx, keyedBatch("k", "v", time.Now().UnixMilli()))
	if err != nil || a.Wait(ctx) != nil {
		t.Fatalf("append: %v", err)
	}
	s := c.group.State()
	s, _ = s.Apply(s.Version+1, &meta.DeleteTopic{Name: "x"})
	s, res := s.Apply(s.Version+1, &meta.CreateTopic{Name: "x", ID: meta.TopicID{1}, Assignment: [][]int32{{c.NodeID()}}})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	c.mu.Lock()
	c.applyLocked(s)
	c.mu.Unlock()
	got, ok := c.Topic("x")
	if !ok || got.ID() == old.ID() || got.Partition(0).Offsets().LogEnd != 0 {
		t.Fatalf("recreated topic: ok %v id %x (old %x), log end %d; want a new empty one", ok, got.ID(), old.ID(), got.Partition(0).Offsets().LogEnd)
	}
	if _, err := os.Stat(c.partitionDir("x", 0)); err != nil {
		t.Fatalf("new partition directory: %v", err)
	}
}
