package meta

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// Member is one node of the initial member list (Config.InitialMembers).
type Member struct {
	ID int32
	// RaftAddress is the node's address in the metadata group's Raft
	// configuration (what the transport is asked to dial).
	RaftAddress string
	// Host and Port are its Kafka advertised listener.
	Host string
	Port int32
	// Rack is its broker.rack; "" for none.
	Rack string
}

// node returns m as a registered active node.
func (m Member) node() Node {
	return Node{ID: m.ID, Host: m.Host, Port: m.Port, RaftAddress: m.RaftAddress, Rack: m.Rack, State: NodeActive}
}

// Config is the metadata group's configuration on one node.
type Config struct {
	// Self is this node: its id (node.id), Raft address and Kafka
	// advertised listener. Required.
	Self Member
	// InitialMembers is the initial member list. Every node started with
	// the same list, itself included, forms the cluster: each bootstraps
	// Raft with it (a no-op on restart) and the first leader registers
	// them all. Empty means this node joins a running cluster through
	// Group.Join on that cluster's leader.
	InitialMembers []Member
	// ClusterID is the cluster this node must belong to; "" accepts the
	// cluster found on disk, or has a new id generated when this node
	// initialises one. Open refuses a data dir of another cluster.
	ClusterID string

	// HeartbeatTimeout, ElectionTimeout and LeaderLeaseTimeout are Raft's
	// (hashicorp/raft Config of the same names). Defaults 1s, 1s, 500ms.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is Raft's: the longest a follower waits to learn of a
	// commit without new entries. Default 50ms.
	CommitTimeout time.Duration
	// SnapshotInterval and SnapshotThreshold: every interval, snapshot if
	// at least threshold entries were applied since the last. Defaults
	// 2m and 1024.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	// TrailingLogs is how many entries stay in the log after a snapshot,
	// so a briefly lagging follower catches up without one. Default 1024.
	TrailingLogs uint64
	// SnapshotRetain is how many snapshots stay on disk. Default 2.
	SnapshotRetain int
	// ProposeTimeout bounds waiting to enqueue a proposal and the barrier
	// a new leader waits on, when the caller's ctx has no deadline.
	// Default 10s.
	ProposeTimeout time.Duration
}

// DefaultConfig returns the defaults; Self is left for the caller.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   time.Second,
		ElectionTimeout:    time.Second,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		SnapshotInterval:   2 * time.Minute,
		SnapshotThreshold:  1024,
		TrailingLogs:       1024,
		SnapshotRetain:     2,
		ProposeTimeout:     10 * time.Second,
	}
}

// Validate checks cfg, with messages naming the setting to fix.
func (cfg Config) Validate() error {
	if cfg.Self.ID < 0 {
		return fmt.Errorf("meta: node id %d is negative", cfg.Self.ID)
	}
	if cfg.Self.RaftAddress == "" {
		return errors.New("meta: this node's Raft address is empty")
	}
	if cfg.Self.Host == "" || cfg.Self.Port <= 0 || cfg.Self.Port > math.MaxUint16 {
		return fmt.Errorf("meta: this node's Kafka advertised address %s:%d needs a host and a port 1-65535", cfg.Self.Host, cfg.Self.Port)
	}
	if len(cfg.InitialMembers) > 0 {
		found := false
		ids := map[int32]bool{}
		addrs := map[string]bool{}
		for _, m := range cfg.InitialMembers {
			if ids[m.ID] {
				return fmt.Errorf("meta: node id %d appears twice in the initial members", m.ID)
			}
			if addrs[m.RaftAddress] {
				return fmt.Errorf("meta: Raft address %s appears twice in the initial members", m.RaftAddress)
			}
			ids[m.ID], addrs[m.RaftAddress] = true, true
			if m.ID == cfg.Self.ID {
				if m.RaftAddress != cfg.Self.RaftAddress {
					return fmt.Errorf("meta: the initial members give node %d Raft address %s, this node has %s", m.ID, m.RaftAddress, cfg.Self.RaftAddress)
				}
				found = true
			}
		}
		if !found {
			return fmt.Errorf("meta: node %d is not in the initial members; list it, or list none to join a running cluster", cfg.Self.ID)
		}
	}
	rc := cfg.raftConfig()
	if err := raft.ValidateConfig(rc); err != nil {
		return fmt.Errorf("meta: %w", err)
	}
	if cfg.SnapshotRetain < 1 || cfg.ProposeTimeout <= 0 {
		return fmt.Errorf("meta: snapshot retain %d must be at least 1 and propose timeout %s positive", cfg.SnapshotRetain, cfg.ProposeTimeout)
	}
	return nil
}

// raftConfig returns the hashicorp/raft configuration for cfg, without
// logger and notification channel.
func (cfg Config) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = serverID(cfg.Self.ID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	return rc
}

// Options carries the metadata group's collaborators.
type Options struct {
	// Transport carries the metadata group's Raft RPCs to the other nodes:
	// the group's own transport (replication/transport's Mux.Transport for
	// the metadata group id, or one of raft's). Required. The Group owns it
	// from Open on: it is closed (if it implements raft.WithClose) by
	// Raft's shutdown in Close, or by Open when Open fails.
	Transport raft.Transport
	// Logger; nil means zap.NewNop(). Raft's own log lines go to it too.
	Logger *zap.Logger
	// Seed is the metadata this node puts into InitCluster if it is the
	// node that initialises the cluster (MigrateLegacy builds one from a
	// single-node data dir); nil means an empty cluster. Its Nodes are
	// registered together with the initial members.
	Seed *InitCluster
}
