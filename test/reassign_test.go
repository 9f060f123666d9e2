package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// clusterAdmin returns a kadm client on seeds; t.Cleanup closes it.
func clusterAdmin(t *testing.T, seeds []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.MetadataMinAge(100*time.Millisecond),
		kgo.RetryTimeout(testTimeout))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// signal sends sig to the process (SIGSTOP freezes it, SIGCONT thaws it).
func (p *sluiceProcess) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// reassign asks the controller (through kadm) to move topic's partition 0
// to target and returns the partition's error, or the request's when it
// got no answer.
func reassign(t *testing.T, adm *kadm.Client, topic string, target []int32) error {
	t.Helper()
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign(topic, 0, target)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resps, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		return err
	}
	r, ok := resps[topic][0]
	if !ok {
		t.Fatalf("AlterPartitionAssignments %s: no answer for partition 0: %v", topic, resps)
	}
	return r.Err
}

// reassignments returns topic's partition 0 reassignment in progress, as
// ListPartitionReassignments reports it, and whether there is one.
func reassignments(t *testing.T, adm *kadm.Client, topic string) (kadm.ListPartitionReassignmentsResponse, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	resps, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatalf("ListPartitionReassignments: %v", err)
	}
	r, ok := resps[topic][0]
	return r, ok
}

// waitPlacement waits until every running node reports topic's partition
// 0 with exactly replicas (in order), all of them in sync at the leader,
// and a leader among them. It allows twice testTimeout: a replica that
// was frozen or restarted is retried by the leader's Raft with a backoff
// that grows to several seconds, and the full suite loads the machine.
func waitPlacement(t *testing.T, procs []*sluiceProcess, topic string, replicas []int32) {
	t.Helper()
	eventuallyWithin(t, 2*testTimeout, fmt.Sprintf("every node reports %s on %v", topic, replicas), func() bool {
		for _, p := range procs {
			leader, rs, _ := partitionState(t, p.Addr, topic)
			if !slices.Equal(rs, replicas) || !slices.Contains(replicas, leader) {
				return false
			}
			_, _, isr := partitionState(t, procs[leader-1].Addr, topic)
			slices.Sort(isr)
			want := slices.Sorted(slices.Values(replicas))
			if !slices.Equal(isr, want) {
				return false
			}
		}
		return true
	})
}

