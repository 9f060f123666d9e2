package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cast"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.uber.org/zap/zapcore"

	"github.com/sluice-io/sluice/cmd/sluice/admin"
	"github.com/sluice-io/sluice/consumergroup"
	"github.com/sluice-io/sluice/consumergroup/share"
	"github.com/sluice-io/sluice/consumergroup/sharestate"
	"github.com/sluice-io/sluice/consumergroup/txn"
	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication"
	"github.com/sluice-io/sluice/replication/cleaner"
	"github.com/sluice-io/sluice/replication/configs"
	"github.com/sluice-io/sluice/replication/meta"
	"github.com/sluice-io/sluice/wire"
)

// Configuration keys. Each is lower.dotted in the YAML file,
// SLUICE_UPPER_SNAKE in the environment and --kebab-case on the command line
// (see envName and flagName). README.md documents every one; keep them in
// step.
const (
	keyListen                     = "listen"
	keyDataDir                    = "data.dir"
	keyAdvertisedAddress          = "advertised.address"
	keyNodeID                     = "node.id"
	keyRaftListen                 = "raft.listen"
	keyRaftAdvertisedAddress      = "raft.advertised.address"
	keyClusterInitialMembers      = "cluster.initial.members"
	keyClusterJoin                = "cluster.join"
	keyRaftDialAddresses          = "raft.dial.addresses"
	keyRaftHeartbeatTimeoutMs     = "raft.heartbeat.timeout.ms"
	keyRaftElectionTimeoutMs      = "raft.election.timeout.ms"
	keyRaftLeaderLeaseTimeoutMs   = "raft.leader.lease.timeout.ms"
	keyRaftSnapshotThreshold      = "raft.snapshot.threshold"
	keyRaftSnapshotIntervalMs     = "raft.snapshot.interval.ms"
	keyRaftTrailingLogs           = "raft.trailing.logs"
	keyRaftPartitionHeartbeatMs   = "raft.partition.heartbeat.timeout.ms"
	keyRaftPeerFailureTimeoutMs   = "raft.peer.failure.timeout.ms"
	keyNumPartitions              = "num.partitions"
	keyAutoCreateTopics           = "auto.create.topics.enable"
	keyAutoLeaderRebalance        = "auto.leader.rebalance.enable"
	keyLeaderImbalanceInterval    = "leader.imbalance.check.interval.seconds"
	keyLeaderImbalancePercentage  = "leader.imbalance.per.broker.percentage"
	keySocketRequestMaxBytes      = "socket.request.max.bytes"
	keySocketBufferPoolBytes      = "socket.buffer.pool.bytes"
	keyQueuedMaxRequestBytes      = "queued.max.request.bytes"
	keyLogFlushMode               = "log.flush.mode"
	keyLogFlushIntervalMs         = "log.flush.interval.ms"
	keyLogSegmentBytes            = "log.segment.bytes"
	keyLogRollMs                  = "log.roll.ms"
	keyLogRollHours               = "log.roll.hours"
	keyLogIndexIntervalBytes      = "log.index.interval.bytes"
	keyLogMaxOpenSealedFiles      = "log.max.open.sealed.files"
	keyMessageMaxBytes            = "message.max.bytes"
	keyLogTimestampType           = "log.message.timestamp.type"
	keyLogTimestampBeforeMaxMs    = "log.message.timestamp.before.max.ms"
	keyLogTimestampAfterMaxMs     = "log.message.timestamp.after.max.ms"
	keyLogCleanupPolicy           = "log.cleanup.policy"
	keyLogRetentionMs             = "log.retention.ms"
	keyLogRetentionMinutes        = "log.retention.minutes"
	keyLogRetentionHours          = "log.retention.hours"
	keyLogRetentionBytes          = "log.retention.bytes"
	keyLogRetentionCheckInterval  = "log.retention.check.interval.ms"
	keyLogCleanerEnable           = "log.cleaner.enable"
	keyLogCleanerBackoffMs        = "log.cleaner.backoff.ms"
	keyLogCleanerDedupeBuffer     = "log.cleaner.dedupe.buffer.size"
	keyLogCleanerIOMaxBytes       = "log.cleaner.io.max.bytes.per.second"
	keyLogCleanerDeleteRetention  = "log.cleaner.delete.retention.ms"
	keyLogCleanerMinCompactionLag = "log.cleaner.min.compaction.lag.ms"
	keyLogCleanerMaxCompactionLag = "log.cleaner.max.compaction.lag.ms"
	keyLogCleanerMinCleanable     = "log.cleaner.min.cleanable.ratio"
	keyOffsetsTopicPartitions     = "offsets.topic.num.partitions"
	keyOffsetsTopicReplication    = "offsets.topic.replication.factor"
	keyGroupMinSessionTimeoutMs   = "group.min.session.timeout.ms"
	keyGroupMaxSessionTimeoutMs   = "group.max.session.timeout.ms"
	keyGroupInitialRebalanceDelay = "group.initial.rebalance.delay.ms"
	keyGroupMaxSize               = "group.max.size"
	keyGroupStuckRebalances       = "group.stuck.rebalances"
	keyGroupStuckTimeoutMs        = "group.stuck.timeout.ms"
	keyGroupShareSessionTimeoutMs = "group.share.session.timeout.ms"
	keyGroupShareHeartbeatMs      = "group.share.heartbeat.interval.ms"
	keyGroupShareMaxSize          = "group.share.max.size"
	keyGroupShareLockDurationMs   = "group.share.record.lock.duration.ms"
	keyGroupShareDeliveryLimit    = "group.share.delivery.count.limit"
	keyDeadLetterTopicPrefix      = "errors.deadletterqueue.topic.name.prefix"
	keyDeadLetterAutoCreate       = "errors.deadletterqueue.auto.create.topics.enable"
	keyOffsetsRetentionMinutes    = "offsets.retention.minutes"
	keyTxnStatePartitions         = "transaction.state.log.num.partitions"
	keyTxnStateReplication        = "transaction.state.log.replication.factor"
	keyShareStatePartitions       = "share.coordinator.state.topic.num.partitions"
	keyShareStateReplication      = "share.coordinator.state.topic.replication.factor"
	keyDebugShareState            = "debug.share.state"
	keyTxnMaxTimeoutMs            = "transaction.max.timeout.ms"
	keyTxnIDExpirationMs          = "transactional.id.expiration.ms"
	keyTxnAbortIntervalMs         = "transaction.abort.timed.out.transaction.cleanup.interval.ms"
	keyTxnRemoveExpiredIntervalMs = "transaction.remove.expired.transaction.cleanup.interval.ms"
	keyShareMaxRecordLocks        = "group.share.partition.max.record.locks"
	keyShareMaxSessions           = "group.share.max.share.sessions"
	keyProducerIDExpirationMs     = "producer.id.expiration.ms"
	keyAdminListen                = "admin.listen"
	keyStorageMinFreeBytes        = "storage.min.free.bytes"
	keyDebugFaultInjection        = "debug.fault.injection"
	keyAdminPprofEnable           = "admin.pprof.enable"
	keyLogFormat                  = "log.format"
	keyLogLevel                   = "log.level"
)

