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
	"github.com/sluice-io/sluice/replication/cleaner"
	"github.com/sluice-io/sluice/replication/configs"
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
	Cleaner cleaner.Config
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
		Cleaner:           cleaner.DefaultConfig(),
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

// broker returns the settings the broker configs read and set.
func (c Config) broker() configs.Broker {
	return configs.Broker{
		NodeID: c.NodeID, DataDir: c.DataDir, AdvertisedHost: c.AdvertisedHost, AdvertisedPort: c.AdvertisedPort,
		DefaultPartitions: c.DefaultPartitions, AutoCreateTopics: c.AutoCreateTopics,
		Partition: c.Partition, Cleaner: c.Cleaner,
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
	// Logger; nil means nop.
	Logger *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// FS is the filesystem; nil means the OS.
	FS log.FS
	// SyncObserver, if set, is told of every sync the node's flusher does
	// (metrics); it is called from the flusher's goroutine and must not
	// block.
	SyncObserver log.SyncObserver
}
