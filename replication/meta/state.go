package meta

import (
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/sluice-io/sluice/replication/quota"
)

// TopicID is a topic's 16-byte id, the UUID Kafka 2.8+ clients use in place
// of names. Its JSON form is 32 lowercase hex digits, as in cluster.json.
type TopicID [16]byte

// String returns the id as 32 lowercase hex digits.
func (id TopicID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is all zeros, which Kafka reserves for "no id".
func (id TopicID) IsZero() bool { return id == TopicID{} }

// MarshalText encodes id as 32 hex digits.
func (id TopicID) MarshalText() ([]byte, error) {
	b := make([]byte, hex.EncodedLen(len(id)))
	hex.Encode(b, id[:])
	return b, nil
}

// UnmarshalText decodes 32 hex digits.
func (id *TopicID) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(id) {
		return fmt.Errorf("topic id %q is not 32 hex digits", b)
	}
	if _, err := hex.Decode(id[:], b); err != nil {
		return fmt.Errorf("topic id %q is not 32 hex digits: %w", b, err)
	}
	return nil
}

// NodeState is a registered node's place in the membership life cycle.
type NodeState string

const (
	// NodeActive is a member that placement may put new replicas on.
	NodeActive NodeState = "active"
	// NodeLeaving is a member on its way out: placement skips it and its
	// replicas are being moved away; RemoveNode succeeds once it holds none.
	NodeLeaving NodeState = "leaving"
)

// Node is one registered node.
type Node struct {
	ID int32 `json:"id"`
	// Host and Port are the Kafka listener address advertised to clients
	// in Metadata.
	Host string `json:"host"`
	Port int32  `json:"port"`
	// RaftAddress is where peers reach this node's Raft transport; it is
	// also the node's address in the metadata group's configuration.
	RaftAddress string `json:"raft_address"`
	// Rack is the node's rack (broker.rack); "" means none.
	Rack  string    `json:"rack,omitempty"`
	State NodeState `json:"state"`
}

// Partition is one partition's replica assignment.
type Partition struct {
	// Replicas are node ids in preference order: the first is the
	// preferred leader. Never empty, no duplicates. While a reassignment
	// is in progress they are the target replicas followed by the
	// original ones leaving (Kafka's layout), so every node involved
	// holds a replica.
	Replicas []int32 `json:"replicas"`
	// Leader and LeaderEpoch are the leader its Raft group last elected
	// and the term it leads in, as RecordLeaders recorded them; epoch 0
	// means none recorded. Read them with RecordedLeader.
	Leader      int32 `json:"leader,omitempty"`
	LeaderEpoch int32 `json:"leader_epoch,omitempty"`
	// Adding and Removing are the replicas a reassignment in progress
	// adds and removes (reassign.go); both empty when none is.
	Adding   []int32 `json:"adding,omitempty"`
	Removing []int32 `json:"removing,omitempty"`
	// Moved is set once the replica list has changed after creation: a
	// replica opened then joins the partition's Raft group through its
	// leader, never bootstrapping a configuration of its own.
	Moved bool `json:"moved,omitempty"`
}

// Topic is one topic.
type Topic struct {
	Name     string  `json:"name"`
	ID       TopicID `json:"id"`
	Internal bool    `json:"internal,omitempty"`
	// Configs are the topic's config overrides by Kafka name
	// (retention.ms, ...); never nil in a State.
	Configs map[string]string `json:"configs"`
	// Partitions are indexed by partition number.
	Partitions []Partition `json:"partitions"`
}

// BrokerConfigs are the dynamic broker configs (Kafka's BROKER config
// resource, set by AlterConfigs and IncrementalAlterConfigs).
type BrokerConfigs struct {
	// Default is the cluster default (resource name ""), by Kafka name;
	// never nil in a State.
	Default map[string]string `json:"default"`
	// Nodes are the configs of single brokers by node id, then Kafka name;
	// a node with none has no entry. Never nil in a State.
	Nodes map[int32]map[string]string `json:"nodes"`
}

