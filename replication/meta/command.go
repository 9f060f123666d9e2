package meta

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/sluice-io/sluice/replication/quota"
)

// commandVersion is the envelope version this package writes and reads.
const commandVersion = 1

// maxCommandSize bounds an encoded command Decode accepts, before any
// allocation it would drive; the largest legitimate command (InitCluster
// from a big legacy cluster.json) is far below it.
const maxCommandSize = 64 << 20

var (
	// ErrMalformedCommand reports bytes that are not a command this
	// version understands: bad JSON, an unknown op or field, or an
	// envelope version it does not speak.
	ErrMalformedCommand = errors.New("meta: malformed command")
)

// Command is one change to the metadata. The concrete types below are the
// complete list; the interface is sealed.
type Command interface {
	// op names the command in its encoding.
	op() string
}

// InitCluster is the first command of every cluster: it fixes the cluster
// id and seeds the state (the initial members, and for a data dir written
// by the single-node version its topics, configs and producer ids). It
// fails once the cluster is initialised, so of several racing ones exactly
// the first takes effect.
type InitCluster struct {
	ClusterID string `json:"cluster_id"`
	// Nodes are registered active, whatever their State says.
	Nodes          []Node                      `json:"nodes"`
	Topics         []*Topic                    `json:"topics,omitempty"`
	DefaultConfigs map[string]string           `json:"default_configs,omitempty"`
	NodeConfigs    map[int32]map[string]string `json:"node_configs,omitempty"`
	NextProducerID int64                       `json:"next_producer_id,omitempty"`
}

// RegisterNode adds a node, or updates the addresses and rack of a node
// re-registering from the same Raft address. It is refused when ClusterID
// is set and is not the cluster's (the node's data dir belongs to another
// cluster: kerr.InconsistentClusterID), and when the node id or the Raft
// address is already another node's (kerr.DuplicateBrokerRegistration).
// A node re-registering keeps its state: a leaving node stays leaving.
type RegisterNode struct {
	// ClusterID is the cluster the node's data dir belongs to; "" for a
	// fresh node.
	ClusterID string `json:"cluster_id"`
	Node      Node   `json:"node"`
}

// MarkNodeLeaving moves a node to NodeLeaving: placement stops choosing
// it, and its replicas are to be moved away before RemoveNode.
type MarkNodeLeaving struct {
	NodeID int32 `json:"node_id"`
}

// RemoveNode forgets a node. It is refused while the node is still a
// replica of any partition, and while it is still active (mark it leaving
// first), so no partition is left pointing at a node that is gone.
type RemoveNode struct {
	NodeID int32 `json:"node_id"`
}

// CreateTopic creates a topic with the assignment its proposer chose
// (usually with (*State).Place) from the state it saw. Apply checks the
// assignment against the state it applies to: every replica registered,
// none repeated within a partition.
type CreateTopic struct {
	Name     string            `json:"name"`
	ID       TopicID           `json:"id"`
	Internal bool              `json:"internal,omitempty"`
	Configs  map[string]string `json:"configs,omitempty"`
	// Assignment holds one replica list per partition, in partition order.
	Assignment [][]int32 `json:"assignment"`
}

// DeleteTopic deletes a topic. Internal topics cannot be deleted. When ID
// is set it must match, so a delete decided against one incarnation of a
// name never deletes a topic created again under it.
type DeleteTopic struct {
	Name string  `json:"name"`
	ID   TopicID `json:"id,omitzero"`
}

// CreatePartitions appends partitions to a topic. Count is the new total
// (as in Kafka's CreatePartitions); Assignment holds the replicas of the
// new partitions only, Count minus the current count of them.
type CreatePartitions struct {
	Topic      string    `json:"topic"`
	Count      int32     `json:"count"`
	Assignment [][]int32 `json:"assignment"`
}

// AlterTopicConfigs replaces a topic's config overrides whole. The
// proposer validates names and values (package replication/configs);
// Apply only stores them, so a config this version does not know, from a
// newer proposer, is kept rather than refused.
type AlterTopicConfigs struct {
	Topic   string            `json:"topic"`
	Configs map[string]string `json:"configs"`
}

// AlterBrokerConfigs replaces the dynamic configs of one broker, or of the
// cluster default when NodeID is DefaultBrokerNode. An empty map removes
// them.
type AlterBrokerConfigs struct {
	NodeID  int32             `json:"node_id"`
	Configs map[string]string `json:"configs"`
}

// AlterGroupConfigs replaces the configs of one group (the GROUP config
// resource); an empty map removes them. The proposer validates names and
// values (package replication/configs); Apply only stores them.
type AlterGroupConfigs struct {
	Group   string            `json:"group"`
	Configs map[string]string `json:"configs"`
}

// DefaultBrokerNode is the NodeID of AlterBrokerConfigs that means the
// cluster default (Kafka's BROKER resource with an empty name).
const DefaultBrokerNode int32 = -1

