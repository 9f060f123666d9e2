package replication

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
)

// Config describes this node and the defaults for the topics it creates.
type Config struct {
	// NodeID is this broker's id in Metadata. Corresponds to node.id.
	// Default 0.
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
	Cleaner CleanerConfig
}

// CleanerConfig schedules the background work that removes old data:
// retention (cleanup.policy delete) and compaction (cleanup.policy
// compact). Every field can also change at run time as a dynamic broker
// config.
type CleanerConfig struct {
	// RetentionCheckInterval is the time between two retention passes
	// over every partition. Corresponds to log.retention.check.interval.ms.
	// Default 5 minutes.
	RetentionCheckInterval time.Duration
	// Enable runs the cleaner, which compacts the partitions of compacted
	// topics (__consumer_offsets among them). Corresponds to
	// log.cleaner.enable. Default true.
	Enable bool
	// Backoff is the time between two cleaner rounds. Corresponds to
	// log.cleaner.backoff.ms. Default 15 seconds.
	Backoff time.Duration
	// DedupeBufferSize bounds the memory of one compaction's key map, in
	// bytes. Corresponds to log.cleaner.dedupe.buffer.size. Default 128 MiB.
	DedupeBufferSize int64
	// IOMaxBytesPerSecond throttles the cleaner's reads and writes; zero
	// is unthrottled. Corresponds to log.cleaner.io.max.bytes.per.second.
	// Default 0.
	IOMaxBytesPerSecond int64
}

// DefaultCleanerConfig returns Kafka's defaults.
func DefaultCleanerConfig() CleanerConfig {
	return CleanerConfig{
		RetentionCheckInterval: 5 * time.Minute,
		Enable:                 true,
		Backoff:                15 * time.Second,
		DedupeBufferSize:       128 << 20,
	}
}

// Validate reports a CleanerConfig that cannot work.
func (c CleanerConfig) Validate() error {
	switch {
	case c.RetentionCheckInterval < time.Millisecond:
		return fmt.Errorf("replication: log.retention.check.interval.ms %s must be at least 1ms", c.RetentionCheckInterval)
	case c.Backoff < time.Millisecond:
		return fmt.Errorf("replication: log.cleaner.backoff.ms %s must be at least 1ms", c.Backoff)
	case c.DedupeBufferSize < 1<<16:
		return fmt.Errorf("replication: log.cleaner.dedupe.buffer.size %d must be at least 65536", c.DedupeBufferSize)
	case c.IOMaxBytesPerSecond < 0:
		return fmt.Errorf("replication: log.cleaner.io.max.bytes.per.second %d is negative", c.IOMaxBytesPerSecond)
	}
	return nil
}

// DefaultConfig returns a single node on 127.0.0.1:9092 storing under
// ./data.
func DefaultConfig() Config {
	return Config{
		NodeID:            0,
		DataDir:           "./data",
		AdvertisedHost:    "127.0.0.1",
		AdvertisedPort:    9092,
		DefaultPartitions: 1,
		AutoCreateTopics:  true,
		Partition:         partition.DefaultConfig(),
		Cleaner:           DefaultCleanerConfig(),
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
	}
	if err := c.Cleaner.Validate(); err != nil {
		return err
	}
	return c.Partition.Validate()
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
	// Logger; nil means nop.
	Logger *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// FS is the filesystem; nil means the OS.
	FS log.FS
}
