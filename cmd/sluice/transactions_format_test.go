package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestPrintTransactionList(t *testing.T) {
	txns := kadm.ListedTransactions{
		"b-app": {Coordinator: 2, TxnID: "b-app", ProducerID: 7, State: "Ongoing"},
		"a-app": {Coordinator: 1, TxnID: "a-app", ProducerID: 3, State: "CompleteCommit"},
	}
	var table bytes.Buffer
	if err := printTransactionList(&table, txns, "table"); err != nil {
		t.Fatal(err)
	}
	want := "TRANSACTIONAL-ID  COORDINATOR  PRODUCER-ID  STATE\n" +
		"a-app             1            3            CompleteCommit\n" +
		"b-app             2            7            Ongoing\n"
	if table.String() != want {
		t.Fatalf("table:\n%s\nwant:\n%s", table.String(), want)
	}
	var js bytes.Buffer
	if err := printTransactionList(&js, txns, "json"); err != nil {
		t.Fatal(err)
	}
	var got []listedTransaction
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (listedTransaction{"a-app", 1, 3, "CompleteCommit"}) || got[1].State != "Ongoing" {
		t.Fatalf("json %+v", got)
	}
	js.Reset()
	if err := printTransactionList(&js, nil, "json"); err != nil || strings.TrimSpace(js.String()) != "[]" {
		t.Fatalf("empty list as json: %q, %v", js.String(), err)
	}
}

func TestPrintTransaction(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d := kadm.DescribedTransaction{Coordinator: 1, TxnID: "app", State: "Ongoing", TimeoutMillis: 60000,
		StartTimestamp: start.UnixMilli(), ProducerID: 9, ProducerEpoch: 2,
		Topics: kadm.TopicsSet{"out": {1: {}, 0: {}}, "__consumer_offsets": {4: {}}}}
	now := start.Add(90 * time.Second)
	var table bytes.Buffer
	if err := printTransaction(&table, d, now, "table"); err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(table.String()), "\n")
	if len(rows) != 2 {
		t.Fatalf("table:\n%s", table.String())
	}
	f := strings.Fields(rows[1])
	want := []string{"app", "1", "9", "2", "Ongoing", "60000", "2026-01-02T03:04:05Z", "1m30s", "__consumer_offsets-4,out-0,out-1"}
	if strings.Join(f, " ") != strings.Join(want, " ") {
		t.Fatalf("row %q, want %q", f, want)
	}
	var js bytes.Buffer
	if err := printTransaction(&js, d, now, "json"); err != nil {
		t.Fatal(err)
	}
	var got describedTransaction
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.DurationMillis != 90000 || len(got.Partitions) != 3 || got.Partitions[1] != (topicPart{"out", 0}) {
		t.Fatalf("json %+v", got)
	}

	// No open transaction: no start, no duration, no partitions.
	d.State, d.StartTimestamp, d.Topics = "CompleteCommit", -1, nil
	table.Reset()
	if err := printTransaction(&table, d, now, "table"); err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(strings.Split(table.String(), "\n")[1]); f[6] != "-" || f[7] != "-" || f[8] != "-" {
		t.Fatalf("idle transaction row %q", f)
	}
}

func TestPrintProducersAndHanging(t *testing.T) {
	last := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	producers := []kadm.DescribedProducer{
		{Topic: "out", Partition: 0, ProducerID: 5, ProducerEpoch: 1, LastSequence: 9, LastTimestamp: last.UnixMilli(), CoordinatorEpoch: 3, CurrentTxnStartOffset: 120},
		{Topic: "out", Partition: 0, ProducerID: 6, ProducerEpoch: 0, LastSequence: -1, LastTimestamp: -1, CoordinatorEpoch: -1, CurrentTxnStartOffset: -1},
	}
	var table bytes.Buffer
	if err := printProducers(&table, producers, "table"); err != nil {
		t.Fatal(err)
	}
	rows := tableFields(table.String())
	if strings.Join(rows[1], " ") != "5 1 3 9 2026-01-02T03:00:00Z 120" || strings.Join(rows[2], " ") != "6 0 -1 -1 - -1" {
		t.Fatalf("producers:\n%s", table.String())
	}
	table.Reset()
	if err := printHanging(&table, producers[:1], last.Add(20*time.Minute), "table"); err != nil {
		t.Fatal(err)
	}
	rows = tableFields(table.String())
	if strings.Join(rows[1], " ") != "out 0 5 1 3 120 2026-01-02T03:00:00Z 20m0s" {
		t.Fatalf("hanging:\n%s", table.String())
	}
	var js bytes.Buffer
	if err := printHanging(&js, producers[:1], last.Add(20*time.Minute), "json"); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0]["open_ms"] != float64(20*60*1000) || got[0]["current_transaction_start_offset"] != float64(120) || got[0]["topic"] != "out" {
		t.Fatalf("hanging json %v", got)
	}
}