// AllocateProducerIDBlock reserves Size producer ids for NodeID; the
// result carries the block. Ids are never handed out twice.
type AllocateProducerIDBlock struct {
	NodeID int32 `json:"node_id"`
	Size   int64 `json:"size"`
}

// ReassignPartition replaces one partition's replica list. Moving the data
// (adding the new replicas to the partition's Raft group, removing the old
// ones) is the nodes' reaction, outside Apply.
type ReassignPartition struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"`
}

// AlterClientQuotas changes client quotas (KIP-546), each change already
// validated by its proposer (quota.Validate); Apply validates again and
// refuses the whole command if one is invalid.
type AlterClientQuotas struct {
	Changes []quota.Change `json:"changes"`
}

func (AlterClientQuotas) op() string { return "alter_client_quotas" }

func (InitCluster) op() string             { return "init_cluster" }
func (RegisterNode) op() string            { return "register_node" }
func (MarkNodeLeaving) op() string         { return "mark_node_leaving" }
func (RemoveNode) op() string              { return "remove_node" }
func (CreateTopic) op() string             { return "create_topic" }
func (DeleteTopic) op() string             { return "delete_topic" }
func (CreatePartitions) op() string        { return "create_partitions" }
func (AlterTopicConfigs) op() string       { return "alter_topic_configs" }
func (AlterBrokerConfigs) op() string      { return "alter_broker_configs" }
func (AlterGroupConfigs) op() string       { return "alter_group_configs" }
func (AllocateProducerIDBlock) op() string { return "allocate_producer_id_block" }
func (ReassignPartition) op() string       { return "reassign_partition" }
func (AlterReassignment) op() string       { return "alter_reassignment" }
func (CompleteReassignment) op() string    { return "complete_reassignment" }

// newCommand returns a pointer to a zero command of the named op.
func newCommand(op string) (Command, bool) {
	switch op {
	case "init_cluster":
		return &InitCluster{}, true
	case "register_node":
		return &RegisterNode{}, true
	case "mark_node_leaving":
		return &MarkNodeLeaving{}, true
	case "remove_node":
		return &RemoveNode{}, true
	case "create_topic":
		return &CreateTopic{}, true
	case "delete_topic":
		return &DeleteTopic{}, true
	case "create_partitions":
		return &CreatePartitions{}, true
	case "alter_topic_configs":
		return &AlterTopicConfigs{}, true
	case "alter_broker_configs":
		return &AlterBrokerConfigs{}, true
	case "alter_group_configs":
		return &AlterGroupConfigs{}, true
	case "allocate_producer_id_block":
		return &AllocateProducerIDBlock{}, true
	case "reassign_partition":
		return &ReassignPartition{}, true
	case "alter_client_quotas":
		return &AlterClientQuotas{}, true
	case "record_leaders":
		return &RecordLeaders{}, true
	case "alter_reassignment":
		return &AlterReassignment{}, true
	case "complete_reassignment":
		return &CompleteReassignment{}, true
	}
	return nil, false
}

// envelope is the encoding of every command (see doc.go, Formats).
type envelope struct {
	Version int             `json:"v"`
	Op      string          `json:"op"`
	Args    json.RawMessage `json:"args"`
}

// Encode returns the encoding of cmd, a value or pointer of one of the
// command types.
func Encode(cmd Command) ([]byte, error) {
	if cmd == nil {
		return nil, fmt.Errorf("encode nil command: %w", ErrMalformedCommand)
	}
	args, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", cmd.op(), err)
	}
	return json.Marshal(envelope{Version: commandVersion, Op: cmd.op(), Args: args})
}

// Decode parses an encoded command; it returns a pointer to one of the
// command types. Unknown ops, unknown fields, trailing data and other
// envelope versions are ErrMalformedCommand: a command from a newer
// version is refused rather than half understood.
func Decode(b []byte) (Command, error) {
	if len(b) > maxCommandSize {
		return nil, fmt.Errorf("command is %d bytes, the limit is %d: %w", len(b), maxCommandSize, ErrMalformedCommand)
	}
	var env envelope
	if err := strictUnmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("decode command envelope: %v: %w", err, ErrMalformedCommand)
	}
	if env.Version != commandVersion {
		return nil, fmt.Errorf("command envelope version %d, this node speaks %d: %w", env.Version, commandVersion, ErrMalformedCommand)
	}
	cmd, ok := newCommand(env.Op)
	if !ok {
		return nil, fmt.Errorf("unknown command op %q: %w", env.Op, ErrMalformedCommand)
	}
	if err := strictUnmarshal(env.Args, cmd); err != nil {
		return nil, fmt.Errorf("decode %s: %v: %w", env.Op, err, ErrMalformedCommand)
	}
	return cmd, nil
}

// strictUnmarshal decodes exactly one JSON value into v, refusing unknown
// fields and trailing data.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the value")
	}
	return nil
}