// Flush modes (log.flush.mode).
const (
	flushModeSync     = "sync"
	flushModeInterval = "interval"
)

const (
	defaultRollMs      = 7 * 24 * 60 * 60 * 1000
	defaultRetentionMs = 7 * 24 * 60 * 60 * 1000
)

// maxMillis is the largest millisecond count a time.Duration holds; larger
// values (Kafka's Long.MAX_VALUE) mean unbounded.
const maxMillis = math.MaxInt64 / int64(time.Millisecond)

// setting describes one configuration key: its default and its help text.
type setting struct {
	key   string
	value any // default: string, int64 or bool; decides the flag's type
	usage string
	// noDefault keys are absent from viper's defaults so that IsSet tells
	// whether the operator gave them (advertised.address, log.roll.*).
	noDefault bool
}

// settings lists every key in the order --help shows them.
var settings = []setting{
	{key: keyListen, value: "127.0.0.1:9092", usage: "TCP address the Kafka protocol listener binds (host:port)"},
	{key: keyDataDir, value: "./data", usage: "directory holding the topic logs and metadata"},
	{key: keyAdvertisedAddress, value: "", noDefault: true, usage: "host:port clients are told to connect to (default: the listen address; 127.0.0.1 when listening on 0.0.0.0 or all interfaces)"},
	{key: keyNodeID, value: int64(1), usage: "id of this node: its broker id in Metadata and its member id in the metadata Raft group"},
	{key: keyRaftListen, value: "", usage: "host:port the Raft listener binds for the metadata group's peers; empty runs a single node with no Raft listener"},
	{key: keyRaftAdvertisedAddress, value: "", usage: "host:port peers dial to reach this node's Raft listener (default: raft.listen; 127.0.0.1 for a wildcard host)"},
	{key: keyClusterInitialMembers, value: "", usage: "comma-separated id@raft-host:port/kafka-host:port of every node forming the cluster, this one included (its Kafka address may be left out; default: this node alone)"},
	{key: keyClusterJoin, value: "", usage: "Kafka host:port of any node of a running cluster for this node to join (needs raft.listen, no cluster.initial.members); used on the first start only"},
	{key: keyRaftDialAddresses, value: "", usage: "comma-separated raft-host:port=dial-host:port: the address to dial for a peer's Raft address (a proxy, a NAT); a peer not listed is dialled at its Raft address"},
	{key: keyRaftHeartbeatTimeoutMs, value: int64(1000), usage: "milliseconds a follower of the metadata Raft group waits without hearing from its leader before an election"},
	{key: keyRaftElectionTimeoutMs, value: int64(1000), usage: "milliseconds a candidate of the metadata Raft group waits for votes before trying again"},
	{key: keyRaftLeaderLeaseTimeoutMs, value: int64(500), usage: "milliseconds the metadata Raft group's leader stays leader without hearing from a majority (at most raft.heartbeat.timeout.ms)"},
	{key: keyRaftPartitionHeartbeatMs, value: int64(20000), usage: "milliseconds a partition's Raft follower waits without hearing from its leader before an election (and a candidate for votes); leaders heartbeat every tenth to fifth of it, their lease is half of it. A dead node's partitions move sooner, on raft.peer.failure.timeout.ms"},
	{key: keyRaftPeerFailureTimeoutMs, value: int64(2000), usage: "milliseconds a peer node may stay silent (it is pinged every fifth of this) before it is declared down and the partitions it leads elect new leaders; a refused dial declares it down at once; 0 turns the detector off"},
	{key: keyRaftSnapshotThreshold, value: int64(1024), usage: "entries (batches) a partition's Raft log gathers before the group snapshots it (checked as entries apply)"},
	{key: keyRaftSnapshotIntervalMs, value: int64(10000), usage: "least milliseconds between two snapshots of a partition's Raft log; Raft's own check of raft.snapshot.threshold runs every 30 times this"},
	{key: keyRaftTrailingLogs, value: int64(10240), usage: "entries a partition's Raft log keeps behind a snapshot: a follower further behind catches up from the leader's segments"},
	{key: keyNumPartitions, value: int64(1), usage: "partition count of auto-created topics and of CreateTopics asking for the default"},
	{key: keyAutoCreateTopics, value: true, usage: "create unknown topics on Metadata and Produce requests"},
	{key: keyAutoLeaderRebalance, value: true, usage: "hand partitions back to their preferred leader when too many of a node's are led elsewhere (after it returned)"},
	{key: keyLeaderImbalanceInterval, value: int64(300), usage: "seconds between two checks of the partitions a node is preferred leader of"},
	{key: keyLeaderImbalancePercentage, value: int64(10), usage: "percentage of a node's preferred partitions that may be led elsewhere before their leadership is restored"},
	{key: keySocketRequestMaxBytes, value: int64(100 << 20), usage: "largest request frame accepted; a larger size prefix closes the connection"},
	{key: keySocketBufferPoolBytes, value: int64(64 << 20), usage: "bytes of idle request and response buffers kept for reuse across all connections; 0 turns reuse off"},
	{key: keyQueuedMaxRequestBytes, value: int64(256 << 20), usage: "bytes of requests read but not yet answered (and fetch responses not yet written), across all connections; above it the broker stops reading from sockets; -1 is unbounded"},
	{key: keyLogFlushMode, value: flushModeSync, usage: "sync: every acknowledged write is fsynced (group commit); interval: fsync every log.flush.interval.ms"},
	{key: keyLogFlushIntervalMs, value: int64(1000), usage: "fsync period in milliseconds when log.flush.mode=interval"},
	{key: keyLogSegmentBytes, value: int64(1 << 30), usage: "size in bytes at which a partition's active segment is rolled"},
	{key: keyLogRollMs, value: int64(defaultRollMs), noDefault: true, usage: "age in milliseconds at which a partition's active segment is rolled (takes precedence over log.roll.hours)"},
	{key: keyLogRollHours, value: int64(0), noDefault: true, usage: "age in hours at which the active segment is rolled, used when log.roll.ms is not set (default 168)"},
	{key: keyLogIndexIntervalBytes, value: int64(4096), usage: "log bytes between two entries of the sparse offset and time indexes"},
	{key: keyLogMaxOpenSealedFiles, value: int64(0), usage: "most sealed segment files (of all partitions) kept open for reads at once, least recently read closed first; 0 picks 1024, or a quarter of the open file limit when that is lower"},
	{key: keyMessageMaxBytes, value: int64(1048588), usage: "largest record batch accepted, header included"},
	{key: keyLogTimestampType, value: "CreateTime", usage: "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches with the broker clock"},
	{key: keyLogTimestampBeforeMaxMs, value: int64(math.MaxInt64), usage: "milliseconds a CreateTime record's timestamp may lie before the broker clock (INVALID_TIMESTAMP beyond)"},
	{key: keyLogTimestampAfterMaxMs, value: int64(math.MaxInt64), usage: "milliseconds a CreateTime record's timestamp may lie after the broker clock (INVALID_TIMESTAMP beyond)"},
	{key: keyLogCleanupPolicy, value: "delete", usage: "default cleanup.policy of topics: delete, compact or compact,delete"},
	{key: keyLogRetentionMs, value: int64(defaultRetentionMs), noDefault: true, usage: "milliseconds a segment is kept after its newest record; -1 keeps forever (takes precedence over log.retention.minutes and .hours)"},
	{key: keyLogRetentionMinutes, value: int64(0), noDefault: true, usage: "retention in minutes, used when log.retention.ms is not set"},
	{key: keyLogRetentionHours, value: int64(0), noDefault: true, usage: "retention in hours, used when neither log.retention.ms nor .minutes is set (default 168)"},
	{key: keyLogRetentionBytes, value: int64(-1), usage: "bytes a partition may hold before its oldest segments are deleted; -1 is unbounded"},
	{key: keyLogRetentionCheckInterval, value: int64(300000), usage: "milliseconds between two retention checks of every partition"},
	{key: keyLogCleanerEnable, value: true, usage: "run the log cleaner, which compacts topics with cleanup.policy compact"},
	{key: keyLogCleanerBackoffMs, value: int64(15000), usage: "milliseconds between two log cleaner rounds"},
	{key: keyLogCleanerDedupeBuffer, value: int64(128 << 20), usage: "bytes of memory one compaction's key map may use"},
	{key: keyLogCleanerIOMaxBytes, value: int64(0), usage: "bytes per second the log cleaner may read and write; 0 is unthrottled"},
	{key: keyLogCleanerDeleteRetention, value: int64(86400000), usage: "default delete.retention.ms: milliseconds a compacted topic keeps tombstones"},
	{key: keyLogCleanerMinCompactionLag, value: int64(0), usage: "default min.compaction.lag.ms: minimum age of a record before compaction may remove it"},
	{key: keyLogCleanerMaxCompactionLag, value: int64(math.MaxInt64), usage: "default max.compaction.lag.ms: age after which a record is compacted regardless of the dirty ratio"},
	{key: keyLogCleanerMinCleanable, value: "0.5", usage: "default min.cleanable.dirty.ratio: share of a log that must be uncompacted before the cleaner compacts it"},
	{key: keyOffsetsTopicPartitions, value: int64(16), usage: "partitions of the internal __consumer_offsets topic, used when it is first created"},
	{key: keyOffsetsTopicReplication, value: int64(3), usage: "replication factor of the internal __consumer_offsets topic, capped at the live nodes when it is first created"},
	{key: keyGroupMinSessionTimeoutMs, value: int64(6000), usage: "smallest session timeout in milliseconds a group member may ask for"},
	{key: keyGroupMaxSessionTimeoutMs, value: int64(1800000), usage: "largest session timeout in milliseconds a group member may ask for"},
	{key: keyGroupInitialRebalanceDelay, value: int64(3000), usage: "milliseconds an empty group waits for more members before its first rebalance"},
	{key: keyGroupMaxSize, value: int64(math.MaxInt32), usage: "most members one consumer group may have"},
	{key: keyGroupStuckRebalances, value: int64(3), usage: "rebalances a group may go through without its committed offset of a lagging partition moving before the partition is reported stuck; 0 turns this test off"},
	{key: keyGroupStuckTimeoutMs, value: int64(300000), usage: "milliseconds the committed offset of a lagging partition may stay put while its group has members before the partition is reported stuck; 0 turns this test off"},
	{key: keyGroupShareSessionTimeoutMs, value: int64(45000), usage: "milliseconds a share group member may go without a heartbeat before it is removed (a group's share.session.timeout.ms overrides it)"},
	{key: keyGroupShareHeartbeatMs, value: int64(5000), usage: "heartbeat interval in milliseconds told to share group members (a group's share.heartbeat.interval.ms overrides it)"},
	{key: keyGroupShareMaxSize, value: int64(200), usage: "most members one share group may have"},
	{key: keyGroupShareLockDurationMs, value: int64(30000), usage: "milliseconds an acquired share group record stays locked to its consumer, 15000-60000 (a group's share.record.lock.duration.ms overrides it)"},
	{key: keyGroupShareDeliveryLimit, value: int64(5), usage: "deliveries after which a share group record not accepted is archived or dead-lettered, 2-10 (a group's share.delivery.count.limit overrides it)"},
	{key: keyDeadLetterTopicPrefix, value: configs.DefaultDeadLetterTopicPrefix, usage: "prefix a share group's dead-letter topic (errors.deadletterqueue.topic.name) must start with, KIP-1191; empty allows any name (also a dynamic broker config)"},
	{key: keyDeadLetterAutoCreate, value: false, usage: "create a share group's missing dead-letter topic on its first dead letter, with num.partitions partitions, KIP-1191 (also a dynamic broker config)"},
	{key: keyOffsetsRetentionMinutes, value: int64(10080), usage: "minutes the committed offsets of an empty group are kept"},
	{key: keyTxnStatePartitions, value: int64(16), usage: "partitions of the internal __transaction_state topic, used when it is first created"},
	{key: keyTxnStateReplication, value: int64(3), usage: "replication factor of the internal __transaction_state topic, capped at the live nodes when it is first created"},
	{key: keyShareStatePartitions, value: int64(16), usage: "partitions of the internal __share_group_state topic (share groups' delivery state), used when it is first created"},
	{key: keyShareStateReplication, value: int64(3), usage: "replication factor of the internal __share_group_state topic, capped at the live nodes when it is first created"},
	{key: keyDebugShareState, value: false, usage: "TESTING ONLY: serve /debug/share-state on the admin listener, which reads and writes share-partition states through this node's persister"},
	{key: keyTxnMaxTimeoutMs, value: int64(900000), usage: "largest transaction.timeout.ms in milliseconds a transactional producer may ask for"},
	{key: keyTxnIDExpirationMs, value: int64(604800000), usage: "milliseconds a transactional id with no transaction under way is kept after its last use"},
	{key: keyTxnAbortIntervalMs, value: int64(10000), usage: "milliseconds between two looks for transactions open longer than their timeout, which the broker aborts"},
	{key: keyTxnRemoveExpiredIntervalMs, value: int64(3600000), usage: "milliseconds between two looks for transactional ids past transactional.id.expiration.ms"},
	{key: keyShareMaxRecordLocks, value: int64(2000), usage: "most in-flight records (from the share-partition start offset to its end offset) of one share group on one partition; no new stored batch is delivered beyond it (the batch crossing it is delivered whole, up to 8 times the limit, except in record-limit mode)"},
	{key: keyShareMaxSessions, value: int64(2000), usage: "most share sessions (one per share consumer and broker) this node holds; more get SHARE_SESSION_LIMIT_REACHED"},
	{key: keyProducerIDExpirationMs, value: int64(86400000), usage: "milliseconds an idle producer's state (no transaction under way) is kept on a partition after its last batch, on the partition's clock; the same on every node"},
	{key: keyAdminListen, value: "127.0.0.1:9644", usage: "host:port of the HTTP admin listener (/metrics, /healthz, /readyz); empty turns it off"},
	{key: keyAdminPprofEnable, value: false, usage: "serve the Go profiler under /debug/pprof/ on the admin listener"},
	{key: keyStorageMinFreeBytes, value: int64(replication.DefaultMinFreeBytes), usage: "bytes the data dir's filesystem must keep free: below it produce and group commits answer KAFKA_STORAGE_ERROR (retriable) until space returns; 0 turns the check off (also a dynamic broker config)"},
	{key: keyDebugFaultInjection, value: false, usage: "TESTING ONLY: serve /debug/fault on the admin listener, which makes this node's disk operations fail on demand"},
	{key: keyLogFormat, value: "console", usage: "process log encoding: console (for terminals) or json (for production)"},
	{key: keyLogLevel, value: "info", usage: "process log level: debug, info, warn or error"},
}

