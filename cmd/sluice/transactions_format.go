package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// listedTransaction is one transactional id of `transactions list
// --format json`.
type listedTransaction struct {
	TransactionalID string `json:"transactional_id"`
	Coordinator     int32  `json:"coordinator"`
	ProducerID      int64  `json:"producer_id"`
	State           string `json:"state"`
}

func printTransactionList(w io.Writer, txns kadm.ListedTransactions, format string) error {
	sorted := txns.Sorted()
	if format == "json" {
		out := []listedTransaction{}
		for _, t := range sorted {
			out = append(out, listedTransaction{TransactionalID: t.TxnID, Coordinator: t.Coordinator, ProducerID: t.ProducerID, State: t.State})
		}
		return writeJSON(w, out)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "TRANSACTIONAL-ID\tCOORDINATOR\tPRODUCER-ID\tSTATE")
	for _, t := range sorted {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", t.TxnID, t.Coordinator, t.ProducerID, t.State)
	}
	return tw.Flush()
}

// describedTransaction is `transactions describe --format json`. Times
// are milliseconds; StartTimestamp and Duration are -1 when no
// transaction is open.
type describedTransaction struct {
	TransactionalID string      `json:"transactional_id"`
	Coordinator     int32       `json:"coordinator"`
	ProducerID      int64       `json:"producer_id"`
	ProducerEpoch   int16       `json:"producer_epoch"`
	State           string      `json:"state"`
	TimeoutMillis   int32       `json:"timeout_ms"`
	StartTimestamp  int64       `json:"start_timestamp_ms"`
	DurationMillis  int64       `json:"duration_ms"`
	Partitions      []topicPart `json:"partitions"`
}

// topicPart is one partition in JSON output.
type topicPart struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// transactionJSON turns a described transaction into its JSON form, with
// its duration as of now.
func transactionJSON(d kadm.DescribedTransaction, now time.Time) describedTransaction {
	out := describedTransaction{TransactionalID: d.TxnID, Coordinator: d.Coordinator, ProducerID: d.ProducerID,
		ProducerEpoch: d.ProducerEpoch, State: d.State, TimeoutMillis: d.TimeoutMillis, StartTimestamp: -1, DurationMillis: -1,
		Partitions: []topicPart{}}
	if d.StartTimestamp >= 0 {
		out.StartTimestamp = d.StartTimestamp
		out.DurationMillis = max(now.UnixMilli()-d.StartTimestamp, 0)
	}
	for _, tp := range d.Topics.Sorted() {
		for _, p := range tp.Partitions {
			out.Partitions = append(out.Partitions, topicPart{Topic: tp.Topic, Partition: p})
		}
	}
	sort.Slice(out.Partitions, func(i, j int) bool {
		l, r := out.Partitions[i], out.Partitions[j]
		return l.Topic < r.Topic || l.Topic == r.Topic && l.Partition < r.Partition
	})
	return out
}

// printTransaction writes one described transaction, as kafka-transactions.sh
// describe does: one row, partitions as topic-partition, comma-separated.
func printTransaction(w io.Writer, d kadm.DescribedTransaction, now time.Time, format string) error {
	j := transactionJSON(d, now)
	if format == "json" {
		return writeJSON(w, j)
	}
	parts := make([]string, 0, len(j.Partitions))
	for _, p := range j.Partitions {
		parts = append(parts, fmt.Sprintf("%s-%d", p.Topic, p.Partition))
	}
	partitions, start, duration := "-", "-", "-"
	if len(parts) > 0 {
		partitions = strings.Join(parts, ",")
	}
	if j.StartTimestamp >= 0 {
		start = time.UnixMilli(j.StartTimestamp).UTC().Format(time.RFC3339Nano)
		duration = (time.Duration(j.DurationMillis) * time.Millisecond).String()
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "TRANSACTIONAL-ID\tCOORDINATOR\tPRODUCER-ID\tPRODUCER-EPOCH\tSTATE\tTIMEOUT-MS\tSTARTED\tDURATION\tPARTITIONS")
	fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%d\t%s\t%s\t%s\n", j.TransactionalID, j.Coordinator, j.ProducerID, j.ProducerEpoch,
		j.State, j.TimeoutMillis, start, duration, partitions)
	return tw.Flush()
}

// describedProducer is one producer of `transactions describe-producers
// --format json` and of find-hanging's. LastTimestamp is milliseconds;
// -1 values mean none (no sequence, no marker yet, no open transaction).
type describedProducer struct {
	Topic                 string `json:"topic"`
	Partition             int32  `json:"partition"`
	ProducerID            int64  `json:"producer_id"`
	ProducerEpoch         int16  `json:"producer_epoch"`
	CoordinatorEpoch      int32  `json:"coordinator_epoch"`
	LastSequence          int32  `json:"last_sequence"`
	LastTimestamp         int64  `json:"last_timestamp_ms"`
	CurrentTxnStartOffset int64  `json:"current_transaction_start_offset"`
}

func producerJSON(p kadm.DescribedProducer) describedProducer {
	return describedProducer{Topic: p.Topic, Partition: p.Partition, ProducerID: p.ProducerID, ProducerEpoch: p.ProducerEpoch,
		CoordinatorEpoch: p.CoordinatorEpoch, LastSequence: p.LastSequence, LastTimestamp: p.LastTimestamp,
		CurrentTxnStartOffset: p.CurrentTxnStartOffset}
}

// printProducers writes a partition's active producers (sorted).
func printProducers(w io.Writer, producers []kadm.DescribedProducer, format string) error {
	if format == "json" {
		out := []describedProducer{}
		for _, p := range producers {
			out = append(out, producerJSON(p))
		}
		return writeJSON(w, out)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "PRODUCER-ID\tPRODUCER-EPOCH\tCOORDINATOR-EPOCH\tLAST-SEQUENCE\tLAST-TIMESTAMP\tTXN-START-OFFSET")
	for _, p := range producers {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\t%d\n", p.ProducerID, p.ProducerEpoch, p.CoordinatorEpoch, p.LastSequence,
			formatMillis(p.LastTimestamp), p.CurrentTxnStartOffset)
	}
	return tw.Flush()
}

// hangingTransaction is one transaction of `transactions find-hanging
// --format json`: the producer's state and how long ago it last wrote.
type hangingTransaction struct {
	describedProducer
	OpenMillis int64 `json:"open_ms"`
}

// printHanging writes hanging transactions (find-hanging), with how long
// each has been open as of now (since its producer's last write).
func printHanging(w io.Writer, hanging []kadm.DescribedProducer, now time.Time, format string) error {
	if format == "json" {
		out := []hangingTransaction{}
		for _, p := range hanging {
			out = append(out, hangingTransaction{describedProducer: producerJSON(p), OpenMillis: max(now.UnixMilli()-p.LastTimestamp, 0)})
		}
		return writeJSON(w, out)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tPRODUCER-ID\tPRODUCER-EPOCH\tCOORDINATOR-EPOCH\tSTART-OFFSET\tLAST-TIMESTAMP\tOPEN-FOR")
	for _, p := range hanging {
		open := (time.Duration(max(now.UnixMilli()-p.LastTimestamp, 0)) * time.Millisecond).Truncate(time.Second)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", p.Topic, p.Partition, p.ProducerID, p.ProducerEpoch,
			p.CoordinatorEpoch, p.CurrentTxnStartOffset, formatMillis(p.LastTimestamp), open)
	}
	return tw.Flush()
}

// formatMillis formats a millisecond timestamp as RFC 3339 in UTC; a
// negative one (none) as "-".
func formatMillis(ms int64) string {
	if ms < 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}
