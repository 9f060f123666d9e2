package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/consumergroup/share"
	"github.com/sluice-io/sluice/consumergroup/sharestate"
	"github.com/sluice-io/sluice/partition/record"
	"github.com/sluice-io/sluice/replication"
	"github.com/sluice-io/sluice/replication/configs"
)

// deadLetterClientID names the producer a node writes other nodes'
// dead-letter partitions with.
const deadLetterClientID = "sluice-dead-letters"

// deadLetterWriter writes share groups' dead letters (KIP-1191): into a
// partition this node leads by the cluster's append, into another node's
// with a producer (acks=all, idempotent) over the Kafka listeners, made on
// first use. Safe for concurrent use.
type deadLetterWriter struct {
	cluster *replication.Cluster
	self    int32
	logger  *zap.Logger

	// mu guards client.
	mu     sync.Mutex
	client *kgo.Client
	closed bool
}

var _ share.DeadLetterWriter = (*deadLetterWriter)(nil)

// WriteDeadLetters appends letters to topic, each in partition
// SourcePartition mod the topic's partition count, and returns once they
// are committed. A missing topic is created (createTopic) when
// errors.deadletterqueue.auto.create.topics.enable is set, else it is
// UNKNOWN_TOPIC_OR_PARTITION, and so is a topic that does not set
// errors.deadletterqueue.group.enable (KIP-1191: the topic's owner allows
// its use as a dead-letter topic): the records are archived without dead
// letters rather than delivered again until the topic changes.
func (w *deadLetterWriter) WriteDeadLetters(ctx context.Context, topic string, letters []share.DeadLetter) error {
	t, ok := w.cluster.Topic(topic)
	if !ok || t.PartitionCount() == 0 {
		var err error
		if t, err = w.createTopic(ctx, topic); err != nil {
			return err
		}
	}
	if v := t.Configs()[configs.DeadLetterGroupEnable]; !strings.EqualFold(strings.TrimSpace(v), "true") {
		return fmt.Errorf("topic %q is not a dead-letter topic: set its %s=true to use it as one: %w",
			topic, configs.DeadLetterGroupEnable, kerr.UnknownTopicOrPartition)
	}
	count := t.PartitionCount()
	byPartition := make(map[int32][]share.DeadLetter)
	for _, l := range letters {
		p := l.SourcePartition % count
		byPartition[p] = append(byPartition[p], l)
	}
	var remote []*kgo.Record
	for index, ls := range byPartition {
		err := w.appendLocal(ctx, topic, index, ls)
		if err == nil {
			continue
		}
		if !errors.Is(err, errNotLocal) {
			return err
		}
		for _, l := range ls {
			r := &kgo.Record{Topic: topic, Partition: index, Key: l.Key, Value: l.Value, Timestamp: time.UnixMilli(l.Timestamp)}
			for _, h := range l.Headers {
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
			}
			remote = append(remote, r)
		}
	}
	if len(remote) == 0 {
		return nil
	}
	cl, err := w.producer()
	if err != nil {
		return err
	}
	if err := cl.ProduceSync(ctx, remote...).FirstErr(); err != nil {
		return fmt.Errorf("produce dead letters to %s: %w", topic, err)
	}
	return nil
}

// deadLetterCreateTimeout bounds the creation of a dead-letter topic and
// the wait for this node to see it.
const deadLetterCreateTimeout = 10 * time.Second

