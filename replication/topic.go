package replication

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication/configs"
)

// maxTopicNameLength is Kafka's limit (249: room for "-<partition>" and
// suffixes in a 255-byte file name).
const maxTopicNameLength = 249

// maxPartitions bounds one topic's partition count so a typo cannot open a
// million files.
const maxPartitions = 10000

// Topic is one topic: its id, config overrides and partitions. A *Topic is
// never modified: a change (configs, more partitions) replaces it, so a
// reader holding one sees a consistent snapshot.
type Topic struct {
	name     string
	id       [16]byte
	internal bool

	overrides  map[string]string
	config     partition.Config
	partitions []*Partition
}

// Name returns the topic's name.
func (t *Topic) Name() string { return t.name }

// ID returns the topic's 16-byte id (KIP-516), zero for a topic of a
// CreateTopic with ValidateOnly.
func (t *Topic) ID() [16]byte { return t.id }

// Internal reports a topic the broker owns (__consumer_offsets): flagged
// internal in Metadata, and clients cannot delete it or its records.
func (t *Topic) Internal() bool { return t.internal }

// PartitionCount returns the number of partitions.
func (t *Topic) PartitionCount() int32 { return int32(len(t.partitions)) }

// Partition returns partition index, which must be in [0,
// PartitionCount()). After a CreateTopic with ValidateOnly it is nil.
func (t *Topic) Partition(index int32) *Partition { return t.partitions[index] }

// Configs returns the topic's config overrides; the caller must not modify
// the map.
func (t *Topic) Configs() map[string]string { return t.overrides }

func (t *Topic) persisted() topicState {
	return topicState{Name: t.name, ID: hex.EncodeToString(t.id[:]), Partitions: int32(len(t.partitions)), Configs: t.overrides, Internal: t.internal}
}

// Topics returns every topic, sorted by name.
func (c *Cluster) Topics() []*Topic {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ts := make([]*Topic, 0, len(c.topics))
	for _, t := range c.topics {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].name < ts[j].name })
	return ts
}

// Topic returns the named topic.
func (c *Cluster) Topic(name string) (*Topic, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.topics[name]
	return t, ok
}

// TopicByID returns the topic with the given id.
func (c *Cluster) TopicByID(id [16]byte) (*Topic, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.topicsByID[id]
	return t, ok
}

// Partition returns a partition of a topic, or kerr.UnknownTopicOrPartition.
func (c *Cluster) Partition(topic string, index int32) (*Partition, error) {
	c.mu.RLock()
	t, ok := c.topics[topic]
	c.mu.RUnlock()
	if !ok || index < 0 || int(index) >= len(t.partitions) {
		return nil, kerr.UnknownTopicOrPartition
	}
	return t.partitions[index], nil
}

