package test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTransactionsCLI drives `sluice transactions` (the built binary)
// against an open transaction of a franz-go producer: list and describe
// show it Ongoing on its partition, describe-producers shows where it
// starts, find-hanging does not report it (its transactional id holds it),
// and abort --start-offset ends it on the partition, which frees the last
// stable offset.
func TestTransactionsCLI(t *testing.T) {
	p := startProcess(t, t.TempDir())
	keys := apiVersions(t, p.Addr)
	for _, need := range []struct {
		key    int16
		branch string
	}{{24, "txncoord"}, {26, "txncoord"}, {65, "txncoord"}, {66, "txncoord"}, {27, "txnpart"}, {61, "txnpart"}} {
		if _, ok := keys[need.key]; !ok {
			t.Skipf("needs %s: the broker does not advertise %s", need.branch, kmsg.NameForKey(need.key))
		}
	}
	const topic, txnID = "cli-txn", "cli-txn-id"
	createTopic(t, p.Addr, topic, 1)
	producer := newClient(t, p.Addr, kgo.TransactionalID(txnID), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := producer.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	var records []*kgo.Record
	for i := range 3 {
		records = append(records, &kgo.Record{Value: fmt.Appendf(nil, "open-%d", i)})
	}
	produceAll(t, producer, records)

	var listed []struct {
		ID         string `json:"transactional_id"`
		ProducerID int64  `json:"producer_id"`
		State      string `json:"state"`
	}
	out := mustCLI(t, p.Addr, "", "transactions", "list", "--format", "json")
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != 1 || listed[0].ID != txnID || listed[0].State != "Ongoing" {
		t.Fatalf("transactions list: %v, want %s Ongoing:\n%s", err, txnID, out)
	}
	pid := listed[0].ProducerID

	var described struct {
		ProducerID int64  `json:"producer_id"`
		State      string `json:"state"`
		Partitions []struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
		} `json:"partitions"`
	}
	out = mustCLI(t, p.Addr, "", "transactions", "describe", txnID, "--format", "json")
	if err := json.Unmarshal([]byte(out), &described); err != nil || described.ProducerID != pid || described.State != "Ongoing" ||
		len(described.Partitions) != 1 || described.Partitions[0].Topic != topic {
		t.Fatalf("transactions describe: %v, want producer %d Ongoing on %s-0:\n%s", err, pid, topic, out)
	}
	wantExit(t, "describe of an unknown transactional id", runCLI(t, p.Addr, "", "transactions", "describe", "no-such-id"), 1, "no-such-id")

	producers := func() map[int64]int64 {
		var ps []struct {
			ProducerID int64 `json:"producer_id"`
			Start      int64 `json:"current_transaction_start_offset"`
		}
		out := mustCLI(t, p.Addr, "", "transactions", "describe-producers", "--topic", topic, "--partition", "0", "--format", "json")
		if err := json.Unmarshal([]byte(out), &ps); err != nil {
			t.Fatalf("describe-producers: %v\n%s", err, out)
		}
		starts := map[int64]int64{}
		for _, p := range ps {
			starts[p.ProducerID] = p.Start
		}
		return starts
	}
	if starts := producers(); starts[pid] != 0 {
		t.Fatalf("describe-producers: %v, want producer %d with a transaction starting at 0", starts, pid)
	}
	out = mustCLI(t, p.Addr, "", "transactions", "find-hanging", "--topic", topic, "--max-transaction-timeout", "1ms", "--format", "json")
	var hanging []any
	if err := json.Unmarshal([]byte(out), &hanging); err != nil || len(hanging) != 0 {
		t.Fatalf("find-hanging: %v, want none (the transactional id holds the transaction):\n%s", err, out)
	}

	wantExit(t, "abort at an offset where no transaction starts",
		runCLI(t, p.Addr, "", "transactions", "abort", "--topic", topic, "--partition", "0", "--start-offset", "2"), 1, "no open transaction")
	mustCLI(t, p.Addr, "", "transactions", "abort", "--topic", topic, "--partition", "0", "--start-offset", "0")
	if starts := producers(); starts[pid] != -1 {
		t.Fatalf("describe-producers after abort: %v, want producer %d without an open transaction", starts, pid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	adm := newAdmin(t, p.Addr)
	stable, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := stable.Lookup(topic, 0)
	e, _ := end.Lookup(topic, 0)
	if s.Err != nil || e.Err != nil || s.Offset != e.Offset || e.Offset < 4 {
		t.Fatalf("after abort: last stable offset %d (%v), end offset %d (%v): want equal, past the marker", s.Offset, s.Err, e.Offset, e.Err)
	}
}

// TestTransactionsCLIUsage checks the command line mistakes of `sluice
// transactions` exit 2 before anything is sent (no broker listens).
func TestTransactionsCLIUsage(t *testing.T) {
	addr := freeAddr(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"abort without a target", []string{"transactions", "abort", "--topic", "t", "--partition", "0"}},
		{"abort with both targets", []string{"transactions", "abort", "--topic", "t", "--partition", "0", "--start-offset", "1", "--producer-id", "5"}},
		{"abort with part of the producer", []string{"transactions", "abort", "--topic", "t", "--partition", "0", "--producer-id", "5"}},
		{"abort without a partition", []string{"transactions", "abort", "--topic", "t", "--start-offset", "1"}},
		{"describe-producers without a topic", []string{"transactions", "describe-producers", "--partition", "0"}},
		{"describe without an id", []string{"transactions", "describe"}},
		{"find-hanging with broker and topic", []string{"transactions", "find-hanging", "--broker-id", "1", "--topic", "t"}},
		{"find-hanging partition without topic", []string{"transactions", "find-hanging", "--partition", "0"}},
		{"list with a bad format", []string{"transactions", "list", "--format", "xml"}},
	} {
		wantExit(t, tc.name, runCLI(t, addr, "", tc.args...), exitUsageCode)
	}
}

// exitUsageCode is the CLI's exit status for a usage error (README,
// "Exit status").
const exitUsageCode = 2
