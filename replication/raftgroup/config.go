package raftgroup

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
)

// Config tunes a partition's Raft group. The defaults suit a LAN;
// every field is a time.Duration or a count.
type Config struct {
	// HeartbeatTimeout and ElectionTimeout: a follower that hears
	// nothing from its leader for this long (to twice this) starts an
	// election, and a candidate waits this long for votes (raft.Config).
	// The leader heartbeats each follower every HeartbeatTimeout/10 to
	// /5, so this sets the idle cost of a group: 1,000 partitions of
	// replication factor 3 send each node's peers 4,400 heartbeats a
	// second at 1s, 440 at 10s, 220 at 20s. A dead leader is replaced sooner than
	// this by failover (failover.go) when the transport detects dead
	// peers; this is then only the fallback for failures the detector
	// cannot see (a leader whose storage failed tells its followers
	// itself: failure.go). Default 20s each.
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// LeaderLeaseTimeout: a leader that cannot reach a majority for this
	// long steps down. It must stay well above the heartbeat interval
	// (HeartbeatTimeout/5 at most): a leader's last contact with a
	// follower is its last heartbeat or append answered. At most
	// HeartbeatTimeout. Default 10s.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout bounds how long a follower may wait to learn a new
	// commit index when nothing else is sent: raft's leader sends each
	// follower an AppendEntries this often (to twice this) even when idle,
	// each a wake-up of a goroutine (1,000 idle partitions of replication
	// factor 3: 89 a second per node at 5s, 22 at 20s). It is also how
	// soon raft's leader tries a follower again after a failed
	// AppendEntries or InstallSnapshot when no new entry arrives; the
	// transport does sooner what ends by itself (a follower's node down
	// and back, or a replica being added whose group was not open yet:
	// appendRetryWait; a snapshot install waits for the restore's reads of
	// the leader's log), so this is the wait only for failures that may
	// not. Default 20s, used at most HeartbeatTimeout. Not a failure
	// detector: followers serve no reads and a new leader
	// applies everything before it serves, so a follower's late high
	// watermark changes nothing a client sees, as Kafka's
	// replica.fetch.wait.max.ms (500) delays a follower's. The metadata
	// group keeps 50ms; at 50ms, 1,000 idle partitions of replication
	// factor 3 cost each node 9,000 AppendEntries a second each way
	// (replication/doc.go).
	CommitTimeout time.Duration
	// FailoverStagger is how long after the first in rank each further
	// follower waits before it starts an election when the leader's node
	// is found dead, or after a bootstrap (failover.go). It must exceed
	// an election's round trip and fsyncs. Default 1s.
	FailoverStagger time.Duration
	// MaxAppendEntries is how many entries (batches) one AppendEntries
	// and one StoreLogs (one fsync) carry at most. Default 256.
	MaxAppendEntries int
	// SnapshotThreshold and SnapshotInterval: a replica snapshots its
	// group when applying the entry that makes SnapshotThreshold since
	// its last snapshot, unless its last one is younger than
	// SnapshotInterval (then it asks again SnapshotThreshold entries
	// later); Raft's own check (a timer per group) runs only
	// every snapshotBackstop intervals, for what applying does not see
	// (configuration entries, a tail written within an interval of the
	// last snapshot). A partition's snapshot is a few bytes (the data is
	// in the segments), so they may be frequent. They bound restart time:
	// at start raft reads every entry after the last snapshot (raft.NewRaft
	// scans them for configuration changes, then re-applies them), each a
	// whole batch of up to 1 MiB from the segments, so a partition never
	// snapshotted under 8,192 entries read all its 2 GiB again at every
	// start (8 s on the development machine, against 1.4 s for 0.2 GiB).
	// Defaults 10s and 1024: a restart reads about 1,024 entries plus
	// what was written in the last interval, however much is retained. An
	// idle group's snapshot check no longer wakes every interval: 1,000
	// idle partitions woke a node 67 times a second for it.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	// TrailingLogs is how many entries stay in the Raft window after a
	// snapshot, so a follower that is briefly behind catches up from them.
	// Default 10240.
	TrailingLogs uint64
	// ApplyTimeout bounds how long Append waits to hand an entry to Raft
	// (the apply queue is full). Default 5s.
	ApplyTimeout time.Duration
}