// CreateTopicRequest describes a topic to create.
type CreateTopicRequest struct {
	Name string
	// Partitions; -1 means the broker default.
	Partitions int32
	// ReplicationFactor; -1 means the broker default. Only 1 is possible
	// on a single node.
	ReplicationFactor int16
	// Configs are topic config overrides by Kafka name.
	Configs map[string]string
	// ValidateOnly checks the request without creating anything.
	ValidateOnly bool
	// Internal marks a topic the broker owns (__consumer_offsets): it is
	// flagged internal in Metadata and cannot be deleted by clients.
	Internal bool
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

// CreateTopic creates a topic and its partitions and returns it. Errors
// are kerr.TopicAlreadyExists, InvalidTopicException, InvalidPartitions,
// InvalidReplicationFactor, InvalidConfig (with messages) or storage
// failures.
func (c *Cluster) CreateTopic(ctx context.Context, req CreateTopicRequest) (*Topic, error) {
	if err := ValidateTopicName(req.Name); err != nil {
		return nil, err
	}
	if req.Partitions == -1 {
		req.Partitions = c.cfg.DefaultPartitions
	}
	if req.Partitions < 1 || req.Partitions > maxPartitions {
		return nil, fmt.Errorf("partition count %d must be between 1 and %d: %w", req.Partitions, maxPartitions, kerr.InvalidPartitions)
	}
	if req.ReplicationFactor != -1 && req.ReplicationFactor != 1 {
		return nil, fmt.Errorf("replication factor %d is larger than the 1 available broker: %w", req.ReplicationFactor, kerr.InvalidReplicationFactor)
	}
	if err := configs.ValidateTopic(req.Configs); err != nil {
		return nil, err
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	config, err := configs.ResolveTopic(c.effective.Partition, req.Configs)
	if err != nil {
		return nil, err
	}
	if _, ok := c.topics[req.Name]; ok {
		return nil, fmt.Errorf("topic %q already exists: %w", req.Name, kerr.TopicAlreadyExists)
	}
	if req.ValidateOnly {
		return &Topic{name: req.Name, overrides: req.Configs, config: config, partitions: make([]*Partition, req.Partitions)}, nil
	}
	var id [16]byte
	rand.Read(id[:])
	overrides := make(map[string]string, len(req.Configs))
	for k, v := range req.Configs {
		overrides[k] = v
	}
	t := &Topic{name: req.Name, id: id, internal: req.Internal, overrides: overrides, config: config}
	ps, err := c.openPartitions(t, 0, req.Partitions)
	if err != nil {
		return nil, err
	}
	t.partitions = ps
	c.topics[t.name] = t
	c.topicsByID[t.id] = t
	if err := c.saveLocked(nil); err != nil {
		delete(c.topics, t.name)
		delete(c.topicsByID, t.id)
		for _, p := range ps {
			p.replica.Delete()
		}
		return nil, err
	}
	c.logger.Info("topic created", zap.String("topic", t.name), zap.Int32("partitions", req.Partitions))
	return t, nil
}

// openTopic opens a persisted topic's partitions.
func (c *Cluster) openTopic(ts topicState) (*Topic, error) {
	t := &Topic{name: ts.Name, internal: ts.Internal, overrides: ts.Configs}
	if t.overrides == nil {
		t.overrides = map[string]string{}
	}
	raw, err := hex.DecodeString(ts.ID)
	if err != nil || len(raw) != 16 {
		return nil, fmt.Errorf("topic id %q is not 32 hex digits", ts.ID)
	}
	copy(t.id[:], raw)
	config, err := configs.ResolveTopic(c.effective.Partition, ts.Configs)
	if err != nil {
		return nil, fmt.Errorf("stored configs: %w", err)
	}
	t.config = config
	ps, err := c.openPartitions(t, 0, ts.Partitions)
	if err != nil {
		return nil, err
	}
	t.partitions = ps
	return t, nil
}

// openPartitions opens replicas [from, to) of t; on failure it closes the
// ones it opened.
func (c *Cluster) openPartitions(t *Topic, from, to int32) ([]*Partition, error) {
	ps := make([]*Partition, 0, to-from)
	for i := from; i < to; i++ {
		r, err := partition.Open(c.partitionDir(t.name, i), t.name, i, t.config, c.partitionOptions())
		if err != nil {
			for _, p := range ps {
				p.replica.Close()
			}
			return nil, fmt.Errorf("open partition %s-%d: %w", t.name, i, err)
		}
		ps = append(ps, &Partition{replica: r, Topic: t.name, Index: i})
	}
	return ps, nil
}

// DeleteTopic deletes a topic and its data. Unknown topics are
// kerr.UnknownTopicOrPartition.
func (c *Cluster) DeleteTopic(ctx context.Context, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	t, ok := c.topics[name]
	if !ok {
		return kerr.UnknownTopicOrPartition
	}
	if t.internal {
		return fmt.Errorf("topic %q is internal: %w", name, kerr.InvalidTopicException)
	}
	delete(c.topics, name)
	delete(c.topicsByID, t.id)
	// Forget the topic durably first: a crash after this leaves orphan
	// directories, which Open removes, never a topic with missing data.
	if err := c.saveLocked(nil); err != nil {
		c.topics[name] = t
		c.topicsByID[t.id] = t
		return err
	}
	for _, p := range t.partitions {
		if err := p.replica.Delete(); err != nil {
			c.logger.Warn("delete partition data", zap.String("topic", name), zap.Int32("partition", p.Index), zap.Error(err))
		}
	}
	c.logger.Info("topic deleted", zap.String("topic", name))
	return nil
}

// CreatePartitions grows a topic to count partitions. Errors are
// kerr.UnknownTopicOrPartition and kerr.InvalidPartitions with a message.
func (c *Cluster) CreatePartitions(ctx context.Context, name string, count int32, validateOnly bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	t, ok := c.topics[name]
	if !ok {
		return kerr.UnknownTopicOrPartition
	}
	have := int32(len(t.partitions))
	switch {
	case count < have:
		return fmt.Errorf("topic %q has %d partitions; the count can only grow: %w", name, have, kerr.InvalidPartitions)
	case count == have:
		return fmt.Errorf("topic %q already has %d partitions: %w", name, have, kerr.InvalidPartitions)
	case count > maxPartitions:
		return fmt.Errorf("partition count %d is above the limit of %d: %w", count, maxPartitions, kerr.InvalidPartitions)
	}
	if validateOnly {
		return nil
	}
	added, err := c.openPartitions(t, have, count)
	if err != nil {
		return err
	}
	grown := &Topic{name: t.name, id: t.id, internal: t.internal, overrides: t.overrides, config: t.config,
		partitions: append(append([]*Partition(nil), t.partitions...), added...)}
	c.topics[name] = grown
	c.topicsByID[t.id] = grown
	if err := c.saveLocked(nil); err != nil {
		c.topics[name] = t
		c.topicsByID[t.id] = t
		for _, p := range added {
			p.replica.Delete()
		}
		return err
	}
	c.logger.Info("partitions added", zap.String("topic", name), zap.Int32("from", have), zap.Int32("to", count))
	return nil
}

// DescribeTopicConfigs returns every config of a topic with its value and
// source.
func (c *Cluster) DescribeTopicConfigs(name string) ([]configs.Entry, error) {
	t, ok := c.Topic(name)
	if !ok {
		return nil, kerr.UnknownTopicOrPartition
	}
	c.mu.RLock()
	layers := c.layersLocked()
	c.mu.RUnlock()
	return layers.DescribeTopic(t.overrides), nil
}