// envPrefix prefixes every environment variable: data.dir is SLUICE_DATA_DIR.
const envPrefix = "SLUICE"

var keyReplacer = strings.NewReplacer(".", "_", "-", "_")

// envName returns the environment variable that sets key.
func envName(key string) string { return envPrefix + "_" + strings.ToUpper(keyReplacer.Replace(key)) }

// flagName returns the command-line flag that sets key.
func flagName(key string) string { return strings.ReplaceAll(key, ".", "-") }

// addFlags registers one flag per setting plus --config.
func addFlags(flags *pflag.FlagSet) {
	flags.String("config", "", "YAML configuration file (keys lower.dotted, e.g. data.dir)")
	for _, s := range settings {
		switch value := s.value.(type) {
		case string:
			flags.String(flagName(s.key), value, s.usage)
		case int64:
			flags.Int64(flagName(s.key), value, s.usage)
		case bool:
			flags.Bool(flagName(s.key), value, s.usage)
		default:
			panic(fmt.Sprintf("setting %s: unsupported default type %T", s.key, s.value))
		}
	}
}

// newViper returns a viper reading, from highest precedence to lowest,
// flags, SLUICE_* environment variables, the --config file and defaults.
func newViper(flags *pflag.FlagSet) (*viper.Viper, error) {
	v := viper.New()
	v.SetEnvPrefix(envPrefix)
	v.SetEnvKeyReplacer(keyReplacer)
	v.AutomaticEnv()
	for _, s := range settings {
		if !s.noDefault {
			v.SetDefault(s.key, s.value)
		}
		if err := v.BindPFlag(s.key, flags.Lookup(flagName(s.key))); err != nil {
			return nil, fmt.Errorf("bind flag --%s: %w", flagName(s.key), err)
		}
	}
	path, err := flags.GetString("config")
	if err != nil {
		return nil, err
	}
	if path == "" {
		path = os.Getenv(envPrefix + "_CONFIG")
	}
	if path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("read config file %s: %w", path, err)
		}
		if err := checkKnownKeys(v); err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	return v, nil
}

