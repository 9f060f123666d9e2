package wire

// Metadata (key 3), versions 0-13.
//
// Describes the cluster's brokers and the requested topics (all topics when
// the request names none: an empty list in v0, a null list in v1+). Each
// partition's leader and leader epoch are its Raft group's leader and term
// as this node knows them (LEADER_NOT_AVAILABLE while none is known): on a
// node holding no replica, the leader and epoch the metadata records from
// the leader's report of its election. Its replicas are the nodes
// placement chose, its ISR those the leader hears from (Partition.Leader,
// Replicas, InSync).
//
// Only live brokers are listed, as a KRaft broker lists only unfenced
// ones: a node this node's failure detector holds down (the Raft
// transport's peer liveness, replication.Broker.Down) leaves the list
// within a few seconds of dying and is back once heard from again. A
// partition whose leader is not listed answers LEADER_NOT_AVAILABLE with
// leader -1 and its leader epoch kept, as Kafka answers a leader without
// a live endpoint, so that clients look again rather than dial a dead
// node; its replicas and ISR keep every id (v1+), and the replicas on
// nodes not listed are its offline replicas (v5+). v0, as Kafka's,
// filters the replicas and ISR to listed nodes, answering
// REPLICA_NOT_AVAILABLE when that drops any under a live leader. The
// controller (v1+) is -1 while it is not listed either.
//
// Unknown topics are created with the broker defaults when
// auto.create.topics.enable is on and the request allows it (v4+
// AllowAutoTopicCreation; always allowed before v4), as Kafka does; the
// topic is created before answering, so the first answer already has its
// partitions. A node that is not the metadata leader creates it through
// the leader (forward_admin.go) and answers once its own view has it, or
// LEADER_NOT_AVAILABLE (retriable) when no leader is known, the forward
// fails, or it takes longer than 30s.
// Otherwise they are UNKNOWN_TOPIC_OR_PARTITION; a bad name is
// INVALID_TOPIC_EXCEPTION. Topics asked for by id (v10+) that do not exist
// are UNKNOWN_TOPIC_ID.
//
// Version notes: v1 adds rack, controller and internal flags; v2 cluster
// id; v4 AllowAutoTopicCreation; v5 offline replicas; v7 leader epoch
// (KIP-320); v8 authorized operations (KIP-430); v9 flexible; v10 topic ids
// (KIP-516); v11 drops cluster authorized operations; v12 allows a null
// topic name with an id; v13 (KIP-1102) adds a top-level error code.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication"
)

// allTopicOperations and allClusterOperations are the KIP-430 bit fields
// of every operation: Sluice has no ACLs, so everything is authorized.
const (
	// READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS,
	// ALTER_CONFIGS.
	allTopicOperations int32 = 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11
	// CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS,
	// ALTER_CONFIGS, IDEMPOTENT_WRITE.
	allClusterOperations int32 = 1<<5 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12
)

func handleMetadata(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)

	live := make(map[int32]bool)
	for _, b := range replication.LiveBrokers(s.cluster.Brokers()) {
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port, mb.Rack = b.NodeID, b.Host, b.Port, b.Rack
		resp.Brokers = append(resp.Brokers, mb)
		live[b.NodeID] = true
	}
	clusterID := s.cluster.ClusterID()
	resp.ClusterID = &clusterID
	resp.ControllerID = s.cluster.ControllerID()
	if !live[resp.ControllerID] {
		// A controller not listed is none: clients ask again.
		resp.ControllerID = -1
	}
	if req.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = allClusterOperations
	}

	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		for _, t := range s.cluster.Topics() {
			resp.Topics = append(resp.Topics, s.metadataTopic(t, req.IncludeTopicAuthorizedOperations, live, req.Version == 0))
		}
		return reply{resp: resp}
	}
	autoCreate := s.cluster.AutoCreateTopics() && (req.Version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		var t Topic
		var err error
		switch {
		case rt.Topic != nil:
			t, err = s.lookupOrCreateTopic(ctx, *rt.Topic, autoCreate)
		case rt.TopicID != [16]byte{}:
			var ok bool
			if t, ok = s.cluster.TopicByID(rt.TopicID); !ok {
				err = kerr.UnknownTopicID
			}
		default:
			err = kerr.InvalidTopicException
		}
		if err != nil {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.TopicID, mt.ErrorCode = rt.Topic, rt.TopicID, s.errorCode(err)
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, s.metadataTopic(t, req.IncludeTopicAuthorizedOperations, live, req.Version == 0))
	}
	return reply{resp: resp}
}

// lookupOrCreateTopic returns the named topic, creating it with the broker
// defaults when autoCreate is set. A topic created concurrently by someone
// else is simply returned.
func (s *Server) lookupOrCreateTopic(ctx context.Context, name string, autoCreate bool) (Topic, error) {
	if t, ok := s.cluster.Topic(name); ok {
		return t, nil
	}
	if err := replication.ValidateTopicName(name); err != nil {
		return nil, err
	}
	if !autoCreate {
		return nil, kerr.UnknownTopicOrPartition
	}
	t, err := s.cluster.CreateTopic(ctx, replication.CreateTopicRequest{Name: name, Partitions: -1, ReplicationFactor: -1})
	if errors.Is(err, kerr.NotController) {
		return s.forwardAutoCreate(ctx, name, err)
	}
	if errors.Is(err, kerr.TopicAlreadyExists) {
		if t, ok := s.cluster.Topic(name); ok {
			return t, nil
		}
	}
	return t, err
}

// metadataTopic describes t; live holds the brokers the response lists.
// With filterReplicas (v0) replicas and ISR name only live brokers.
func (s *Server) metadataTopic(t Topic, includeOperations bool, live map[int32]bool, filterReplicas bool) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name()
	mt.Topic, mt.TopicID, mt.IsInternal = &name, t.ID(), t.Internal()
	if includeOperations {
		mt.AuthorizedOperations = allTopicOperations
	}
	for i := range t.PartitionCount() {
		p := t.Partition(i)
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = i
		mp.Leader, mp.LeaderEpoch = p.Leader()
		mp.Replicas = p.Replicas()
		mp.ISR = p.InSync()
		mp.OfflineReplicas = []int32{}
		for _, r := range mp.Replicas {
			if !live[r] {
				mp.OfflineReplicas = append(mp.OfflineReplicas, r)
			}
		}
		if filterReplicas {
			replicas, isr := liveOnly(mp.Replicas, live), liveOnly(mp.ISR, live)
			if len(replicas) < len(mp.Replicas) || len(isr) < len(mp.ISR) {
				mp.ErrorCode = kerr.ReplicaNotAvailable.Code
			}
			mp.Replicas, mp.ISR = replicas, isr
		}
		// A leader clients cannot reach (no leader, or one not listed) is
		// no leader: they look again instead of dialling a dead node.
		if mp.Leader < 0 || !live[mp.Leader] {
			mp.Leader = -1
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// liveOnly returns the ids of nodes that are live, in order, in a new
// slice.
func liveOnly(nodes []int32, live map[int32]bool) []int32 {
	out := make([]int32, 0, len(nodes))
	for _, n := range nodes {
		if live[n] {
			out = append(out, n)
		}
	}
	return out
}
