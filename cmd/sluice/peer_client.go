package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication"
	"github.com/sluice-io/sluice/replication/meta"
	"github.com/sluice-io/sluice/wire"
)

// peerClient reaches other nodes over their Kafka listeners
// (replication.PeerClient): the requests are rare (one per finished
// reassignment, one per preferred leader election passed on), so each
// opens a client and closes it.
type peerClient struct {
	// self is this node's id, sent as the requesting broker.
	self int32
}

var _ replication.PeerClient = peerClient{}

// CompleteReassignment sends AlterPartition to the controller with the
// partition's new voters as its ISR; the controller finalises the
// reassignment whose target they are (wire/56_alter_partition.go).
func (cc peerClient) CompleteReassignment(ctx context.Context, controller replication.Broker, topic string, topicID [16]byte, partition int32, target []int32) error {
	addr := net.JoinHostPort(controller.Host, strconv.Itoa(int(controller.Port)))
	// The peer client id: AlterPartition is between nodes only.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID(wire.PeerClientID))
	if err != nil {
		return fmt.Errorf("client for controller %d at %s: %w", controller.NodeID, addr, err)
	}
	defer cl.Close()
	req := kmsg.NewPtrAlterPartitionRequest()
	req.BrokerID = cc.self
	rt := kmsg.NewAlterPartitionRequestTopic()
	// Names up to v1, ids from v2: the client picks the version.
	rt.Topic, rt.TopicID = topic, topicID
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.Partition = partition
	rp.NewISR = target
	for _, id := range target {
		e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
		e.BrokerID = id
		rp.NewEpochISR = append(rp.NewEpochISR, e)
	}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("AlterPartition to controller %d at %s: %w", controller.NodeID, addr, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("controller %d: %w", controller.NodeID, err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("controller %d, partition %s-%d: %w", controller.NodeID, topic, p.Partition, err)
			}
		}
	}
	return nil
}

// ElectPreferred sends ElectLeaders (preferred) for one partition to its
// leader, with wire.PeerClientID, so the leader answers it itself.
func (cc peerClient) ElectPreferred(ctx context.Context, leader replication.Broker, topic string, partition int32) error {
	addr := net.JoinHostPort(leader.Host, strconv.Itoa(int(leader.Port)))
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID(wire.PeerClientID))
	if err != nil {
		return fmt.Errorf("client for node %d at %s: %w", leader.NodeID, addr, err)
	}
	defer cl.Close()
	req := kmsg.NewPtrElectLeadersRequest()
	rt := kmsg.NewElectLeadersRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{partition}
	req.Topics = append(req.Topics, rt)
	if d, ok := ctx.Deadline(); ok {
		req.TimeoutMillis = int32(max(time.Until(d).Milliseconds(), 1))
	}
	// Sent to this broker, not to the controller kgo would pick.
	resp, err := req.RequestWith(ctx, cl.Broker(int(leader.NodeID)))
	if err != nil {
		return fmt.Errorf("ElectLeaders to node %d at %s: %w", leader.NodeID, addr, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("node %d: %w", leader.NodeID, err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				msg := ""
				if p.ErrorMessage != nil {
					msg = *p.ErrorMessage + ": "
				}
				return fmt.Errorf("node %d: %s%w", leader.NodeID, msg, err)
			}
		}
	}
	return nil
}

// Join registers this node with the controller of the cluster reached at
// address (BrokerRegistration, the Raft address as the RAFT listener).
// The controller is found through Metadata; NOT_CONTROLLER (it moved
// meanwhile) is returned for the caller to retry.
func (cc peerClient) Join(ctx context.Context, address, clusterID string, self meta.Member) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(address), kgo.ClientID(wire.PeerClientID))
	if err != nil {
		return fmt.Errorf("client for %s: %w", address, err)
	}
	defer cl.Close()
	md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("metadata from %s: %w", address, err)
	}
	if md.ControllerID < 0 {
		return fmt.Errorf("%s knows no controller yet: %w", address, kerr.NotController)
	}
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.BrokerID, req.ClusterID = self.ID, clusterID
	if self.Rack != "" {
		rack := self.Rack
		req.Rack = &rack
	}
	kafka := kmsg.NewBrokerRegistrationRequestListener()
	kafka.Name, kafka.Host, kafka.Port = "PLAINTEXT", self.Host, uint16(self.Port)
	raftHost, raftPort, err := net.SplitHostPort(self.RaftAddress)
	if err != nil {
		return fmt.Errorf("raft address %q: %w", self.RaftAddress, err)
	}
	port, err := strconv.ParseUint(raftPort, 10, 16)
	if err != nil {
		return fmt.Errorf("raft address %q: %w", self.RaftAddress, err)
	}
	raftL := kmsg.NewBrokerRegistrationRequestListener()
	raftL.Name, raftL.Host, raftL.Port = wire.RaftListenerName, raftHost, uint16(port)
	req.Listeners = append(req.Listeners, kafka, raftL)
	resp, err := req.RequestWith(ctx, cl.Broker(int(md.ControllerID)))
	if err != nil {
		return fmt.Errorf("BrokerRegistration to controller %d: %w", md.ControllerID, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("controller %d: %w", md.ControllerID, err)
	}
	return nil
}
