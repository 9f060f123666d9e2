package test

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestShareGroupDeadLetterAutoCreate checks KIP-1191's
// errors.deadletterqueue.auto.create.topics.enable: with it set as a
// dynamic cluster-wide broker config, a share group's dead-letter topic
// that does not exist is created on the first dead letter, with the
// broker's num.partitions, and the rejected record lands there with its
// provenance headers.
func TestShareGroupDeadLetterAutoCreate(t *testing.T) {
	p := startProcess(t, t.TempDir())
	admin := newClient(t, p.Addr)
	requireShareGroups(t, admin)
	adm := kadm.NewClient(admin)
	const topic, dlq, group = "share-autodlq", "dlq.share-autodlq", "share-autodlq-group"
	createTopic(t, p.Addr, topic, 1)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	resp, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "errors.deadletterqueue.auto.create.topics.enable", Value: kadm.StringPtr("true")}})
	if err == nil {
		for _, r := range resp {
			if r.Err != nil {
				err = r.Err
			}
		}
	}
	if err != nil {
		t.Fatalf("enable dead-letter topic auto-creation: %v", err)
	}
	setShareGroupConfigs(t, admin, group, map[string]string{
		"share.auto.offset.reset":           "earliest",
		"errors.deadletterqueue.topic.name": dlq,
	})
	if topics, err := adm.ListTopics(ctx, dlq); err != nil || topics.Has(dlq) {
		t.Fatalf("the dead-letter topic exists (%v) before any dead letter, or listing failed: %v", topics.Has(dlq), err)
	}
	produceValues(t, p.Addr, topic, []string{"ok-0", "bad", "ok-2"})

	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	worker := newShareConsumer(t, p.Addr, group, []string{topic})
	defer worker.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runShareWorker(wctx, worker, func(r *kgo.Record) {
			if string(r.Value) == "bad" {
				r.Ack(kgo.AckReject)
				return
			}
			r.Ack(kgo.AckAccept)
		})
	}()
	eventually(t, "the dead-letter topic created", func() bool {
		topics, err := adm.ListTopics(ctx, dlq)
		return err == nil && topics.Has(dlq)
	})
	topics, err := adm.ListTopics(ctx, dlq)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(topics[dlq].Partitions); n != 1 {
		t.Errorf("auto-created dead-letter topic has %d partitions, want num.partitions (1)", n)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, dlq)
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := rcs.On(dlq, nil); err != nil || !hasConfig(rc, "errors.deadletterqueue.group.enable", "true") {
		t.Errorf("auto-created dead-letter topic: %v %+v, want errors.deadletterqueue.group.enable=true", err, rc)
	}
	got := readRecords(t, []string{p.Addr}, dlq, 1)
	wcancel()
	<-done
	headers := map[string]string{}
	for _, h := range got[0].Headers {
		headers[h.Key] = string(h.Value)
	}
	for k, v := range map[string]string{"__dlq.errors.topic": topic, "__dlq.errors.partition": "0", "__dlq.errors.offset": "1",
		"__dlq.errors.group": group, "__dlq.errors.delivery.count": "1", "__dlq.errors.message": "Offset rejected by client."} {
		if headers[k] != v {
			t.Errorf("dead letter header %s = %q, want %q (all: %v)", k, headers[k], v, headers)
		}
	}
	if got[0].Value != nil {
		t.Errorf("dead letter carries value %q without errors.deadletterqueue.copy.record.enable", got[0].Value)
	}
}