// createTopic creates the missing dead-letter topic topic as KIP-1191's
// errors.deadletterqueue.auto.create.topics.enable does, with the
// broker's num.partitions and default.replication.factor and
// errors.deadletterqueue.group.enable=true, and returns it
// once this node's view has it. It creates only a name that carries
// errors.deadletterqueue.topic.name.prefix. When auto-creation is off,
// or the name lacks the prefix, the error is UNKNOWN_TOPIC_OR_PARTITION
// (the share-partition archives the records with a warning). On a node
// that is not the metadata leader the producer's client asks the leader
// (CreateTopics).
func (w *deadLetterWriter) createTopic(ctx context.Context, topic string) (*replication.Topic, error) {
	prefix, autoCreate := w.cluster.DeadLetterTopicRules()
	switch {
	case !autoCreate:
		return nil, fmt.Errorf("dead-letter topic %q does not exist (errors.deadletterqueue.auto.create.topics.enable is false): %w", topic, kerr.UnknownTopicOrPartition)
	case prefix != "" && !strings.HasPrefix(topic, prefix):
		return nil, fmt.Errorf("dead-letter topic %q does not exist and is not created: its name lacks the prefix %q (errors.deadletterqueue.topic.name.prefix): %w",
			topic, prefix, kerr.UnknownTopicOrPartition)
	}
	ctx, cancel := context.WithTimeout(ctx, deadLetterCreateTimeout)
	defer cancel()
	enable := "true"
	_, err := w.cluster.CreateTopic(ctx, replication.CreateTopicRequest{Name: topic, Partitions: -1, ReplicationFactor: -1,
		Configs: map[string]string{configs.DeadLetterGroupEnable: enable}})
	if errors.Is(err, kerr.NotController) {
		var cl *kgo.Client
		if cl, err = w.producer(); err == nil {
			var resp kadm.CreateTopicResponse
			resp, err = kadm.NewClient(cl).CreateTopic(ctx, -1, -1, map[string]*string{configs.DeadLetterGroupEnable: &enable}, topic)
			if err == nil {
				err = resp.Err
			}
		}
	}
	switch {
	case err == nil:
		w.logger.Info("dead-letter topic created (errors.deadletterqueue.auto.create.topics.enable)", zap.String("topic", topic))
	case errors.Is(err, kerr.TopicAlreadyExists):
		// Created meanwhile, by another share-partition or node.
	default:
		return nil, fmt.Errorf("create dead-letter topic %q: %w", topic, err)
	}
	var t *replication.Topic
	if err := w.cluster.WaitView(ctx, func() bool {
		var ok bool
		t, ok = w.cluster.Topic(topic)
		return ok && t.PartitionCount() > 0
	}); err != nil {
		return nil, fmt.Errorf("dead-letter topic %q created but not seen here: %w", topic, err)
	}
	return t, nil
}

// errNotLocal marks a dead-letter partition this node does not lead (or
// holds no replica of): the peer producer writes it.
var errNotLocal = errors.New("dead-letter partition not led here")

// appendLocal appends letters to partition index of topic when this node
// leads it, and waits for the commit; errNotLocal when it does not.
func (w *deadLetterWriter) appendLocal(ctx context.Context, topic string, index int32, letters []share.DeadLetter) error {
	p, err := w.cluster.Partition(topic, index)
	if err != nil {
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("dead-letter partition %s-%d: %w", topic, index, err)
		}
		return errNotLocal
	}
	if node, _ := p.Leader(); node != w.self {
		return errNotLocal
	}
	var b record.Builder
	for _, l := range letters {
		b.Add(l.Timestamp, l.Key, l.Value, l.Headers...)
	}
	batch, err := b.AppendTo(nil)
	if err != nil {
		return fmt.Errorf("build dead letters for %s-%d: %w", topic, index, err)
	}
	appended, err := p.Append(ctx, batch)
	if errors.Is(err, kerr.NotLeaderForPartition) {
		// Leadership moved since the check: the peer producer finds
		// the new leader.
		return errNotLocal
	}
	if err == nil {
		err = appended.Wait(ctx)
	}
	if err != nil {
		return fmt.Errorf("append dead letters to %s-%d: %w", topic, index, err)
	}
	return nil
}

// producer returns the client for other nodes' partitions, made on first
// use with the cluster's brokers as seeds.
func (w *deadLetterWriter) producer() (*kgo.Client, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, fmt.Errorf("dead letters: %w", kerr.NotLeaderForPartition)
	}
	if w.client != nil {
		return w.client, nil
	}
	var seeds []string
	for _, b := range w.cluster.Brokers() {
		seeds = append(seeds, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))))
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID(deadLetterClientID),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return nil, fmt.Errorf("dead-letter producer: %w", err)
	}
	w.client = cl
	return cl, nil
}

// Close closes the producer, if one was made.
func (w *deadLetterWriter) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	if w.client != nil {
		w.client.Close()
		w.client = nil
	}
}

// newShares returns the share-group data plane (ShareFetch,
// ShareAcknowledge) over persister, the share coordinator's client, and
// its dead-letter writer; nil, nil when persister is nil (no share
// coordinator: share groups are not served). Group configs come from the
// cluster's metadata when it serves them (ShareGroupConfig), else Kafka's
// defaults.
func newShares(cfg config, cluster *replication.Cluster, persister sharestate.Persister, logger *zap.Logger) (*share.Manager, *deadLetterWriter) {
	if persister == nil {
		return nil, nil
	}
	var groupConfigs share.GroupConfigs = share.DefaultGroupConfigs{}
	if gc, ok := any(cluster).(share.GroupConfigs); ok {
		groupConfigs = gc
	}
	dead := &deadLetterWriter{cluster: cluster, self: cfg.Replication.NodeID, logger: logger}
	m := share.NewManager(cfg.Shares, cfg.Replication.NodeID, persister, groupConfigs, share.Options{Logger: logger, DeadLetters: dead})
	return m, dead
}
