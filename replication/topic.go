package replication

import (
	"context"
	"crypto/rand"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication/configs"
	"github.com/sluice-io/sluice/replication/meta"
)

// maxPartitions bounds one topic's partition count so a typo cannot open a
// million files.
const maxPartitions = meta.MaxPartitions

// Topic is one topic as this node sees it: its id, config overrides and
// partitions, built from the metadata state (view.go). A *Topic is never
// modified: a change (configs, more partitions) replaces it, so a reader
// holding one sees a consistent snapshot.
type Topic struct {
	name     string
	id       [16]byte
	internal bool

	overrides  map[string]string
	config     partition.Config
	partitions []*Partition

	// source is the metadata topic it was built from; complete is false
	// when a replica assigned here failed to open (retried at the next
	// change).
	source   *meta.Topic
	complete bool
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
	p := t.partitions[index]
	if p.replica == nil {
		return nil, kerr.NotLeaderForPartition
	}
	return p, nil
}

// CreateTopicRequest describes a topic to create.
type CreateTopicRequest struct {
	Name string
	// Partitions; -1 means the broker default.
	Partitions int32
	// ReplicationFactor; -1 means the broker default, 1. At most the
	// number of active nodes.
	ReplicationFactor int16
	// CapReplicationFactor lowers ReplicationFactor to the number of
	// active nodes instead of refusing it: internal topics, whose factor
	// is a broker config (offsets.topic.replication.factor), get min(it,
	// live nodes), so a single node starts with the default of 3.
	CapReplicationFactor bool
	// Configs are topic config overrides by Kafka name.
	Configs map[string]string
	// ValidateOnly checks the request without creating anything.
	ValidateOnly bool
	// Internal marks a topic the broker owns (__consumer_offsets): it is
	// flagged internal in Metadata and cannot be deleted by clients.
	Internal bool
}

// ValidateTopicName returns kerr.InvalidTopicException with a message for a
// name Kafka would refuse (the rule is meta.ValidateTopicName's).
func ValidateTopicName(name string) error { return meta.ValidateTopicName(name) }

// CreateTopic creates a topic and its partitions and returns it, once
// this node's view has it. Errors are kerr.TopicAlreadyExists,
// InvalidTopicException, InvalidPartitions, InvalidReplicationFactor,
// InvalidConfig (with messages), NotController on a node that is not the
// metadata leader, or ErrClosed. An Internal topic asked for on a node
// that is not the leader is awaited instead (the leader's coordinator
// creates it): kerr.TopicAlreadyExists once it is there.
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
	if req.ReplicationFactor == -1 {
		req.ReplicationFactor = 1
	}
	if err := configs.ValidateTopic(req.Configs); err != nil {
		return nil, err
	}
	if c.isClosed() {
		return nil, ErrClosed
	}
	if err := c.controller(); err != nil {
		if req.Internal && !req.ValidateOnly {
			return nil, c.waitInternalTopic(ctx, req.Name, err)
		}
		return nil, err
	}
	s := c.group.State()
	config, err := configs.ResolveTopic(c.effectiveOf(s).Partition, req.Configs)
	if err != nil {
		return nil, err
	}
	if _, ok := s.Topic(req.Name); ok {
		return nil, fmt.Errorf("topic %q already exists: %w", req.Name, kerr.TopicAlreadyExists)
	}
	if n := len(s.NodeIDs(true)); req.CapReplicationFactor && n > 0 && int(req.ReplicationFactor) > n {
		req.ReplicationFactor = int16(n)
	}
	assignment, err := s.Place(req.Partitions, req.ReplicationFactor)
	if err != nil {
		return nil, err
	}
	if req.ValidateOnly {
		return &Topic{name: req.Name, overrides: req.Configs, config: config, partitions: make([]*Partition, req.Partitions)}, nil
	}
	var id meta.TopicID
	rand.Read(id[:])
	if _, err := c.propose(ctx, &meta.CreateTopic{Name: req.Name, ID: id, Internal: req.Internal, Configs: copyConfigs(req.Configs), Assignment: assignment}); err != nil {
		return nil, err
	}
	t, ok := c.TopicByID(id)
	if !ok {
		// Created and deleted again before this node's view caught up.
		return nil, fmt.Errorf("topic %q was deleted right after its creation: %w", req.Name, kerr.UnknownTopicOrPartition)
	}
	c.awaitLeaders(ctx, t)
	return t, nil
}