// checkKnownKeys rejects keys no setting names, so that a typo in the file
// is an error instead of a silently ignored line.
func checkKnownKeys(v *viper.Viper) error {
	known := make(map[string]bool, len(settings))
	for _, s := range settings {
		known[s.key] = true
	}
	var unknown []string
	for _, key := range v.AllKeys() {
		if !known[key] {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("unknown key(s) %s; see README.md for the configuration reference", strings.Join(unknown, ", "))
	}
	return nil
}

// config is the whole process configuration, typed: what every package
// below cmd is given.
type config struct {
	// Listen is the host:port the Kafka listener binds.
	Listen string
	// AdvertisedExplicit reports that advertised.address was given; when
	// false the advertised address follows the bound listener.
	AdvertisedExplicit bool
	// RaftListen is the host:port the Raft listener binds; "" runs a
	// single node with an in-process transport. RaftAdvertisedExplicit
	// reports that raft.advertised.address was given; when false the
	// Raft address follows the bound Raft listener.
	RaftListen             string
	RaftAdvertisedExplicit bool
	// RaftDial maps a peer's Raft address to the address dialled for it
	// (raft.dial.addresses); a peer not in it is dialled as advertised.
	RaftDial map[string]string
	// RaftPeerFailureTimeout is the Raft transport's failure detector
	// timeout (raft.peer.failure.timeout.ms; 0: off).
	RaftPeerFailureTimeout time.Duration
	// Replication configures the cluster, its partitions and their logs.
	Replication replication.Config
	// Wire configures the protocol server.
	Wire wire.Config
	// Groups configures the group coordinator.
	Groups consumergroup.Config
	// Transactions configures the transaction coordinator.
	Transactions txn.Config
	// Shares configures share-partitions and share sessions.
	Shares share.Config
	// ShareState configures the share coordinator.
	ShareState sharestate.Config
	// DebugShareState serves /debug/share-state on the admin listener
	// (debug.share.state), for tests that drive the share-state
	// persister of a node. Default false.
	DebugShareState bool
	// Admin configures the HTTP admin listener (metrics, health).
	Admin admin.Config
	// LogFormat is "console" or "json"; LogLevel is a zap level.
	LogFormat string
	LogLevel  zapcore.Level
	// FaultInjection puts a log.FaultFS under the data and serves
	// /debug/fault on the admin listener (debug.fault.injection), for
	// tests that break a node's disk. Default false.
	FaultInjection bool
	// MaxOpenSealedFiles is log.max.open.sealed.files: the limit of the
	// process's log.FileCache; 0 derives it from the open file limit
	// (sealedFilesLimit).
	MaxOpenSealedFiles int
}

// loadConfig reads every key from v into one typed config and checks what
// cmd owns (key syntax and ranges). Package-level validation (Validate of
// each package config) runs in validate once the listener is bound.
func loadConfig(v *viper.Viper) (config, error) {
	r := reader{v: v}
	var cfg config

	cfg.Listen = r.str(keyListen)
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		r.fail(keyListen, fmt.Errorf("%q is not host:port: %w", cfg.Listen, err))
	}

	cfg.Replication = replication.DefaultConfig()
	cfg.Replication.DataDir = r.str(keyDataDir)
	if cfg.Replication.DataDir == "" {
		r.fail(keyDataDir, errors.New("must not be empty"))
	}
	cfg.Replication.NodeID = int32(r.integer(keyNodeID, 0, math.MaxInt32))
	readRaft(&r, &cfg)
	cfg.Replication.DefaultPartitions = int32(r.integer(keyNumPartitions, 1, math.MaxInt32))
	cfg.Replication.AutoCreateTopics = r.boolean(keyAutoCreateTopics)
	cfg.Replication.AutoLeaderRebalance = r.boolean(keyAutoLeaderRebalance)
	cfg.Replication.LeaderImbalanceCheckInterval = time.Duration(r.integer(keyLeaderImbalanceInterval, 1, math.MaxInt32)) * time.Second
	cfg.Replication.LeaderImbalancePerBrokerPercentage = int(r.integer(keyLeaderImbalancePercentage, 0, 100))

	advertised := r.str(keyAdvertisedAddress)
	cfg.AdvertisedExplicit = v.IsSet(keyAdvertisedAddress) && advertised != ""
	if !cfg.AdvertisedExplicit {
		advertised = defaultAdvertisedAddress(cfg.Listen)
	}
	if err := cfg.Replication.SetAdvertisedAddress(advertised); err != nil {
		r.fail(keyAdvertisedAddress, err)
	}

	switch mode := r.str(keyLogFlushMode); mode {
	case flushModeSync:
		cfg.Replication.Flush = log.FlushConfig{}
	case flushModeInterval:
		ms := r.integer(keyLogFlushIntervalMs, 1, math.MaxInt32)
		cfg.Replication.Flush = log.FlushConfig{Interval: time.Duration(ms) * time.Millisecond}
	default:
		r.fail(keyLogFlushMode, fmt.Errorf("%q is neither %q nor %q", mode, flushModeSync, flushModeInterval))
	}

	p := &cfg.Replication.Partition
	p.Log.SegmentBytes = r.integer(keyLogSegmentBytes, 1, math.MaxInt64)
	p.Log.IndexIntervalBytes = int(r.integer(keyLogIndexIntervalBytes, 1, math.MaxInt32))
	p.Log.SegmentAge = rollAge(v, &r)
	cfg.MaxOpenSealedFiles = int(r.integer(keyLogMaxOpenSealedFiles, 0, math.MaxInt32))
	p.MaxMessageBytes = int(r.integer(keyMessageMaxBytes, 1, math.MaxInt32))
	switch tt := r.str(keyLogTimestampType); strings.ToLower(tt) {
	case "createtime":
		p.TimestampType = partition.CreateTime
	case "logappendtime":
		p.TimestampType = partition.LogAppendTime
	default:
		r.fail(keyLogTimestampType, fmt.Errorf("%q is neither CreateTime nor LogAppendTime", tt))
	}

	readCleanup(v, &r, &cfg.Replication)

	cfg.Wire = wire.DefaultConfig()
	cfg.Wire.MaxRequestBytes = int32(r.integer(keySocketRequestMaxBytes, 1, math.MaxInt32))
	cfg.Wire.BufferPoolBytes = r.integer(keySocketBufferPoolBytes, 0, math.MaxInt64)
	cfg.Wire.QueuedMaxRequestBytes = r.integer(keyQueuedMaxRequestBytes, -1, math.MaxInt64)

	// Every field is set from a key, so the defaults live in settings.
	cfg.Groups = consumergroup.Config{
		OffsetsTopicPartitions:        int32(r.integer(keyOffsetsTopicPartitions, 1, math.MaxInt32)),
		OffsetsTopicReplicationFactor: int16(r.integer(keyOffsetsTopicReplication, 1, math.MaxInt16)),
		MinSessionTimeout:             r.millis(keyGroupMinSessionTimeoutMs),
		MaxSessionTimeout:             r.millis(keyGroupMaxSessionTimeoutMs),
		InitialRebalanceDelay:         time.Duration(r.integer(keyGroupInitialRebalanceDelay, 0, math.MaxInt32)) * time.Millisecond,
		MaxGroupSize:                  int(r.integer(keyGroupMaxSize, 1, math.MaxInt32)),
		OffsetsRetention:              time.Duration(r.integer(keyOffsetsRetentionMinutes, 1, math.MaxInt32)) * time.Minute,
		StuckRebalances:               int(r.integer(keyGroupStuckRebalances, 0, math.MaxInt32)),
		StuckTimeout:                  time.Duration(r.integer(keyGroupStuckTimeoutMs, 0, math.MaxInt64/int64(time.Millisecond))) * time.Millisecond,
		ShareSessionTimeout:           time.Duration(r.integer(keyGroupShareSessionTimeoutMs, 1, math.MaxInt32)) * time.Millisecond,
		ShareHeartbeatInterval:        time.Duration(r.integer(keyGroupShareHeartbeatMs, 1, math.MaxInt32)) * time.Millisecond,
		ShareMaxSize:                  int(r.integer(keyGroupShareMaxSize, 1, math.MaxInt32)),
	}
	// The share group defaults under every group's GROUP configs
	// (DescribeConfigs reports the broker's session timeout and
	// heartbeat interval too).
	cfg.Replication.ShareGroupDefaults = configs.DefaultShareGroup()
	cfg.Replication.ShareGroupDefaults.RecordLockDuration = time.Duration(r.integer(keyGroupShareLockDurationMs, 15000, 60000)) * time.Millisecond
	cfg.Replication.ShareGroupDefaults.DeliveryCountLimit = int(r.integer(keyGroupShareDeliveryLimit, 2, 10))
	cfg.Replication.DeadLetterTopicPrefix = strings.TrimSpace(r.str(keyDeadLetterTopicPrefix))
	if err := configs.ValidateBroker(map[string]string{keyDeadLetterTopicPrefix: cfg.Replication.DeadLetterTopicPrefix}); err != nil {
		r.fail(keyDeadLetterTopicPrefix, err)
	}
	cfg.Replication.DeadLetterAutoCreate = r.boolean(keyDeadLetterAutoCreate)
	cfg.Replication.ShareGroupDefaults.SessionTimeout = cfg.Groups.ShareSessionTimeout
	cfg.Replication.ShareGroupDefaults.HeartbeatInterval = cfg.Groups.ShareHeartbeatInterval

	cfg.Transactions = txn.Config{
		StateTopicPartitions:        int32(r.integer(keyTxnStatePartitions, 1, math.MaxInt32)),
		StateTopicReplicationFactor: int16(r.integer(keyTxnStateReplication, 1, math.MaxInt16)),
		MaxTimeout:                  time.Duration(r.integer(keyTxnMaxTimeoutMs, 1, math.MaxInt32)) * time.Millisecond,
		IDExpiration:                time.Duration(r.integer(keyTxnIDExpirationMs, 1, maxMillis)) * time.Millisecond,
		AbortTimedOutInterval:       time.Duration(r.integer(keyTxnAbortIntervalMs, 1, maxMillis)) * time.Millisecond,
		RemoveExpiredInterval:       time.Duration(r.integer(keyTxnRemoveExpiredIntervalMs, 1, maxMillis)) * time.Millisecond,
	}

	cfg.Shares = share.DefaultConfig()
	cfg.Shares.MaxRecordLocks = int(r.integer(keyShareMaxRecordLocks, 1, math.MaxInt32))
	cfg.Shares.MaxSessions = int(r.integer(keyShareMaxSessions, 1, math.MaxInt32))

	cfg.ShareState = sharestate.Config{
		StateTopicPartitions:        int32(r.integer(keyShareStatePartitions, 1, math.MaxInt32)),
		StateTopicReplicationFactor: int16(r.integer(keyShareStateReplication, 1, math.MaxInt16)),
	}

	cfg.Admin = admin.Config{Listen: r.str(keyAdminListen), Pprof: r.boolean(keyAdminPprofEnable)}
	cfg.Replication.MinFreeBytes = r.integer(keyStorageMinFreeBytes, 0, math.MaxInt64)
	cfg.FaultInjection = r.boolean(keyDebugFaultInjection)
	if cfg.FaultInjection && !cfg.Admin.Enabled() {
		r.fail(keyDebugFaultInjection, errors.New("needs the admin listener (admin.listen), which serves /debug/fault"))
	}
	cfg.DebugShareState = r.boolean(keyDebugShareState)
	if cfg.DebugShareState && !cfg.Admin.Enabled() {
		r.fail(keyDebugShareState, errors.New("needs the admin listener (admin.listen), which serves /debug/share-state"))
	}
	if err := cfg.Admin.Validate(); err != nil {
		r.fail(keyAdminListen, err)
	}

	switch cfg.LogFormat = r.str(keyLogFormat); cfg.LogFormat {
	case "console", "json":
	default:
		r.fail(keyLogFormat, fmt.Errorf("%q is neither console nor json", cfg.LogFormat))
	}
	level, err := zapcore.ParseLevel(r.str(keyLogLevel))
	if err != nil {
		r.fail(keyLogLevel, err)
	}
	cfg.LogLevel = level

	return cfg, errors.Join(r.errs...)
}