// snapshotBackstop is how many SnapshotIntervals apart Raft's own
// snapshot check runs: snapshots are taken as entries apply
// (Group.snapshotDue), and the check only catches what applying does not
// count.
const snapshotBackstop = 30

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   20 * time.Second,
		ElectionTimeout:    20 * time.Second,
		LeaderLeaseTimeout: 10 * time.Second,
		CommitTimeout:      20 * time.Second,
		FailoverStagger:    time.Second,
		MaxAppendEntries:   256,
		SnapshotInterval:   10 * time.Second,
		SnapshotThreshold:  1024,
		TrailingLogs:       10240,
		ApplyTimeout:       5 * time.Second,
	}
}

// Validate reports a config Raft would refuse.
func (c Config) Validate() error {
	switch {
	case c.HeartbeatTimeout < 5*time.Millisecond, c.ElectionTimeout < 5*time.Millisecond:
		return fmt.Errorf("raftgroup: heartbeat and election timeouts must be at least 5ms")
	case c.ElectionTimeout < c.HeartbeatTimeout:
		return fmt.Errorf("raftgroup: election timeout %v must be at least the heartbeat timeout %v", c.ElectionTimeout, c.HeartbeatTimeout)
	case c.FailoverStagger <= 0:
		return fmt.Errorf("raftgroup: failover stagger must be positive")
	case c.LeaderLeaseTimeout <= 0 || c.LeaderLeaseTimeout > c.HeartbeatTimeout:
		return fmt.Errorf("raftgroup: leader lease timeout must be in (0, heartbeat timeout]")
	case c.CommitTimeout <= 0:
		return fmt.Errorf("raftgroup: commit timeout must be positive")
	case c.MaxAppendEntries < 1 || c.MaxAppendEntries > 1024:
		return fmt.Errorf("raftgroup: max append entries must be in [1, 1024]")
	case c.SnapshotInterval <= 0 || c.SnapshotThreshold < 1:
		return fmt.Errorf("raftgroup: snapshot interval and threshold must be positive")
	case c.ApplyTimeout <= 0:
		return fmt.Errorf("raftgroup: apply timeout must be positive")
	}
	return nil
}

// raftConfig turns c into hashicorp/raft's config for server id.
func (c Config) raftConfig(id raft.ServerID) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = id
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.CommitTimeout = min(c.CommitTimeout, c.HeartbeatTimeout)
	rc.MaxAppendEntries = c.MaxAppendEntries
	rc.SnapshotInterval = snapshotBackstop * c.SnapshotInterval
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.TrailingLogs = c.TrailingLogs
	// The segments hold the data: a snapshot is restored at start only to
	// learn where replay begins (read by Open), never applied again.
	rc.NoSnapshotRestoreOnStart = true
	// Proposals queue (up to MaxAppendEntries) while the leader stores the
	// previous ones, so one StoreLogs (one fsync) takes them all: without
	// it raft.Apply waits for the leader loop, which is in the fsync, and
	// every entry gets an fsync of its own.
	rc.BatchApplyCh = true
	// Each heartbeat and append otherwise reports its timing twice
	// (with and without labels): work for every idle group.
	rc.NoLegacyTelemetry = true
	return rc
}

// Options are a group's collaborators.
type Options struct {
	// ID is this node's server id in the group (its node id).
	ID raft.ServerID
	// Transport carries the group's RPCs (a replication/transport Mux's
	// Transport for the group); the group closes it.
	Transport raft.Transport
	// Logger receives lifecycle events; nil means nop.
	Logger *zap.Logger
	// SyncObserver, if set, is told of every sync of the partition's log
	// (metrics); it must not block.
	SyncObserver log.SyncObserver
	// FS is the filesystem of the group's sidecar and stable store (the
	// replica has its own); nil means the OS.
	FS log.FS
	// Admit, if set, is asked before each proposal: a non-nil error (a
	// *kerr.Error, such as KAFKA_STORAGE_ERROR while the disk is below
	// its free-space threshold) refuses the append with it. It must be
	// cheap and must not block: it runs on every produce.
	Admit func() error
	// OnLead, if set, is called each time this node starts leading (its
	// leadership is ready: every earlier entry applied), with the leader
	// epoch; it runs on the group's watch goroutine and must not block.
	OnLead func(epoch int32)
}

// errNoTransport reports Options without a transport.
var errNoTransport = errors.New("raftgroup: no transport")
