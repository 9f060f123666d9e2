package meta

import (
	"fmt"
	"math"
	"reflect"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/replication/quota"
)

// maxTopicNameLength is Kafka's limit (249: room for "-<partition>" and
// suffixes in a 255-byte file name).
const maxTopicNameLength = 249

// MaxPartitions bounds one topic's partition count, as package
// replication does, so a typo cannot create a million Raft groups.
const MaxPartitions = 10000

// maxProducerIDBlock bounds one AllocateProducerIDBlock.
const maxProducerIDBlock = 1 << 20

// Result is the outcome of one command, returned by the FSM's Apply and
// by Group.Propose.
type Result struct {
	// Version is the Raft index of the command, and the State version
	// once it is applied (also when it failed: the state is unchanged
	// but the version moves on).
	Version uint64
	// Err is why the command was refused, a *kerr.Error wrapped with a
	// message (errors.Is(err, kerr.TopicAlreadyExists)); nil on success.
	// The state is unchanged when Err is set.
	Err error
	// ProducerIDs is the block AllocateProducerIDBlock reserved.
	ProducerIDs ProducerIDBlock
	// Recorded counts the changes RecordLeaders applied.
	Recorded int
}

// ProducerIDBlock is a range of producer ids [First, First+Size) reserved
// for one node.
type ProducerIDBlock struct {
	NodeID int32
	First  int64
	Size   int64
}

// Apply returns the state after cmd is applied at Raft index version, and
// the result. It never modifies s; on refusal the returned state is s
// with only Version moved. It is deterministic: the same state and
// command give the same state and result on every node.
//
// cmd may be a command value or a pointer to one (Decode returns pointers).
func (s *State) Apply(version uint64, cmd Command) (*State, Result) {
	if s == nil {
		s = Empty()
	}
	next, res, err := s.apply(pointerTo(cmd))
	res.Version = version
	if err != nil {
		res.Err = err
		next = s.clone()
	}
	next.Version = version
	return next, res
}

// apply returns a new state with cmd applied, or an error and no state.
func (s *State) apply(cmd Command) (*State, Result, error) {
	if _, ok := cmd.(*InitCluster); !ok && !s.Initialized() {
		return nil, Result{}, fmt.Errorf("metadata not initialised: %s before init_cluster: %w", opOf(cmd), kerr.InvalidRequest)
	}
	switch c := cmd.(type) {
	case *InitCluster:
		return s.initCluster(c)
	case *RegisterNode:
		return s.registerNode(c)
	case *MarkNodeLeaving:
		return s.markNodeLeaving(c)
	case *RemoveNode:
		return s.removeNode(c)
	case *CreateTopic:
		return s.createTopic(c)
	case *DeleteTopic:
		return s.deleteTopic(c)
	case *CreatePartitions:
		return s.createPartitions(c)
	case *AlterTopicConfigs:
		return s.alterTopicConfigs(c)
	case *AlterBrokerConfigs:
		return s.alterBrokerConfigs(c)
	case *AlterGroupConfigs:
		return s.alterGroupConfigs(c)
	case *AllocateProducerIDBlock:
		return s.allocateProducerIDBlock(c)
	case *ReassignPartition:
		return s.reassignPartition(c)
	case *AlterClientQuotas:
		return s.alterClientQuotas(c)
	case *RecordLeaders:
		return s.recordLeaders(c)
	case *AlterReassignment:
		return s.alterReassignment(c)
	case *CompleteReassignment:
		return s.completeReassignment(c)
	}
	return nil, Result{}, fmt.Errorf("command %T is not one this version applies: %w", cmd, kerr.InvalidRequest)
}

// pointerTo returns cmd as a pointer to its command type.
func pointerTo(cmd Command) Command {
	if cmd == nil {
		return nil
	}
	v := reflect.ValueOf(cmd)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		return cmd
	}
	p := reflect.New(v.Type())
	p.Elem().Set(v)
	return p.Interface().(Command)
}

func opOf(cmd Command) string {
	if cmd == nil {
		return "nil command"
	}
	return cmd.op()
}