// awaitLeaders waits a little for the groups of t's partitions that this
// node alone replicates to lead, so that a produce right after a create
// finds its leader; on a timeout the clients' retries cover the rest.
func (c *Cluster) awaitLeaders(ctx context.Context, t *Topic) {
	refs := make([]meta.PartitionRef, 0, len(t.partitions))
	for i := range t.partitions {
		refs = append(refs, meta.PartitionRef{TopicID: t.id, Topic: t.name, Partition: int32(i)})
	}
	if err := c.waitLocalLeaders(ctx, refs); err != nil {
		c.logger.Debug("partitions of a new topic not led yet", zap.String("topic", t.name), zap.Error(err))
	}
}

// waitInternalTopic waits, on a node that is not the metadata leader, for
// an internal topic the leader's own coordinator creates at its start,
// and reports it as kerr.TopicAlreadyExists once this node's view has it;
// notLeader is returned if it does not appear within ctx (or
// Meta.ProposeTimeout without a deadline).
func (c *Cluster) waitInternalTopic(ctx context.Context, name string, notLeader error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Meta.ProposeTimeout)
		defer cancel()
	}
	for {
		c.mu.RLock()
		_, ok := c.topics[name]
		ch, closed := c.viewChanged, c.closed
		c.mu.RUnlock()
		switch {
		case ok:
			return fmt.Errorf("internal topic %q is created by the metadata leader: %w", name, kerr.TopicAlreadyExists)
		case closed:
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return notLeader
		}
	}
}

// DeleteTopic deletes a topic; every node deletes its replicas' data once
// the deletion is applied. Unknown topics are
// kerr.UnknownTopicOrPartition; others as CreateTopic.
func (c *Cluster) DeleteTopic(ctx context.Context, name string) error {
	if c.isClosed() {
		return ErrClosed
	}
	if err := c.controller(); err != nil {
		return err
	}
	t, ok := c.group.State().Topic(name)
	if !ok {
		return kerr.UnknownTopicOrPartition
	}
	if t.Internal {
		return fmt.Errorf("topic %q is internal: %w", name, kerr.InvalidTopicException)
	}
	_, err := c.propose(ctx, &meta.DeleteTopic{Name: name, ID: t.ID})
	return err
}

// CreatePartitions grows a topic to count partitions, placing the new
// ones with the replication factor of its first. Errors are
// kerr.UnknownTopicOrPartition and kerr.InvalidPartitions with a message;
// others as CreateTopic.
func (c *Cluster) CreatePartitions(ctx context.Context, name string, count int32, validateOnly bool) error {
	if c.isClosed() {
		return ErrClosed
	}
	if err := c.controller(); err != nil {
		return err
	}
	s := c.group.State()
	t, ok := s.Topic(name)
	if !ok {
		return kerr.UnknownTopicOrPartition
	}
	have := int32(len(t.Partitions))
	switch {
	case count < have:
		return fmt.Errorf("topic %q has %d partitions; the count can only grow: %w", name, have, kerr.InvalidPartitions)
	case count == have:
		return fmt.Errorf("topic %q already has %d partitions: %w", name, have, kerr.InvalidPartitions)
	case count > maxPartitions:
		return fmt.Errorf("partition count %d is above the limit of %d: %w", count, maxPartitions, kerr.InvalidPartitions)
	}
	assignment, err := s.PlaceMore(t, count)
	if err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	if _, err = c.propose(ctx, &meta.CreatePartitions{Topic: name, Count: count, Assignment: assignment}); err != nil {
		return err
	}
	if t, ok := c.Topic(name); ok {
		c.awaitLeaders(ctx, t)
	}
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
	layers := c.layersOf(c.applied)
	c.mu.RUnlock()
	return layers.DescribeTopic(t.overrides), nil
}
