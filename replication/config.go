package replication

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication/cleaner"
	"github.com/sluice-io/sluice/replication/configs"
	"github.com/sluice-io/sluice/replication/meta"
	"github.com/sluice-io/sluice/replication/raftgroup"
)

// Config describes this node and the defaults for the topics it creates.
type Config struct {
	// NodeID is this broker's id in Metadata and in the metadata Raft
	// group. Corresponds to node.id. Default 1.
	NodeID int32
	// DataDir holds meta/ and topics/. Default "./data".
	DataDir string
	// AdvertisedHost and AdvertisedPort are what Metadata tells clients to
	// connect to. Corresponds to advertised.listeners. Default
	// 127.0.0.1:9092.
	AdvertisedHost string
	AdvertisedPort int32
	// DefaultPartitions is the partition count of auto-created topics and
	// of CreateTopics requests that say -1. Corresponds to num.partitions.
	// Default 1.
	DefaultPartitions int32
	// AutoCreateTopics creates unknown topics on Metadata and Produce.
	// Corresponds to auto.create.topics.enable. Default true.
	AutoCreateTopics bool
	// Partition holds the broker-wide defaults of topic configs
	// (log.segment.bytes, log.roll.ms, message.max.bytes, ...).
	Partition partition.Config
	// Flush says when logs are fsynced. The zero Interval (default) makes
	// every acknowledged write durable.
	Flush log.FlushConfig
	// Cleaner schedules retention and compaction.
	Cleaner cleaner.Config
	// MinFreeBytes is the free space, in bytes, the data dir's filesystem
	// must keep: while it has less, produce and other appends (group
	// commits) are refused with KAFKA_STORAGE_ERROR, so no segment is
	// half written when the disk fills, and accepted again once a check
	// sees space come back. Corresponds to storage.min.free.bytes (a
	// dynamic broker config). Default DefaultMinFreeBytes (1 GiB); 0
	// disables the check.
	MinFreeBytes int64
	// SpaceCheckInterval is how often the data dir's free space is read
	// (statfs), and so how long a filled or freed disk takes to be
	// noticed. Default DefaultSpaceCheckInterval (1s).
	SpaceCheckInterval time.Duration
	// ShareGroupDefaults are the broker's share group defaults, under
	// every group's GROUP configs (Cluster.ShareGroupConfig): its
	// RecordLockDuration corresponds to group.share.record.lock.duration.ms
	// (Kafka's default 30 s), DeliveryCountLimit to
	// group.share.delivery.count.limit (5), SessionTimeout and
	// HeartbeatInterval to group.share.session.timeout.ms and
	// group.share.heartbeat.interval.ms (reported by DescribeConfigs; the
	// group coordinator's own config applies them). Zero fields mean
	// Kafka's defaults.
	ShareGroupDefaults configs.ShareGroup
	// DeadLetterTopicPrefix is the static errors.deadletterqueue.topic.name.prefix
	// (KIP-1191; DefaultConfig: Kafka's "dlq."): a share group's
	// dead-letter topic must start with it; "" allows any name. A
	// dynamic broker config overrides it.
	DeadLetterTopicPrefix string
	// DeadLetterAutoCreate is the static
	// errors.deadletterqueue.auto.create.topics.enable (KIP-1191, default
	// false): a missing dead-letter topic is created on its first dead
	// letter. A dynamic broker config overrides it.
	DeadLetterAutoCreate bool

	// RaftAddress is this node's address in the metadata group, the one
	// its peers dial (raft.advertised.address, else raft.listen). ""
	// (default) means a single node with an in-process transport: it is
	// given the address "node-<id>".
	RaftAddress string
	// InitialMembers is the initial member list of the metadata group
	// (cluster.initial.members), this node included; every other member
	// needs its Kafka advertised address (Host, Port), registered in the
	// metadata when the cluster is initialised. Empty (default) means this
	// node alone: it bootstraps itself as the only voter.
	InitialMembers []meta.Member
	// JoinAddress is the Kafka host:port of any member of a running
	// cluster this node joins (cluster.join): it starts with no Raft
	// configuration and asks that cluster's controller to add it. Used
	// only while the data dir belongs to no cluster; needs RaftAddress and
	// no InitialMembers. Default "" (none).
	JoinAddress string
	// Meta holds the metadata group's Raft timing and snapshot settings;
	// its Self and InitialMembers are filled in by Open from the fields
	// above. Default meta.DefaultConfig().
	Meta meta.Config
	// PartitionRaft holds the partition Raft groups' timing, batching and
	// snapshot settings (raftgroup.Config). A group whose only replica is
	// this node elects itself at once, whatever its timeouts.
	PartitionRaft raftgroup.Config

	// AutoLeaderRebalance hands the leadership of partitions back to their
	// preferred replica when too many are led elsewhere (after a node
	// returned). Corresponds to auto.leader.rebalance.enable. Default
	// true.
	AutoLeaderRebalance bool
	// LeaderImbalanceCheckInterval is how often each node checks the
	// partitions it prefers. Corresponds to
	// leader.imbalance.check.interval.seconds. Default 300s.
	LeaderImbalanceCheckInterval time.Duration
	// LeaderImbalancePerBrokerPercentage is the share of a node's
	// preferred partitions, in percent, that may be led elsewhere before
	// it restores them. Corresponds to
	// leader.imbalance.per.broker.percentage. Default 10.
	LeaderImbalancePerBrokerPercentage int
}