func (s *State) initCluster(c *InitCluster) (*State, Result, error) {
	if s.Initialized() {
		return nil, Result{}, fmt.Errorf("cluster already initialised with id %s: %w", s.ClusterID, kerr.InvalidRequest)
	}
	if c.ClusterID == "" {
		return nil, Result{}, fmt.Errorf("init_cluster without a cluster id: %w", kerr.InvalidRequest)
	}
	if c.NextProducerID < 0 {
		return nil, Result{}, fmt.Errorf("next producer id %d is negative: %w", c.NextProducerID, kerr.InvalidRequest)
	}
	next := Empty()
	next.ClusterID = c.ClusterID
	next.NextProducerID = c.NextProducerID
	for _, n := range c.Nodes {
		n.State = NodeActive
		if err := next.checkNewNode(n); err != nil {
			return nil, Result{}, err
		}
		next.Nodes[n.ID] = n
	}
	for _, t := range c.Topics {
		if t == nil {
			return nil, Result{}, fmt.Errorf("init_cluster with a null topic: %w", kerr.InvalidRequest)
		}
		assignment := make([][]int32, len(t.Partitions))
		for i, p := range t.Partitions {
			assignment[i] = p.Replicas
		}
		if err := next.checkNewTopic(t.Name, t.ID, assignment); err != nil {
			return nil, Result{}, err
		}
		nt := &Topic{Name: t.Name, ID: t.ID, Internal: t.Internal, Configs: copyConfigs(t.Configs), Partitions: copyAssignment(assignment)}
		next.Topics[nt.Name] = nt
		next.topicsByID[nt.ID] = nt
	}
	next.Brokers.Default = copyConfigs(c.DefaultConfigs)
	for id, configs := range c.NodeConfigs {
		if id < 0 {
			return nil, Result{}, fmt.Errorf("broker configs for node %d: node ids are not negative: %w", id, kerr.InvalidRequest)
		}
		if len(configs) > 0 {
			next.Brokers.Nodes[id] = copyConfigs(configs)
		}
	}
	return next, Result{}, nil
}

// checkNewNode validates a node that is not registered yet.
func (s *State) checkNewNode(n Node) error {
	if n.ID < 0 {
		return fmt.Errorf("node id %d is negative: %w", n.ID, kerr.InvalidRequest)
	}
	if n.RaftAddress == "" || n.Host == "" || n.Port <= 0 || n.Port > math.MaxUint16 {
		return fmt.Errorf("node %d needs a Raft address and a Kafka host and port 1-65535 (have %q, %q, %d): %w", n.ID, n.RaftAddress, n.Host, n.Port, kerr.InvalidRequest)
	}
	if old, ok := s.Nodes[n.ID]; ok {
		return fmt.Errorf("node id %d is already registered by the node at Raft address %s; give this node another node.id: %w", n.ID, old.RaftAddress, kerr.DuplicateBrokerRegistration)
	}
	for _, old := range s.Nodes {
		if old.RaftAddress == n.RaftAddress {
			return fmt.Errorf("Raft address %s is already node %d's; node %d must use another: %w", n.RaftAddress, old.ID, n.ID, kerr.DuplicateBrokerRegistration)
		}
	}
	return nil
}

func (s *State) registerNode(c *RegisterNode) (*State, Result, error) {
	if c.ClusterID != "" && c.ClusterID != s.ClusterID {
		return nil, Result{}, fmt.Errorf("node %d belongs to cluster %s, this is cluster %s; start it with an empty data dir to join: %w", c.Node.ID, c.ClusterID, s.ClusterID, kerr.InconsistentClusterID)
	}
	n := c.Node
	n.State = NodeActive
	if old, ok := s.Nodes[n.ID]; ok && old.RaftAddress == n.RaftAddress {
		// The same node again (a restart, a new advertised address):
		// update in place.
		n.State = old.State
		rest := s.clone()
		delete(rest.Nodes, n.ID)
		if err := rest.checkNewNode(n); err != nil {
			return nil, Result{}, err
		}
		rest.Nodes[n.ID] = n
		return rest, Result{}, nil
	}
	if err := s.checkNewNode(n); err != nil {
		return nil, Result{}, err
	}
	next := s.clone()
	next.Nodes[n.ID] = n
	return next, Result{}, nil
}

func (s *State) markNodeLeaving(c *MarkNodeLeaving) (*State, Result, error) {
	n, ok := s.Nodes[c.NodeID]
	if !ok {
		return nil, Result{}, fmt.Errorf("node %d is not registered: %w", c.NodeID, kerr.BrokerIDNotRegistered)
	}
	next := s.clone()
	n.State = NodeLeaving
	next.Nodes[n.ID] = n
	return next, Result{}, nil
}

func (s *State) removeNode(c *RemoveNode) (*State, Result, error) {
	n, ok := s.Nodes[c.NodeID]
	if !ok {
		return nil, Result{}, fmt.Errorf("node %d is not registered: %w", c.NodeID, kerr.BrokerIDNotRegistered)
	}
	if n.State != NodeLeaving {
		return nil, Result{}, fmt.Errorf("node %d is %s; mark it leaving and move its replicas first: %w", c.NodeID, n.State, kerr.InvalidRequest)
	}
	if r := s.ReplicasOn(c.NodeID); r > 0 {
		return nil, Result{}, fmt.Errorf("node %d still holds replicas of %d partition(s); reassign them first: %w", c.NodeID, r, kerr.ReassignmentInProgress)
	}
	next := s.clone()
	delete(next.Nodes, c.NodeID)
	delete(next.Brokers.Nodes, c.NodeID)
	return next, Result{}, nil
}