// State is the cluster metadata at one point of the metadata log. A State
// is immutable: Apply builds a new one (copy-on-write, sharing what did
// not change), so a reader holding a *State sees a consistent snapshot
// without locks. Callers must not modify anything reachable from it.
type State struct {
	// Version is the Raft log index of the last command applied; 0 for
	// the empty state. The same on every node for the same log.
	Version uint64 `json:"version"`
	// ClusterID is fixed by InitCluster, the first command of a cluster,
	// and never changes; "" until then.
	ClusterID string            `json:"cluster_id"`
	Nodes     map[int32]Node    `json:"nodes"`
	Topics    map[string]*Topic `json:"topics"`
	Brokers   BrokerConfigs     `json:"broker_configs"`
	// NextProducerID is the first producer id not yet handed out in a
	// block: blocks are [NextProducerID, NextProducerID+size).
	NextProducerID int64 `json:"next_producer_id"`
	// Quotas are the client quotas (AlterClientQuotas); never modified,
	// replaced whole.
	Quotas quota.Set `json:"client_quotas,omitempty"`
	// GroupConfigs are the configs of the GROUP resource (share group
	// configs, KIP-932), by group id then Kafka name; a group with none
	// has no entry, and the map may be nil. Never modified: an
	// AlterGroupConfigs replaces the map.
	GroupConfigs map[string]map[string]string `json:"group_configs,omitempty"`

	// topicsByID indexes Topics by id; derived, rebuilt by index.
	topicsByID map[TopicID]*Topic
}

// Empty returns the state of a metadata group no command has touched.
func Empty() *State {
	s := &State{
		Nodes:   map[int32]Node{},
		Topics:  map[string]*Topic{},
		Brokers: BrokerConfigs{Default: map[string]string{}, Nodes: map[int32]map[string]string{}},
	}
	s.index()
	return s
}

// Initialized reports whether InitCluster has been applied.
func (s *State) Initialized() bool { return s.ClusterID != "" }

// Topic returns the named topic.
func (s *State) Topic(name string) (*Topic, bool) {
	t, ok := s.Topics[name]
	return t, ok
}

// TopicByID returns the topic with the given id.
func (s *State) TopicByID(id TopicID) (*Topic, bool) {
	t, ok := s.topicsByID[id]
	return t, ok
}