// DefaultConfig returns a single node on 127.0.0.1:9092 storing under
// ./data.
func DefaultConfig() Config {
	return Config{
		NodeID:                1,
		DataDir:               "./data",
		AdvertisedHost:        "127.0.0.1",
		AdvertisedPort:        9092,
		DefaultPartitions:     1,
		AutoCreateTopics:      true,
		Partition:             partition.DefaultConfig(),
		Cleaner:               cleaner.DefaultConfig(),
		MinFreeBytes:          DefaultMinFreeBytes,
		SpaceCheckInterval:    DefaultSpaceCheckInterval,
		DeadLetterTopicPrefix: configs.DefaultDeadLetterTopicPrefix,
		Meta:                  meta.DefaultConfig(),
		PartitionRaft:         raftgroup.DefaultConfig(),

		AutoLeaderRebalance:                true,
		LeaderImbalanceCheckInterval:       300 * time.Second,
		LeaderImbalancePerBrokerPercentage: 10,
	}
}

// Validate reports a Config that cannot work.
func (c Config) Validate() error {
	switch {
	case c.NodeID < 0:
		return fmt.Errorf("replication: node.id %d is negative", c.NodeID)
	case c.DataDir == "":
		return errors.New("replication: data.dir is empty")
	case c.AdvertisedHost == "":
		return errors.New("replication: advertised host is empty")
	case c.AdvertisedPort <= 0 || c.AdvertisedPort > 65535:
		return fmt.Errorf("replication: advertised port %d is not a TCP port", c.AdvertisedPort)
	case c.DefaultPartitions < 1:
		return fmt.Errorf("replication: num.partitions %d must be at least 1", c.DefaultPartitions)
	case c.Flush.Interval < 0:
		return fmt.Errorf("replication: flush interval %s is negative", c.Flush.Interval)
	case c.MinFreeBytes < 0:
		return fmt.Errorf("replication: storage.min.free.bytes %d is negative; 0 disables the free-space check", c.MinFreeBytes)
	case c.SpaceCheckInterval <= 0:
		return fmt.Errorf("replication: free-space check interval %s must be positive", c.SpaceCheckInterval)
	case c.JoinAddress != "" && (c.RaftAddress == "" || len(c.InitialMembers) > 0):
		return errors.New("replication: cluster.join needs raft.listen and no cluster.initial.members")
	case c.AutoLeaderRebalance && c.LeaderImbalanceCheckInterval <= 0:
		return fmt.Errorf("replication: leader.imbalance.check.interval.seconds must be positive")
	case c.LeaderImbalancePerBrokerPercentage < 0 || c.LeaderImbalancePerBrokerPercentage > 100:
		return fmt.Errorf("replication: leader.imbalance.per.broker.percentage %d is not in [0, 100]", c.LeaderImbalancePerBrokerPercentage)
	}
	if err := c.Cleaner.Validate(); err != nil {
		return err
	}
	if err := c.PartitionRaft.Validate(); err != nil {
		return err
	}
	for _, m := range c.InitialMembers {
		if m.ID != c.NodeID && (m.Host == "" || m.Port <= 0 || m.Port > 65535) {
			return fmt.Errorf("replication: initial member %d has no Kafka address; give it as %d@%s/kafka-host:port", m.ID, m.ID, m.RaftAddress)
		}
	}
	if err := c.metaConfig().Validate(); err != nil {
		return err
	}
	return c.Partition.Validate()
}

