package test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The transactions every client of these tests runs (txnScenario): a
// transactional producer runs txnCount transactions; transaction k writes
// "out-k-0" .. "out-k-4" to partition 0 of the output topic and commits
// the group's offset 5k+5 of the input topic's partition 0 in the
// transaction (TxnOffsetCommit), then commits when k is even and aborts
// when k is odd. The last one aborts, so the group must end at the offset
// of the last committed transaction.
const txnCount = 6

// txnScenario names the topics, group and transactional id of one run.
type txnScenario struct {
	addr, out, in, group, txnID string
}

// requireTransactions fails the test when the broker does not advertise
// the transaction APIs the clients need (AddPartitionsToTxn,
// AddOffsetsToTxn, EndTxn, WriteTxnMarkers, TxnOffsetCommit).
func requireTransactions(tb testing.TB, addr string) {
	tb.Helper()
	keys := apiVersions(tb, addr)
	for _, key := range []int16{24, 25, 26, 27, 28} {
		if _, ok := keys[key]; !ok {
			tb.Fatalf("the broker does not advertise %s", kmsg.NameForKey(key))
		}
	}
}

// startTxnScenario starts `sluice serve`, checks it serves transactions,
// and creates the topics of a scenario named name (one partition each),
// the input holding 5*txnCount records.
func startTxnScenario(t *testing.T, name string) txnScenario {
	t.Helper()
	p := startProcess(t, t.TempDir())
	requireTransactions(t, p.Addr)
	s := txnScenario{addr: p.Addr, out: name + "-out", in: name + "-in", group: name + "-group", txnID: name + "-txn"}
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.addr), kgo.DefaultProduceTopic(s.in), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	created, err := kadm.NewClient(cl).CreateTopics(ctx, 1, 1, nil, s.out, s.in)
	if err == nil {
		err = created.Error()
	}
	if err != nil {
		t.Fatalf("create topics: %v", err)
	}
	var records []*kgo.Record
	for i := range 5 * txnCount {
		records = append(records, &kgo.Record{Value: []byte(fmt.Sprintf("in-%d", i))})
	}
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatalf("fill %s: %v", s.in, err)
	}
	return s
}

// check verifies the scenario's outcome once the client is done: a
// read_committed reader sees exactly the committed transactions' records,
// in order; a read_uncommitted one sees the aborted ones too (they were
// written, then aborted); the group's offset is the last committed
// transaction's.
func (s txnScenario) check(t *testing.T) {
	t.Helper()
	var committed, all []string
	for k := range txnCount {
		for j := range 5 {
			v := fmt.Sprintf("out-%d-%d", k, j)
			all = append(all, v)
			if k%2 == 0 {
				committed = append(committed, v)
			}
		}
	}
	// A plain record after the transactions: the read_committed reader
	// has read everything once it reaches it (markers of the last
	// transaction may still be on their way when the client returns; the
	// last stable offset holds the reader back until they land).
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.addr), kgo.DefaultProduceTopic(s.out), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("end")}).FirstErr(); err != nil {
		t.Fatalf("produce the end record: %v", err)
	}
	if got := readUntilEnd(t, s.addr, s.out, kgo.ReadCommitted()); !slices.Equal(got, append(slices.Clone(committed), "end")) {
		t.Errorf("read_committed reader saw %q,\nwant %q", got, append(committed, "end"))
	}
	if got := readUntilEnd(t, s.addr, s.out, kgo.ReadUncommitted()); !slices.Equal(got, append(slices.Clone(all), "end")) {
		t.Errorf("read_uncommitted reader saw %q,\nwant %q", got, append(all, "end"))
	}
	lastCommitted := int64(5*((txnCount-1)/2*2) + 5)
	adm := kadm.NewClient(cl)
	var offset int64 = -2
	eventually(t, fmt.Sprintf("group %s at offset %d of %s", s.group, lastCommitted, s.in), func() bool {
		fetched, err := adm.FetchOffsets(ctx, s.group)
		if err != nil {
			return false
		}
		o, ok := fetched.Lookup(s.in, 0)
		if ok && o.Err == nil {
			offset = o.At
		}
		return offset == lastCommitted
	})
}

// readUntilEnd reads partition 0 of topic from the start at isolation
// level until the record "end" and returns the values read.
func readUntilEnd(t *testing.T, addr, topic string, level kgo.IsolationLevel) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.FetchIsolationLevel(level),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var values []string
	for !slices.Contains(values, "end") {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: %d records, no end record: %v", topic, len(values), err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch %s: %v", topic, err) })
		fs.EachRecord(func(r *kgo.Record) { values = append(values, string(r.Value)) })
	}
	return values
}

// confluent-kafka-python (librdkafka) side of txnScenario; prints "done".
const confluentTxnScript = `
import sys
from confluent_kafka import Producer, Consumer, TopicPartition
addr, out, inp, group, txn_id, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
p = Producer({"bootstrap.servers": addr, "transactional.id": txn_id, "enable.idempotence": True})
p.init_transactions(30)
c = Consumer({"bootstrap.servers": addr, "group.id": group, "enable.auto.commit": False})
for k in range(count):
    p.begin_transaction()
    for j in range(5):
        p.produce(out, key=b"%d" % k, value=b"out-%d-%d" % (k, j), partition=0)
    p.send_offsets_to_transaction([TopicPartition(inp, 0, 5 * k + 5)], c.consumer_group_metadata(), 30)
    if k % 2 == 0:
        p.commit_transaction(30)
    else:
        # Written first, then aborted: the readers must skip them.
        if p.flush(30):
            sys.exit("records of transaction %d not delivered" % k)
        p.abort_transaction(30)
c.close()
print("done")
`