// readRaft reads the metadata group's keys: this node's Raft addresses,
// the initial members and the Raft timeouts.
func readRaft(r *reader, cfg *config) {
	cfg.RaftListen = r.str(keyRaftListen)
	if cfg.RaftListen != "" {
		if _, _, err := net.SplitHostPort(cfg.RaftListen); err != nil {
			r.fail(keyRaftListen, fmt.Errorf("%q is not host:port: %w", cfg.RaftListen, err))
		}
	}
	advertised := r.str(keyRaftAdvertisedAddress)
	cfg.RaftAdvertisedExplicit = advertised != ""
	switch {
	case advertised != "" && cfg.RaftListen == "":
		r.fail(keyRaftAdvertisedAddress, errors.New("is set but raft.listen is not; set raft.listen too"))
	case advertised != "":
		if _, _, err := net.SplitHostPort(advertised); err != nil {
			r.fail(keyRaftAdvertisedAddress, fmt.Errorf("%q is not host:port: %w", advertised, err))
		}
	case cfg.RaftListen != "":
		advertised = defaultAdvertisedAddress(cfg.RaftListen)
	}
	cfg.Replication.RaftAddress = advertised

	members, err := parseMembers(r.str(keyClusterInitialMembers))
	if err != nil {
		r.fail(keyClusterInitialMembers, err)
	}
	if len(members) > 1 && cfg.RaftListen == "" {
		r.fail(keyClusterInitialMembers, fmt.Errorf("lists %d nodes, which need a Raft listener; set raft.listen", len(members)))
	}
	cfg.Replication.InitialMembers = members
	if join := r.str(keyClusterJoin); join != "" {
		switch _, _, err := net.SplitHostPort(join); {
		case err != nil:
			r.fail(keyClusterJoin, fmt.Errorf("%q is not host:port: %w", join, err))
		case cfg.RaftListen == "":
			r.fail(keyClusterJoin, errors.New("needs raft.listen: the cluster reaches this node's Raft listener"))
		case len(members) > 0:
			r.fail(keyClusterJoin, errors.New("and cluster.initial.members are both set: a node either forms a cluster or joins one"))
		}
		cfg.Replication.JoinAddress = join
	}

	cfg.RaftDial = map[string]string{}
	for _, entry := range strings.Split(r.str(keyRaftDialAddresses), ",") {
		if entry = strings.TrimSpace(entry); entry == "" {
			continue
		}
		from, to, ok := strings.Cut(entry, "=")
		_, _, ferr := net.SplitHostPort(from)
		_, _, terr := net.SplitHostPort(to)
		if !ok || ferr != nil || terr != nil {
			r.fail(keyRaftDialAddresses, fmt.Errorf("%q is not raft-host:port=dial-host:port", entry))
			continue
		}
		cfg.RaftDial[from] = to
	}

	m := &cfg.Replication.Meta
	m.HeartbeatTimeout = r.millis(keyRaftHeartbeatTimeoutMs)
	m.ElectionTimeout = r.millis(keyRaftElectionTimeoutMs)
	m.LeaderLeaseTimeout = r.millis(keyRaftLeaderLeaseTimeoutMs)
	// The partitions' Raft groups use the same timing: how fast a dead
	// leader is replaced is one decision for the whole node.
	pr := &cfg.Replication.PartitionRaft
	// The partitions' groups heartbeat rarely (idle cost); the failure
	// detector replaces a dead node's leaders (raftgroup/failover.go).
	pr.HeartbeatTimeout = time.Duration(r.integer(keyRaftPartitionHeartbeatMs, 10, math.MaxInt32)) * time.Millisecond
	pr.ElectionTimeout, pr.LeaderLeaseTimeout = pr.HeartbeatTimeout, pr.HeartbeatTimeout/2
	cfg.RaftPeerFailureTimeout = time.Duration(r.integer(keyRaftPeerFailureTimeoutMs, 0, math.MaxInt32)) * time.Millisecond
	if cfg.RaftPeerFailureTimeout > 0 && cfg.RaftPeerFailureTimeout < 5*time.Millisecond {
		r.fail(keyRaftPeerFailureTimeoutMs, fmt.Errorf("%v is under 5 ms (0 turns the detector off)", cfg.RaftPeerFailureTimeout))
	}
	pr.SnapshotThreshold = uint64(r.integer(keyRaftSnapshotThreshold, 1, math.MaxInt32))
	// Raft refuses an interval under 5ms.
	pr.SnapshotInterval = time.Duration(r.integer(keyRaftSnapshotIntervalMs, 5, math.MaxInt32)) * time.Millisecond
	pr.TrailingLogs = uint64(r.integer(keyRaftTrailingLogs, 0, math.MaxInt32))
}