// TestShareGroupDeadLetterAutoCreateOnFollower checks the auto-creation
// of a dead-letter topic by a node that is not the metadata leader (it
// asks the leader with CreateTopics), with
// errors.deadletterqueue.auto.create.topics.enable set as a static
// broker config (flag) on every node.
func TestShareGroupDeadLetterAutoCreateOnFollower(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	procs, _ := startMetadataCluster(t, 3, "--errors-deadletterqueue-auto-create-topics-enable=true")
	admin := newClient(t, procs[0].Addr)
	requireShareGroups(t, admin)
	const topic, dlq, group = "share-follower-autodlq", "dlq.share-follower-autodlq", "share-follower-autodlq-group"
	createTopic(t, procs[0].Addr, topic, 1)
	var controller int32
	eventually(t, "a metadata leader", func() bool {
		controller = metadataOf(t, procs[0].Addr).ControllerID
		return controller > 0
	})
	// The source partition's leader writes the dead letters: put it on
	// a node that does not lead the metadata.
	source := leaderOf(t, procs, topic)
	if source == controller {
		source = controller%3 + 1
		if err := reassign(t, clusterAdmin(t, addrsOf(procs...)), topic, []int32{source}); err != nil {
			t.Fatalf("move %s to node %d: %v", topic, source, err)
		}
		waitPlacement(t, procs, topic, []int32{source})
	}
	setShareGroupConfigs(t, admin, group, map[string]string{
		"share.auto.offset.reset":           "earliest",
		"errors.deadletterqueue.topic.name": dlq,
	})
	produceValues(t, procs[0].Addr, topic, []string{"bad"})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	worker := newShareConsumer(t, procs[0].Addr, group, []string{topic})
	defer worker.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runShareWorker(ctx, worker, func(r *kgo.Record) { r.Ack(kgo.AckReject) })
	}()
	got := readRecords(t, addrsOf(procs...), dlq, 1)
	cancel()
	<-done
	headers := map[string]string{}
	for _, h := range got[0].Headers {
		headers[h.Key] = string(h.Value)
	}
	if headers["__dlq.errors.topic"] != topic || headers["__dlq.errors.offset"] != "0" || headers["__dlq.errors.group"] != group {
		t.Errorf("dead letter headers %v, want topic %s offset 0 group %s", headers, topic, group)
	}
	if out := procs[source-1].Output(); !strings.Contains(out, "dead-letter topic created") {
		t.Errorf("node %d (the source's leader, not the metadata leader %d) did not log creating %s", source, controller, dlq)
	}
}

// hasConfig reports whether rc holds config name at value.
func hasConfig(rc kadm.ResourceConfig, name, value string) bool {
	for _, c := range rc.Configs {
		if c.Key == name && c.Value != nil && *c.Value == value {
			return true
		}
	}
	return false
}

// createDeadLetterTopic creates topic with errors.deadletterqueue.group.enable
// set (KIP-1191), so share groups may use it as their dead-letter topic.
func createDeadLetterTopic(tb testing.TB, addr, topic string, partitions int32) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	resp, err := newAdmin(tb, addr).CreateTopic(ctx, partitions, 1, map[string]*string{"errors.deadletterqueue.group.enable": kadm.StringPtr("true")}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		tb.Fatalf("create dead-letter topic %s: %v", topic, err)
	}
}

// TestShareGroupDeadLetterTopicNotEnabled checks KIP-1191's
// errors.deadletterqueue.group.enable: a group's dead-letter topic that
// exists without it set receives nothing; the rejected record is archived
// (the start offset passes it) and the records after it flow on.
func TestShareGroupDeadLetterTopicNotEnabled(t *testing.T) {
	p := startProcess(t, t.TempDir())
	admin := newClient(t, p.Addr)
	requireShareGroups(t, admin)
	adm := kadm.NewClient(admin)
	const topic, dlq, group = "share-noenable", "dlq.share-noenable", "share-noenable-group"
	createTopic(t, p.Addr, topic, 1)
	createTopic(t, p.Addr, dlq, 1)
	setShareGroupConfigs(t, admin, group, map[string]string{
		"share.auto.offset.reset":           "earliest",
		"errors.deadletterqueue.topic.name": dlq,
	})
	produceValues(t, p.Addr, topic, []string{"bad", "ok"})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	worker := newShareConsumer(t, p.Addr, group, []string{topic})
	defer worker.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runShareWorker(ctx, worker, func(r *kgo.Record) {
			if string(r.Value) == "bad" {
				r.Ack(kgo.AckReject)
				return
			}
			r.Ack(kgo.AckAccept)
		})
	}()
	eventually(t, "both records complete: the start offset at 2", func() bool {
		offsets, err := adm.DescribeShareGroupOffsets(ctx, group)
		if err != nil || offsets[group].Err != nil {
			return false
		}
		o, ok := offsets[group].Offsets[topic][0]
		return ok && o.Err == nil && o.StartOffset == 2
	})
	cancel()
	<-done
	if end := endOffset(t, []string{p.Addr}, dlq); end != 0 {
		t.Errorf("the dead-letter topic without %s holds %d records, want none", "errors.deadletterqueue.group.enable", end)
	}
}