// TestTransactionsConfluentKafka runs txnScenario with
// confluent-kafka-python.
func TestTransactionsConfluentKafka(t *testing.T) {
	python := pythonWith(t, "confluent_kafka", "python3-confluent-kafka")
	s := startTxnScenario(t, "confluent")
	out := runPython(t, python, confluentTxnScript, s.addr, s.out, s.in, s.group, s.txnID, strconv.Itoa(txnCount))
	if strings.TrimSpace(out) != "done" {
		t.Fatalf("client output %q", out)
	}
	s.check(t)
}

// TestTransactionsKafkaJS runs txnScenario with KafkaJS
// (test/kafkajs/transactions.js, KafkaJS pinned by its lock file and
// installed by .ci/run with npm ci).
func TestTransactionsKafkaJS(t *testing.T) {
	node := lookPath("node")
	if node == "" {
		needClient(t, "node is not installed (Debian package nodejs)")
	}
	dir, err := filepath.Abs("kafkajs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "kafkajs")); err != nil {
		needClient(t, "KafkaJS is not installed (cd test/kafkajs && npm ci)")
	}
	s := startTxnScenario(t, "kafkajs")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "transactions.js"), s.addr, s.out, s.in, s.group, s.txnID, strconv.Itoa(txnCount))
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || strings.TrimSpace(stdout.String()) != "done" {
		t.Fatalf("kafkajs: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	s.check(t)
}

// TestTransactionsSarama runs txnScenario with IBM/sarama's transactional
// sync producer.
func TestTransactionsSarama(t *testing.T) {
	s := startTxnScenario(t, "sarama")
	runSaramaTransactions(t, s)
	s.check(t)
}

// runSaramaTransactions runs txnScenario's transactions with sarama's
// transactional sync producer (transaction version 1: sarama does not
// read the transaction.version feature).
func runSaramaTransactions(t *testing.T, s txnScenario) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	cfg.ClientID = "sluice-sarama"
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Transaction.ID = s.txnID
	cfg.Producer.Transaction.Timeout = 30 * time.Second
	cfg.Net.MaxOpenRequests = 1
	producer, err := sarama.NewSyncProducer([]string{s.addr}, cfg)
	if err != nil {
		t.Fatalf("sarama producer: %v", err)
	}
	defer producer.Close()
	for k := range txnCount {
		if err := producer.BeginTxn(); err != nil {
			t.Fatalf("transaction %d: begin: %v", k, err)
		}
		var msgs []*sarama.ProducerMessage
		for j := range 5 {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: s.out, Partition: 0,
				Key: sarama.StringEncoder(strconv.Itoa(k)), Value: sarama.StringEncoder(fmt.Sprintf("out-%d-%d", k, j))})
		}
		if err := producer.SendMessages(msgs); err != nil {
			t.Fatalf("transaction %d: send: %v", k, err)
		}
		offsets := map[string][]*sarama.PartitionOffsetMetadata{s.in: {{Partition: 0, Offset: int64(5*k + 5)}}}
		if err := producer.AddOffsetsToTxn(offsets, s.group); err != nil {
			t.Fatalf("transaction %d: offsets: %v", k, err)
		}
		if k%2 == 0 {
			err = producer.CommitTxn()
		} else {
			err = producer.AbortTxn()
		}
		if err != nil {
			t.Fatalf("transaction %d: end: %v", k, err)
		}
	}
	if producer.TxnStatus()&sarama.ProducerTxnFlagInError != 0 {
		t.Fatalf("producer in error: status %v", producer.TxnStatus())
	}
}

// TestTransactionsReachCoordinator checks, without the other transaction
// branches, that the built broker serves TxnOffsetCommit to clients: the
// group coordinator answers it per partition, an unknown partition with
// UNKNOWN_TOPIC_OR_PARTITION.
func TestTransactionsReachCoordinator(t *testing.T) {
	p := startProcess(t, t.TempDir())
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "reach-in"); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version = 3
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch, req.Generation = "reach-txn", "reach-group", 1000, 0, -1
	req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "reach-in", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}, {Partition: 7, Offset: 1}}}}
	// Straight to the only broker: kgo would retry the coordinator's
	// retriable codes itself.
	conn := dialRaw(t, p.Addr)
	var resp *kmsg.TxnOffsetCommitResponse
	eventually(t, "TxnOffsetCommit past the coordinator's load", func() bool {
		resp = conn.mustRoundTrip(req).(*kmsg.TxnOffsetCommitResponse)
		code := resp.Topics[0].Partitions[0].ErrorCode
		return code != 14 && code != 16 // COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR
	})
	codes := map[int32]int16{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			codes[rp.Partition] = rp.ErrorCode
		}
	}
	if codes[7] != 3 { // UNKNOWN_TOPIC_OR_PARTITION
		t.Errorf("partition 7 of a one-partition topic: code %d, want UNKNOWN_TOPIC_OR_PARTITION", codes[7])
	}
	// The producer never added the group to a transaction: the
	// verification refuses it (TestLateTxnOffsetCommitRefused checks
	// the codes); here only that the request itself is served.
	if c, ok := codes[0]; !ok || c == 35 { // UNSUPPORTED_VERSION
		t.Errorf("partition 0: answered %v, code %d", ok, c)
	}
}