// ValidateTopicName returns kerr.InvalidTopicException with a message for a
// name Kafka would refuse.
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("topic name is empty: %w", kerr.InvalidTopicException)
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q is not allowed: %w", name, kerr.InvalidTopicException)
	case len(name) > maxTopicNameLength:
		return fmt.Errorf("topic name is %d characters, the limit is %d: %w", len(name), maxTopicNameLength, kerr.InvalidTopicException)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic name %q has %q; use only ASCII letters, digits, '.', '_' and '-': %w", name, r, kerr.InvalidTopicException)
		}
	}
	return nil
}

// checkNewTopic validates a topic to add to s.
func (s *State) checkNewTopic(name string, id TopicID, assignment [][]int32) error {
	if err := ValidateTopicName(name); err != nil {
		return err
	}
	if _, ok := s.Topics[name]; ok {
		return fmt.Errorf("topic %q already exists: %w", name, kerr.TopicAlreadyExists)
	}
	if id.IsZero() {
		return fmt.Errorf("topic %q has the zero id: %w", name, kerr.InvalidRequest)
	}
	if other, ok := s.topicsByID[id]; ok {
		return fmt.Errorf("topic id %s is already topic %q's: %w", id, other.Name, kerr.InconsistentTopicID)
	}
	if len(assignment) < 1 || len(assignment) > MaxPartitions {
		return fmt.Errorf("partition count %d must be between 1 and %d: %w", len(assignment), MaxPartitions, kerr.InvalidPartitions)
	}
	return s.checkAssignment(name, 0, assignment)
}

// checkAssignment checks replica lists of partitions first, first+1, ...
func (s *State) checkAssignment(topic string, first int32, assignment [][]int32) error {
	for i, rs := range assignment {
		if err := s.checkReplicas(rs); err != nil {
			return fmt.Errorf("partition %s-%d: %w", topic, first+int32(i), err)
		}
	}
	return nil
}

// checkReplicas checks one partition's replica list: non-empty, no
// repeats, every node registered.
func (s *State) checkReplicas(replicas []int32) error {
	if len(replicas) == 0 {
		return fmt.Errorf("no replicas: %w", kerr.InvalidReplicaAssignment)
	}
	for i, r := range replicas {
		if _, ok := s.Nodes[r]; !ok {
			return fmt.Errorf("replica %d is not a registered node: %w", r, kerr.InvalidReplicaAssignment)
		}
		for _, o := range replicas[:i] {
			if o == r {
				return fmt.Errorf("replica %d is listed twice: %w", r, kerr.InvalidReplicaAssignment)
			}
		}
	}
	return nil
}

func (s *State) createTopic(c *CreateTopic) (*State, Result, error) {
	if err := s.checkNewTopic(c.Name, c.ID, c.Assignment); err != nil {
		return nil, Result{}, err
	}
	next := s.clone()
	t := &Topic{Name: c.Name, ID: c.ID, Internal: c.Internal, Configs: copyConfigs(c.Configs), Partitions: copyAssignment(c.Assignment)}
	next.Topics[t.Name] = t
	next.topicsByID[t.ID] = t
	return next, Result{}, nil
}

// topic returns the named topic or kerr.UnknownTopicOrPartition.
func (s *State) topic(name string) (*Topic, error) {
	t, ok := s.Topics[name]
	if !ok {
		return nil, fmt.Errorf("topic %q does not exist: %w", name, kerr.UnknownTopicOrPartition)
	}
	return t, nil
}

func (s *State) deleteTopic(c *DeleteTopic) (*State, Result, error) {
	t, err := s.topic(c.Name)
	if err != nil {
		return nil, Result{}, err
	}
	if !c.ID.IsZero() && c.ID != t.ID {
		return nil, Result{}, fmt.Errorf("topic %q has id %s, not %s: %w", c.Name, t.ID, c.ID, kerr.UnknownTopicID)
	}
	if t.Internal {
		return nil, Result{}, fmt.Errorf("topic %q is internal: %w", c.Name, kerr.InvalidTopicException)
	}
	next := s.clone()
	delete(next.Topics, t.Name)
	delete(next.topicsByID, t.ID)
	return next, Result{}, nil
}