// self returns this node as a member of the metadata group.
func (c Config) self() meta.Member {
	addr := c.RaftAddress
	if addr == "" {
		addr = "node-" + strconv.Itoa(int(c.NodeID))
	}
	return meta.Member{ID: c.NodeID, RaftAddress: addr, Host: c.AdvertisedHost, Port: c.AdvertisedPort}
}

// singleNodeTimeout replaces Raft's timeouts in a group whose only voter
// is this node: with no peer to hear from, they only delay its election
// at start (Raft waits a heartbeat timeout before campaigning), and a
// lone voter never loses its lease.
const singleNodeTimeout = 50 * time.Millisecond

// metaConfig returns the metadata group's configuration: Meta with this
// node and the initial members (this node alone when none are listed).
func (c Config) metaConfig() meta.Config {
	mc := c.Meta
	mc.Self = c.self()
	mc.InitialMembers = append([]meta.Member(nil), c.InitialMembers...)
	if len(mc.InitialMembers) == 0 && c.JoinAddress == "" {
		mc.InitialMembers = []meta.Member{mc.Self}
	}
	for i, m := range mc.InitialMembers {
		if m.ID == mc.Self.ID {
			// The list names peers by id and Raft address; this node's
			// Kafka address is its own config's.
			mc.InitialMembers[i].Host, mc.InitialMembers[i].Port = mc.Self.Host, mc.Self.Port
		}
	}
	if len(mc.InitialMembers) == 1 && mc.InitialMembers[0].ID == mc.Self.ID {
		mc.HeartbeatTimeout = min(mc.HeartbeatTimeout, singleNodeTimeout)
		mc.ElectionTimeout = min(mc.ElectionTimeout, singleNodeTimeout)
		mc.LeaderLeaseTimeout = min(mc.LeaderLeaseTimeout, singleNodeTimeout)
	}
	return mc
}

// broker returns the settings the broker configs read and set.
func (c Config) broker() configs.Broker {
	return configs.Broker{
		NodeID: c.NodeID, DataDir: c.DataDir, AdvertisedHost: c.AdvertisedHost, AdvertisedPort: c.AdvertisedPort,
		DefaultPartitions: c.DefaultPartitions, AutoCreateTopics: c.AutoCreateTopics,
		Partition: c.Partition, Cleaner: c.Cleaner, MinFreeBytes: c.MinFreeBytes,
		DeadLetterTopicPrefix: c.DeadLetterTopicPrefix, DeadLetterAutoCreate: c.DeadLetterAutoCreate,
	}
}

// SetAdvertisedAddress parses "host:port" into AdvertisedHost and
// AdvertisedPort.
func (c *Config) SetAdvertisedAddress(address string) error {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("replication: advertised address %q: %w", address, err)
	}
	n, err := strconv.ParseInt(port, 10, 32)
	if err != nil {
		return fmt.Errorf("replication: advertised address %q: port: %w", address, err)
	}
	c.AdvertisedHost, c.AdvertisedPort = host, int32(n)
	return nil
}

// Options carries collaborators and test seams.
type Options struct {
	// Transport carries the metadata group's Raft RPCs (a
	// replication/transport Mux's Transport("meta"), or one of raft's);
	// the group owns and closes it. Nil means an in-memory transport,
	// which only a single node (no other initial member) can use.
	Transport raft.Transport
	// GroupTransport returns the transport of a partition's Raft group
	// (a Mux's Transport(group)); the group owns and closes it. Nil means
	// an in-memory transport per group, which only a single node can use.
	GroupTransport func(group string) (raft.Transport, error)
	// Logger; nil means nop.
	Logger *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// FS is the filesystem; nil means the OS.
	FS log.FS
	// Statfs reads the data dir's free space; nil means the operating
	// system's statfs. A test seam.
	Statfs Statfs
	// SyncObserver, if set, is told of every sync the node's flusher does
	// (metrics); it is called from the flusher's goroutine and must not
	// block.
	SyncObserver log.SyncObserver
	// Peers reaches other nodes: the metadata leader, to finalise a
	// reassignment this node's partition leader finished; a partition's
	// leader, for a preferred leader election. Nil means none (a single
	// node is always its own leader).
	Peers PeerClient
	// Liveness is the node-level failure detector (the node's
	// replication/transport Mux): every registered node is watched, and
	// one it holds down is marked Broker.Down. Nil means every broker is
	// up (a single node).
	Liveness PeerLiveness
}