// parseMembers parses cluster.initial.members: comma-separated
// id@host:port entries.
func parseMembers(list string) ([]meta.Member, error) {
	var members []meta.Member
	for _, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		id, address, ok := strings.Cut(entry, "@")
		n, err := strconv.ParseInt(id, 10, 32)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not id@raft-host:port[/kafka-host:port] with a node id of 0 or more", entry)
		}
		address, kafka, _ := strings.Cut(address, "/")
		if _, _, err := net.SplitHostPort(address); err != nil {
			return nil, fmt.Errorf("%q: %q is not host:port", entry, address)
		}
		m := meta.Member{ID: int32(n), RaftAddress: address}
		if kafka != "" {
			host, port, err := net.SplitHostPort(kafka)
			p, perr := strconv.ParseUint(port, 10, 16)
			if err != nil || perr != nil || host == "" || p == 0 {
				return nil, fmt.Errorf("%q: Kafka address %q is not host:port", entry, kafka)
			}
			m.Host, m.Port = host, int32(p)
		}
		members = append(members, m)
	}
	return members, nil
}

// rollAge returns the segment age: log.roll.ms if given, else
// log.roll.hours if given, else 7 days (Kafka's precedence).
func rollAge(v *viper.Viper, r *reader) time.Duration {
	if !v.IsSet(keyLogRollMs) && v.IsSet(keyLogRollHours) {
		return time.Duration(r.integer(keyLogRollHours, 1, math.MaxInt32)) * time.Hour
	}
	return time.Duration(r.integer(keyLogRollMs, 1, math.MaxInt64/int64(time.Millisecond))) * time.Millisecond
}