// TopicNames returns every topic name, sorted. The slice is the caller's.
func (s *State) TopicNames() []string {
	names := make([]string, 0, len(s.Topics))
	for n := range s.Topics {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Node returns the registered node with the given id.
func (s *State) Node(id int32) (Node, bool) {
	n, ok := s.Nodes[id]
	return n, ok
}

// NodeIDs returns the ids of every registered node, ascending; with
// activeOnly, only nodes in NodeActive. The slice is the caller's.
func (s *State) NodeIDs(activeOnly bool) []int32 {
	ids := make([]int32, 0, len(s.Nodes))
	for id, n := range s.Nodes {
		if activeOnly && n.State != NodeActive {
			continue
		}
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// ReplicasOn returns how many partition replicas are assigned to node id.
func (s *State) ReplicasOn(id int32) int {
	n := 0
	for _, t := range s.Topics {
		for _, p := range t.Partitions {
			for _, r := range p.Replicas {
				if r == id {
					n++
				}
			}
		}
	}
	return n
}

// GroupConfigsOf returns the configs of one group (nil if none). The map
// must not be modified.
func (s *State) GroupConfigsOf(group string) map[string]string { return s.GroupConfigs[group] }

// BrokerConfigsOf returns the dynamic configs of one node (nil if none).
// The map must not be modified.
func (s *State) BrokerConfigsOf(id int32) map[string]string { return s.Brokers.Nodes[id] }

// validate checks what Apply guarantees of every state (topics filed
// under their names, distinct non-zero ids, 1 to MaxPartitions
// partitions, replicas registered and distinct; nodes filed under their
// ids) and builds the indexes; DecodeSnapshot runs it.
func (s *State) validate() error {
	for id, n := range s.Nodes {
		if n.ID != id {
			return fmt.Errorf("node %d is filed as %d", n.ID, id)
		}
	}
	ids := make(map[TopicID]string, len(s.Topics))
	for name, t := range s.Topics {
		if t == nil || t.Name != name {
			return fmt.Errorf("topic %q is misfiled", name)
		}
		if other, dup := ids[t.ID]; dup || t.ID.IsZero() {
			return fmt.Errorf("topic %q has id %s, zero or also topic %q's", name, t.ID, other)
		}
		ids[t.ID] = name
		if len(t.Partitions) < 1 || len(t.Partitions) > MaxPartitions {
			return fmt.Errorf("topic %q has %d partitions", name, len(t.Partitions))
		}
		for i, p := range t.Partitions {
			if err := s.checkReplicas(p.Replicas); err != nil {
				return fmt.Errorf("partition %s-%d: %w", name, i, err)
			}
			if err := p.checkReassignment(); err != nil {
				return fmt.Errorf("partition %s-%d: %w", name, i, err)
			}
		}
	}
	s.index()
	return nil
}

// index rebuilds the derived indexes and replaces nil maps with empty
// ones, so a State decoded from JSON behaves like one built by Apply.
func (s *State) index() {
	if s.Nodes == nil {
		s.Nodes = map[int32]Node{}
	}
	if s.Topics == nil {
		s.Topics = map[string]*Topic{}
	}
	if s.Brokers.Default == nil {
		s.Brokers.Default = map[string]string{}
	}
	if s.Brokers.Nodes == nil {
		s.Brokers.Nodes = map[int32]map[string]string{}
	}
	s.topicsByID = make(map[TopicID]*Topic, len(s.Topics))
	for _, t := range s.Topics {
		if t.Configs == nil {
			t.Configs = map[string]string{}
		}
		if t.Partitions == nil {
			t.Partitions = []Partition{}
		}
		s.topicsByID[t.ID] = t
	}
}

// clone returns a shallow copy of s whose top-level maps are fresh copies,
// so the caller may add, replace and delete entries without touching s.
// Values (topics, config maps) are shared: replace them, never modify.
func (s *State) clone() *State {
	c := *s
	c.Nodes = make(map[int32]Node, len(s.Nodes))
	for k, v := range s.Nodes {
		c.Nodes[k] = v
	}
	c.Topics = make(map[string]*Topic, len(s.Topics))
	for k, v := range s.Topics {
		c.Topics[k] = v
	}
	c.Brokers.Nodes = make(map[int32]map[string]string, len(s.Brokers.Nodes))
	for k, v := range s.Brokers.Nodes {
		c.Brokers.Nodes[k] = v
	}
	c.topicsByID = make(map[TopicID]*Topic, len(s.topicsByID))
	for k, v := range s.topicsByID {
		c.topicsByID[k] = v
	}
	return &c
}

// copyConfigs returns a copy of m, never nil.
func copyConfigs(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// copyAssignment returns a deep copy of replica lists as partitions.
func copyAssignment(assignment [][]int32) []Partition {
	ps := make([]Partition, len(assignment))
	for i, rs := range assignment {
		ps[i] = Partition{Replicas: append([]int32(nil), rs...)}
	}
	return ps
}

// PartitionRef names one partition of one incarnation of a topic: a topic
// deleted and created again under the same name has another TopicID, so
// a node comparing two states sees the old replica go and a new one come.
type PartitionRef struct {
	TopicID   TopicID
	Topic     string
	Partition int32
}

// Assigned returns the partitions that node holds a replica of in s,
// sorted by topic name then partition. A node reacting to a new state
// compares Assigned of the state it acted on with that of the new one:
// refs only in the new are replicas to open, refs only in the old are
// replicas to close and delete. The slice is the caller's.
func (s *State) Assigned(node int32) []PartitionRef {
	var refs []PartitionRef
	for _, name := range s.TopicNames() {
		t := s.Topics[name]
		for i, p := range t.Partitions {
			for _, r := range p.Replicas {
				if r == node {
					refs = append(refs, PartitionRef{TopicID: t.ID, Topic: name, Partition: int32(i)})
					break
				}
			}
		}
	}
	return refs
}