// TestReassignWhileProducing: three nodes as processes, a topic with
// replication factor 2, an idempotent acks=all producer writing without
// pause. kadm moves the follower's replica to the third node (frozen with
// SIGSTOP first, so ListPartitionReassignments must show the move in
// progress while producers go on), then moves the partition off its
// leader. Each move ends with Metadata naming the target replicas, all in
// sync; the node that left has no directory of the partition; the new
// replicas hold identical logs, and every acknowledged record is there
// once, in order.
func TestReassignWhileProducing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	procs, _ := startMetadataCluster(t, 3)
	seeds := addrsOf(procs...)
	adm := clusterAdmin(t, seeds)
	const topic = "moving"
	eventually(t, "create "+topic, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := adm.CreateTopic(ctx, 1, 2, nil, topic)
		return err == nil && r.Err == nil
	})
	var leader int32
	var replicas []int32
	eventually(t, topic+" has a leader", func() bool {
		leader, replicas, _ = partitionState(t, procs[0].Addr, topic)
		return leader > 0 && len(replicas) == 2
	})
	var third int32
	for id := int32(1); id <= 3; id++ {
		if !slices.Contains(replicas, id) {
			third = id
		}
	}
	follower := replicas[0]
	if follower == leader {
		follower = replicas[1]
	}

	// Errors first, as Kafka answers them.
	for _, tc := range []struct {
		name   string
		topic  string
		target []int32
		want   error
	}{
		{"duplicate broker", topic, []int32{third, third}, kerr.InvalidReplicaAssignment},
		{"unknown broker", topic, []int32{leader, 9}, kerr.InvalidReplicaAssignment},
		{"empty list", topic, []int32{}, kerr.InvalidReplicaAssignment},
		{"cancel of none", topic, nil, kerr.NoReassignmentInProgress},
		{"unknown topic", "no-such-topic", []int32{1}, kerr.UnknownTopicOrPartition},
	} {
		if err := reassign(t, adm, tc.topic, tc.target); !errors.Is(err, tc.want) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// Off the controller: NOT_CONTROLLER.
	controller := metadataOf(t, seeds[0]).ControllerID
	other := procs[controller%3]
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
	rp.Replicas = []int32{leader, third}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	if resp := dialRaw(t, other.Addr).mustRoundTrip(req).(*kmsg.AlterPartitionAssignmentsResponse); resp.ErrorCode != kerr.NotController.Code {
		t.Fatalf("AlterPartitionReassignments off the controller: error %v, want NOT_CONTROLLER", kerr.ErrorForCode(resp.ErrorCode))
	}

	l := startLoad(t, newProducer(t, seeds, topic), "m", 32)
	l.waitAcked(200)

	// Move 1: the follower's replica to the third node, frozen meanwhile.
	procs[third-1].signal(t, syscall.SIGSTOP)
	thawed := false
	defer func() {
		if !thawed {
			procs[third-1].signal(t, syscall.SIGCONT)
		}
	}()
	target := []int32{leader, third}
	// The frozen node may have been the controller: wait for another,
	// and ask through the others with a client that never cached it.
	liveAddrs := addrsOf(procs[leader-1], procs[follower-1])
	eventually(t, "a live controller", func() bool {
		c := metadataOf(t, liveAddrs[0]).ControllerID
		return c > 0 && c != third
	})
	var live *kadm.Client
	alter := func(target []int32) {
		t.Helper()
		eventually(t, "a live controller takes the reassignment", func() bool {
			live = clusterAdmin(t, liveAddrs)
			err := reassign(t, live, topic, target)
			if err != nil {
				t.Logf("reassign to %v: %v (retrying)", target, err)
			}
			var ke *kerr.Error
			if errors.As(err, &ke) && !errors.Is(err, kerr.NotController) && !errors.Is(err, kerr.RequestTimedOut) {
				t.Fatalf("reassign to %v: %v", target, err)
			}
			return err == nil
		})
	}
	// Started and cancelled (a null target): the leader drops the
	// non-voter it added and the replicas are the original ones again.
	alter(target)
	alter(nil)
	if r, ok := reassignments(t, live, topic); ok {
		t.Fatalf("ListPartitionReassignments after the cancel: %+v", r)
	}
	// As in Kafka, the original replicas are the current ones without
	// those being added, in the order of the current ones.
	eventually(t, "the leader lists the original replicas", func() bool {
		l, rs, _ := partitionState(t, procs[leader-1].Addr, topic)
		return l == leader && slices.Equal(rs, []int32{leader, follower})
	})
	alter(target)
	r, ok := reassignments(t, live, topic)
	if !ok || !slices.Equal(r.Replicas, []int32{leader, third, follower}) || !slices.Equal(r.AddingReplicas, []int32{third}) || !slices.Equal(r.RemovingReplicas, []int32{follower}) {
		t.Fatalf("ListPartitionReassignments during the move: %+v (listed %v)", r, ok)
	}
	// The replica being added is not in sync until it is a voter.
	eventually(t, "the leader lists the replicas of the move", func() bool {
		l, rs, isr := partitionState(t, procs[leader-1].Addr, topic)
		if l == leader && slices.Equal(rs, r.Replicas) && slices.Contains(isr, third) {
			t.Fatalf("Metadata from the leader during the move: ISR %v has %d, which cannot have caught up", isr, third)
		}
		return l == leader && slices.Equal(rs, r.Replicas)
	})
	// sluice cluster status lists the move (node 3 frozen: exit 3, unhealthy).
	out, code := clusterStatus(t, procs[leader-1].Addr, "--format", "json")
	var st struct {
		Moving []struct {
			Topic  string  `json:"topic"`
			Adding []int32 `json:"adding"`
		} `json:"moving"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 3 || len(st.Moving) != 1 || st.Moving[0].Topic != topic || !slices.Equal(st.Moving[0].Adding, []int32{third}) {
		t.Fatalf("cluster status during the move: exit %d, %v\n%s", code, err, out)
	}
	// Producers go on while the new replica cannot catch up.
	acked, _ := l.counts()
	l.waitAcked(acked + 200)
	procs[third-1].signal(t, syscall.SIGCONT)
	thawed = true
	waitPlacement(t, procs, topic, target)
	eventually(t, "the reassignment list empties", func() bool {
		_, ok := reassignments(t, adm, topic)
		return !ok
	})
	eventually(t, fmt.Sprintf("node %d deletes its replica", follower), func() bool {
		return len(partitionDirs(t, procs[follower-1].DataDir, topic)) == 0
	})

	// Move 2: off the current leader, back to the first follower.
	acked, _ = l.counts()
	l.waitAcked(acked + 200)
	eventually(t, "the leader after move 1", func() bool {
		leader, _, _ = partitionState(t, procs[third-1].Addr, topic)
		return slices.Contains(target, leader)
	})
	keep := third
	if leader == third {
		keep = target[0]
	}
	target2 := []int32{keep, follower}
	if err := reassign(t, adm, topic, target2); err != nil {
		t.Fatalf("reassign to %v: %v", target2, err)
	}
	waitPlacement(t, procs, topic, target2)
	eventually(t, "the reassignment list empties", func() bool {
		_, ok := reassignments(t, adm, topic)
		return !ok
	})
	eventually(t, "the former leader deletes its replica", func() bool {
		return len(partitionDirs(t, procs[leader-1].DataDir, topic)) == 0
	})

	acked, _ = l.counts()
	l.waitAcked(acked + 200)
	ackedRecords, failed := l.stop()
	if len(failed) > 0 {
		for v, err := range failed {
			t.Fatalf("%d records failed, e.g. %s: %v", len(failed), v, err)
		}
	}
	n := checkHistory(t, seeds, topic, ackedRecords)
	waitIdenticalLogs(t, []*sluiceProcess{procs[keep-1], procs[follower-1]}, topic, 1)
	t.Logf("%d records acknowledged, %d in the log; moved %v -> %v -> %v", len(ackedRecords), n, replicas, target, target2)
}

// TestReassignSurvivesLeaderChanges: a move stays in progress (its new
// replica frozen) while the controller is killed (-9) and restarted, then
// the partition's leader too; the move resumes from the metadata on the
// new leaders and completes once the new replica thaws, with every
// acknowledged record there once, in order.
func TestReassignSurvivesLeaderChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	procs, _ := startMetadataCluster(t, 3)
	began := time.Now()
	phase := func(what string) { t.Logf("%6s %s", time.Since(began).Round(100*time.Millisecond), what) }
	seeds := addrsOf(procs...)
	adm := clusterAdmin(t, seeds)
	const topic = "resumed"
	eventually(t, "create "+topic, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := adm.CreateTopic(ctx, 1, 2, nil, topic)
		return err == nil && r.Err == nil
	})
	var leader int32
	var replicas []int32
	eventually(t, topic+" has a leader", func() bool {
		leader, replicas, _ = partitionState(t, procs[0].Addr, topic)
		return leader > 0 && len(replicas) == 2
	})
	var third, follower int32
	for id := int32(1); id <= 3; id++ {
		switch {
		case !slices.Contains(replicas, id):
			third = id
		case id != leader:
			follower = id
		}
	}
	// The frozen node accepts connections (the kernel does) and answers
	// nothing: a request the producer sends it (kgo asks any listed
	// broker for metadata) waits out the client's request timeout
	// overhead, 10 s by default, which held the producer up for about 20 s
	// after each restart below. At 2 s it gives up on the frozen node
	// sooner; retries stay unbounded and idempotent, and the history
	// check is the same.
	l := startLoad(t, newProducer(t, seeds, topic, kgo.RequestTimeoutOverhead(2*time.Second)), "r", 32)
	l.waitAcked(200)

	procs[third-1].signal(t, syscall.SIGSTOP)
	thawed := false
	defer func() {
		if !thawed {
			procs[third-1].signal(t, syscall.SIGCONT)
		}
	}()
	liveAddrs := addrsOf(procs[leader-1], procs[follower-1])
	liveController := func() int32 {
		var c int32
		eventually(t, "a live controller", func() bool {
			for _, a := range liveAddrs {
				c = metadataOf(t, a).ControllerID
				if c > 0 && c != third {
					return true
				}
			}
			return false
		})
		return c
	}
	liveController()
	target := []int32{leader, third}
	eventually(t, "a live controller takes the reassignment", func() bool {
		err := reassign(t, clusterAdmin(t, liveAddrs), topic, target)
		var ke *kerr.Error
		if errors.As(err, &ke) && !errors.Is(err, kerr.NotController) && !errors.Is(err, kerr.RequestTimedOut) {
			t.Fatalf("reassign to %v: %v", target, err)
		}
		return err == nil
	})
	inProgress := func(when string) {
		t.Helper()
		eventually(t, "ListPartitionReassignments "+when, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resps, err := clusterAdmin(t, liveAddrs).ListPartitionReassignments(ctx, kadm.TopicsSet{topic: {0: {}}})
			if err != nil {
				return false
			}
			r, ok := resps[topic][0]
			if !ok || !slices.Equal(r.AddingReplicas, []int32{third}) {
				t.Fatalf("ListPartitionReassignments %s: %+v (listed %v)", when, r, ok)
			}
			return true
		})
	}
	inProgress("after the alter")
	phase("reassignment in progress")

	// The controller dies and comes back: the metadata leader changes.
	ctl := liveController()
	procs[ctl-1].Kill()
	procs[ctl-1].Restart()
	procs[ctl-1].waitListening()
	acked, _ := l.counts()
	l.waitAcked(acked + 100)
	inProgress("after the controller's restart")
	phase("controller restarted")

	// The partition's leader dies and comes back.
	var pl int32
	eventually(t, "the partition's leader", func() bool {
		pl, _, _ = partitionState(t, procs[follower-1].Addr, topic)
		return pl == leader || pl == follower
	})
	procs[pl-1].Kill()
	procs[pl-1].Restart()
	procs[pl-1].waitListening()
	acked, _ = l.counts()
	l.waitAcked(acked + 100)
	inProgress("after the partition leader's restart")
	phase("partition leader restarted")

	procs[third-1].signal(t, syscall.SIGCONT)
	thawed = true
	waitPlacement(t, procs, topic, target)
	phase("move complete")
	eventually(t, "the reassignment list empties", func() bool {
		_, ok := reassignments(t, adm, topic)
		return !ok
	})
	eventually(t, fmt.Sprintf("node %d deletes its replica", follower), func() bool {
		return len(partitionDirs(t, procs[follower-1].DataDir, topic)) == 0
	})
	acked, _ = l.counts()
	l.waitAcked(acked + 100)
	ackedRecords, failed := l.stop()
	for v, err := range failed {
		t.Fatalf("%d records failed, e.g. %s: %v", len(failed), v, err)
	}
	n := checkHistory(t, seeds, topic, ackedRecords)
	waitIdenticalLogs(t, []*sluiceProcess{procs[leader-1], procs[third-1]}, topic, 1)
	t.Logf("%d records acknowledged, %d in the log; controller %d and partition leader %d restarted mid-move", len(ackedRecords), n, ctl, pl)
}