// readCleanup reads the retention, compaction and timestamp-bound defaults
// of topics and the cleaner's schedule.
func readCleanup(v *viper.Viper, r *reader, c *replication.Config) {
	p := &c.Partition
	switch policy := strings.ReplaceAll(r.str(keyLogCleanupPolicy), " ", ""); policy {
	case "delete":
		p.CleanupPolicy = partition.CleanupDelete
	case "compact":
		p.CleanupPolicy = partition.CleanupCompact
	case "compact,delete", "delete,compact":
		p.CleanupPolicy = partition.CleanupCompact | partition.CleanupDelete
	default:
		r.fail(keyLogCleanupPolicy, fmt.Errorf("%q is not delete, compact or compact,delete", policy))
	}
	p.RetentionTime = retentionTime(v, r)
	p.RetentionBytes = r.integer(keyLogRetentionBytes, -1, math.MaxInt64)
	p.DeleteRetention = r.longMillis(keyLogCleanerDeleteRetention, 0)
	p.MinCompactionLag = r.longMillis(keyLogCleanerMinCompactionLag, 0)
	p.MaxCompactionLag = r.longMillis(keyLogCleanerMaxCompactionLag, 1)
	p.TimestampBeforeMax = r.longMillis(keyLogTimestampBeforeMaxMs, 0)
	p.TimestampAfterMax = r.longMillis(keyLogTimestampAfterMaxMs, 0)
	p.ProducerIDExpiration = r.longMillis(keyProducerIDExpirationMs, 1)
	ratio := r.str(keyLogCleanerMinCleanable)
	f, err := strconv.ParseFloat(ratio, 64)
	if err != nil || f < 0 || f > 1 {
		r.fail(keyLogCleanerMinCleanable, fmt.Errorf("%q is not a number between 0 and 1", ratio))
	}
	p.MinCleanableDirtyRatio = f

	c.Cleaner = cleaner.Config{
		RetentionCheckInterval: r.longMillis(keyLogRetentionCheckInterval, 1),
		Enable:                 r.boolean(keyLogCleanerEnable),
		Backoff:                r.longMillis(keyLogCleanerBackoffMs, 1),
		DedupeBufferSize:       r.integer(keyLogCleanerDedupeBuffer, 1<<16, math.MaxInt64),
		IOMaxBytesPerSecond:    r.integer(keyLogCleanerIOMaxBytes, 0, math.MaxInt64),
	}
}