func (s *State) createPartitions(c *CreatePartitions) (*State, Result, error) {
	t, err := s.topic(c.Topic)
	if err != nil {
		return nil, Result{}, err
	}
	have := int32(len(t.Partitions))
	if c.Count <= have || c.Count > MaxPartitions {
		return nil, Result{}, fmt.Errorf("topic %q has %d partitions; the new count %d must be larger and at most %d: %w", c.Topic, have, c.Count, MaxPartitions, kerr.InvalidPartitions)
	}
	if int32(len(c.Assignment)) != c.Count-have {
		return nil, Result{}, fmt.Errorf("topic %q: %d replica lists for %d new partitions: %w", c.Topic, len(c.Assignment), c.Count-have, kerr.InvalidReplicaAssignment)
	}
	if err := s.checkAssignment(c.Topic, have, c.Assignment); err != nil {
		return nil, Result{}, err
	}
	next := s.clone()
	nt := *t
	nt.Partitions = append(append(make([]Partition, 0, c.Count), t.Partitions...), copyAssignment(c.Assignment)...)
	next.Topics[nt.Name] = &nt
	next.topicsByID[nt.ID] = &nt
	return next, Result{}, nil
}

func (s *State) alterTopicConfigs(c *AlterTopicConfigs) (*State, Result, error) {
	t, err := s.topic(c.Topic)
	if err != nil {
		return nil, Result{}, err
	}
	next := s.clone()
	nt := *t
	nt.Configs = copyConfigs(c.Configs)
	next.Topics[nt.Name] = &nt
	next.topicsByID[nt.ID] = &nt
	return next, Result{}, nil
}

func (s *State) alterBrokerConfigs(c *AlterBrokerConfigs) (*State, Result, error) {
	next := s.clone()
	switch {
	case c.NodeID == DefaultBrokerNode:
		next.Brokers.Default = copyConfigs(c.Configs)
	case c.NodeID < 0:
		return nil, Result{}, fmt.Errorf("broker configs for node %d: node ids are not negative: %w", c.NodeID, kerr.InvalidRequest)
	case len(c.Configs) == 0:
		delete(next.Brokers.Nodes, c.NodeID)
	default:
		next.Brokers.Nodes[c.NodeID] = copyConfigs(c.Configs)
	}
	return next, Result{}, nil
}

func (s *State) alterGroupConfigs(c *AlterGroupConfigs) (*State, Result, error) {
	if c.Group == "" {
		return nil, Result{}, fmt.Errorf("group configs need a group id: %w", kerr.InvalidRequest)
	}
	next := s.clone()
	next.GroupConfigs = make(map[string]map[string]string, len(s.GroupConfigs)+1)
	for g, m := range s.GroupConfigs {
		next.GroupConfigs[g] = m
	}
	if len(c.Configs) == 0 {
		delete(next.GroupConfigs, c.Group)
	} else {
		next.GroupConfigs[c.Group] = copyConfigs(c.Configs)
	}
	return next, Result{}, nil
}

func (s *State) allocateProducerIDBlock(c *AllocateProducerIDBlock) (*State, Result, error) {
	if c.Size < 1 || c.Size > maxProducerIDBlock {
		return nil, Result{}, fmt.Errorf("producer id block size %d must be between 1 and %d: %w", c.Size, maxProducerIDBlock, kerr.InvalidRequest)
	}
	if s.NextProducerID > math.MaxInt64-c.Size {
		return nil, Result{}, fmt.Errorf("producer ids exhausted at %d: %w", s.NextProducerID, kerr.UnknownServerError)
	}
	next := s.clone()
	block := ProducerIDBlock{NodeID: c.NodeID, First: s.NextProducerID, Size: c.Size}
	next.NextProducerID += c.Size
	return next, Result{ProducerIDs: block}, nil
}

func (s *State) reassignPartition(c *ReassignPartition) (*State, Result, error) {
	t, err := s.topic(c.Topic)
	if err != nil {
		return nil, Result{}, err
	}
	if c.Partition < 0 || int(c.Partition) >= len(t.Partitions) {
		return nil, Result{}, fmt.Errorf("topic %q has no partition %d: %w", c.Topic, c.Partition, kerr.UnknownTopicOrPartition)
	}
	if err := s.checkReplicas(c.Replicas); err != nil {
		return nil, Result{}, fmt.Errorf("partition %s-%d: %w", c.Topic, c.Partition, err)
	}
	next := s.clone()
	nt := *t
	nt.Partitions = append([]Partition(nil), t.Partitions...)
	nt.Partitions[c.Partition] = Partition{Replicas: append([]int32(nil), c.Replicas...), Moved: true}
	next.Topics[nt.Name] = &nt
	next.topicsByID[nt.ID] = &nt
	return next, Result{}, nil
}

func (s *State) alterClientQuotas(c *AlterClientQuotas) (*State, Result, error) {
	for _, ch := range c.Changes {
		if err := quota.Validate(ch); err != nil {
			return nil, Result{}, fmt.Errorf("%w: %w", err, kerr.InvalidRequest)
		}
		if ch.Entity.User == nil && ch.Entity.ClientID == nil {
			return nil, Result{}, fmt.Errorf("a client quota entity names no user and no client id: %w", kerr.InvalidRequest)
		}
	}
	next := s.clone()
	next.Quotas = s.Quotas.Apply(c.Changes)
	return next, Result{}, nil
}