func tableFields(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		rows = append(rows, strings.Fields(line))
	}
	return rows
}

// TestHangingOf covers find-hanging's decision for each candidate.
func TestHangingOf(t *testing.T) {
	cand := func(pid int64, partition int32) kadm.DescribedProducer {
		return kadm.DescribedProducer{Topic: "out", Partition: partition, ProducerID: pid, CurrentTxnStartOffset: 10}
	}
	candidates := []kadm.DescribedProducer{cand(1, 0), cand(2, 0), cand(3, 0), cand(4, 1), cand(5, 0)}
	idOf := map[int64]string{2: "moved-on", 3: "holds-it", 4: "other-partition", 5: "gone"}
	txns := kadm.DescribedTransactions{
		"moved-on":        {TxnID: "moved-on", ProducerID: 20, Topics: kadm.TopicsSet{"out": {0: {}}}},
		"holds-it":        {TxnID: "holds-it", ProducerID: 3, Topics: kadm.TopicsSet{"out": {0: {}}}},
		"other-partition": {TxnID: "other-partition", ProducerID: 4, Topics: kadm.TopicsSet{"out": {0: {}}}},
		"gone":            {TxnID: "gone", Err: kerr.TransactionalIDNotFound},
	}
	hanging, err := hangingOf(candidates, idOf, txns)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int64
	for _, h := range hanging {
		pids = append(pids, h.ProducerID)
	}
	if len(pids) != 4 || pids[0] != 1 || pids[1] != 2 || pids[2] != 4 || pids[3] != 5 {
		t.Fatalf("hanging producers %v, want [1 2 4 5] (3 is held by its transactional id)", pids)
	}
	txns["holds-it"] = kadm.DescribedTransaction{TxnID: "holds-it", Err: kerr.CoordinatorLoadInProgress}
	if _, err := hangingOf(candidates, idOf, txns); !errors.Is(err, kerr.CoordinatorLoadInProgress) {
		t.Fatalf("describe error: %v, want it returned", err)
	}
}

func TestProducerAtAndMarkerError(t *testing.T) {
	producers := kadm.DescribedProducers{
		1: {ProducerID: 1, CurrentTxnStartOffset: -1},
		2: {ProducerID: 2, CurrentTxnStartOffset: 40},
	}
	if p, ok := producerAt(producers, 40); !ok || p.ProducerID != 2 {
		t.Fatalf("producerAt 40 = %+v, %v", p, ok)
	}
	if _, ok := producerAt(producers, 41); ok {
		t.Fatal("producerAt 41 found a producer")
	}
	resps := kadm.TxnMarkersResponses{2: {ProducerID: 2, Topics: kadm.TxnMarkersTopicResponses{
		"out": {ProducerID: 2, Topic: "out", Partitions: kadm.TxnMarkersPartitionResponses{0: {Partition: 0, Err: kerr.TransactionCoordinatorFenced}}},
	}}}
	if err := markerError(resps, 2, "out", 0); !errors.Is(err, kerr.TransactionCoordinatorFenced) {
		t.Fatalf("markerError = %v", err)
	}
	if err := markerError(resps, 2, "out", 1); err == nil {
		t.Fatal("markerError for a partition not answered: nil")
	}
}