// retentionTime returns log.retention.ms if given, else
// log.retention.minutes if given, else log.retention.hours if given, else
// 7 days (Kafka's precedence). -1 in any of them keeps data forever.
func retentionTime(v *viper.Viper, r *reader) time.Duration {
	scaled := func(key string, unit time.Duration) time.Duration {
		n := r.integer(key, -1, maxMillis/int64(unit/time.Millisecond))
		if n < 0 {
			return -time.Millisecond
		}
		return time.Duration(n) * unit
	}
	switch {
	case v.IsSet(keyLogRetentionMs):
		return scaled(keyLogRetentionMs, time.Millisecond)
	case v.IsSet(keyLogRetentionMinutes):
		return scaled(keyLogRetentionMinutes, time.Minute)
	case v.IsSet(keyLogRetentionHours):
		return scaled(keyLogRetentionHours, time.Hour)
	}
	return defaultRetentionMs * time.Millisecond
}

// validate runs every package's Validate on the final config.
func (c config) validate() error {
	return errors.Join(c.Replication.Validate(), c.Wire.Validate(), c.Groups.Validate(), c.Transactions.Validate(), c.ShareState.Validate(), c.Shares.Validate(), c.Admin.Validate())
}

// defaultAdvertisedAddress is the listen address, with 127.0.0.1 standing in
// for a wildcard or empty host, which a client cannot connect to.
func defaultAdvertisedAddress(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// reader reads typed values and collects every error, so that one run
// reports all bad keys at once.
type reader struct {
	v    *viper.Viper
	errs []error
}

func (r *reader) fail(key string, err error) {
	r.errs = append(r.errs, fmt.Errorf("config %s (env %s, flag --%s): %w", key, envName(key), flagName(key), err))
}

func (r *reader) str(key string) string {
	s, err := cast.ToStringE(r.v.Get(key))
	if err != nil {
		r.fail(key, err)
	}
	return strings.TrimSpace(s)
}

func (r *reader) integer(key string, min, max int64) int64 {
	raw := r.v.Get(key)
	var n int64
	var err error
	if s, ok := raw.(string); ok {
		// cast turns a malformed string into 0 silently; parse strictly.
		n, err = strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	} else {
		n, err = cast.ToInt64E(raw)
	}
	switch {
	case err != nil:
		r.fail(key, fmt.Errorf("%v is not an integer", raw))
	case n < min || n > max:
		r.fail(key, fmt.Errorf("%d is out of range [%d, %d]", n, min, max))
	}
	return n
}

// longMillis reads milliseconds of at least min as a duration; values
// beyond what a duration holds (Kafka's Long.MAX_VALUE) saturate.
func (r *reader) longMillis(key string, min int64) time.Duration {
	n := r.integer(key, min, math.MaxInt64)
	if n > maxMillis {
		return math.MaxInt64
	}
	return time.Duration(n) * time.Millisecond
}

// millis reads a positive number of milliseconds as a duration.
func (r *reader) millis(key string) time.Duration {
	return time.Duration(r.integer(key, 1, math.MaxInt32)) * time.Millisecond
}

func (r *reader) boolean(key string) bool {
	b, err := cast.ToBoolE(r.v.Get(key))
	if err != nil {
		r.fail(key, fmt.Errorf("%v is not true or false", r.v.Get(key)))
	}
	return b
}
